"""`pricing-ops bi` as a person runs it, and the dashboard as a person sees it: the command in the
background on a free port (stopped by its PID), Debian's Chromium driven by Playwright (never a
downloaded browser), headless, with a fresh profile."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlparse

ROOT = Path(__file__).resolve().parent.parent
PRICING_OPS = Path(sys.executable).parent / "pricing-ops"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]
CHART_TITLES = ("Daily assignments (10 days)", "Variant guardrails: active vs stalled", "Conversion snapshots",
                "Experiment results", "Provider guardrails")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "BI_", "WAREHOUSE_"))}
    env.update({"DATA_DIR": str(data_dir), "TZ": "Asia/Kolkata", **extra})
    return env


def run_cli(args: list[str], env: dict[str, str], timeout: float = 900, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run([str(PRICING_OPS), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False, **kwargs)


@dataclass
class BiServer:
    """A running `pricing-ops bi`: its process, its URL, what it printed so far."""

    proc: subprocess.Popen
    base_url: str
    log: Path
    started_in: float = 0.0

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> int:
        """SIGTERM to its PID (it passes it on to Superset's server), then wait."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
        return self.proc.wait()


def start_bi(env: dict[str, str], log: Path, timeout: float = 600) -> BiServer:
    """`pricing-ops bi --port <free>` in the background; returns once it says the dashboard's URL."""
    port = free_port()
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen([str(PRICING_OPS), "bi", "--port", str(port)], cwd=ROOT, env=env,
                                stdout=out, stderr=subprocess.STDOUT)
    server = BiServer(proc, f"http://127.0.0.1:{port}", log)
    while time.monotonic() - started < timeout:
        if "dashboard: http://" in server.output():
            server.started_in = time.monotonic() - started
            return server
        if proc.poll() is not None:
            raise AssertionError(f"pricing-ops bi exited {proc.returncode}:\n{server.output()[-3000:]}")
        time.sleep(0.5)
    server.stop()
    raise AssertionError(f"pricing-ops bi did not serve within {timeout:.0f} s:\n{server.output()[-3000:]}")


@dataclass
class DashboardView:
    titles: list[str]
    chart_text: dict[str, str]
    errors: list[str]
    data_responses: list[tuple[str, int]] = field(default_factory=list)
    filtered_text: dict[str, str] = field(default_factory=dict)  # the charts with the slug filter set


def _rendered(page) -> dict[str, str]:
    """Once every chart holder has its rendered chart (or its error) and nothing is loading: each
    chart's text by title."""
    page.locator("[data-test-chart-id]").first.wait_for(timeout=60_000)
    page.wait_for_function(
        "n => document.querySelectorAll('[data-test-chart-id]').length === n"
        " && [...document.querySelectorAll('[data-test-chart-id]')].every("
        "   c => c.querySelector('.slice_container') || c.querySelector('[role=alert], .ant-alert'))"
        " && !document.querySelector('[data-test-chart-id] [aria-label=Loading]')",
        arg=len(CHART_TITLES), timeout=120_000,
    )
    page.wait_for_load_state("networkidle")
    return {holder.get_attribute("data-test-chart-name") or "": holder.inner_text()
            for holder in page.locator("[data-test-chart-id]").all()}


def slug_filter_query(slug: str) -> str:
    """The dashboard URL's query with its native filter `Slug` set to one slug (rison, as Superset
    writes it when a person picks a value and applies)."""
    state = (f"(NATIVE_FILTER-slug:(extraFormData:(filters:!((col:slug,op:IN,val:!('{slug}')))),"
             f"filterState:(label:'{slug}',validateStatus:!f,value:!('{slug}')),id:NATIVE_FILTER-slug,ownState:()))")
    return "?native_filters=" + quote(state, safe="(),:!'")


def view_dashboard(base_url: str, user: str, password: str, profile: Path, screenshot: Path,
                   filter_slug: str | None = None, dashboard: str = "pricing-experiments") -> DashboardView:
    """Log in, open the dashboard, wait until every chart has rendered (no chart still loading),
    and read what it shows; a full-page screenshot goes to `screenshot`. With `filter_slug`, open
    it again with the slug filter set to that slug and read the charts again."""
    from playwright.sync_api import sync_playwright

    assert CHROMIUM.exists(), "Debian's Chromium is missing: apt-get install -y chromium (.ci/run does)"
    responses: list[tuple[str, int]] = []
    with sync_playwright() as pw:
        context = pw.chromium.launch_persistent_context(
            str(profile), executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS,
            viewport={"width": 1600, "height": 2400},
        )
        try:
            page = context.new_page()
            page.on("response", lambda r: responses.append((r.url, r.status))
                    if "/api/v1/chart/data" in r.url or "/explore_json" in r.url else None)
            page.goto(f"{base_url}/login/")
            page.fill("#username", user)
            page.fill("#password", password)
            page.get_by_role("button", name="Sign in").click()
            # The welcome page itself (not the login page whose ?next= names it); a loaded machine is slow.
            page.wait_for_url(lambda url: urlparse(url).path.startswith("/superset/welcome"), timeout=180_000)
            page.goto(f"{base_url}/superset/dashboard/{dashboard}/")
            chart_text = _rendered(page)
            titles = page.locator("[data-test='slice-header'] [data-test='editable-title']").all_inner_texts()
            errors = [e.strip() for e in page.locator("[data-test-chart-id] [role=alert], "
                                                      "[data-test-chart-id] .ant-alert").all_inner_texts()]
            screenshot.parent.mkdir(parents=True, exist_ok=True)
            # The viewport (1600x2400 holds the five charts), not a full-page capture: that resizes the
            # window, Superset lays the charts out again, and a loaded machine caught the grid empty.
            page.screenshot(path=str(screenshot))
            filtered = {}
            if filter_slug is not None:
                page.goto(f"{base_url}/superset/dashboard/{dashboard}/{slug_filter_query(filter_slug)}")
                filtered = _rendered(page)
        finally:
            context.close()
    return DashboardView(titles, chart_text, errors, responses, filtered)
