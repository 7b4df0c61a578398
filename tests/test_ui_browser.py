"""What a data engineer sees in the Dagster UI after an ordinary day, in a real browser (Debian's
Chromium driven by Playwright) against `dg dev` (the README's UI command): `pricing-ops demo`, then a
refresh that finds nothing new.

- no asset check shows Skipped, no readiness check is Not evaluated;
- no asset shows Upstream data (stale) although nothing changed;
- the guardrail_evaluation job page lists the demo's run (CLI runs belong to the code location).

`dg dev` is started once for the module on a free port and stopped by its process group's id.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                  "--disable-sync", "--no-first-run"]

pytestmark = [
    pytest.mark.xdist_group("dagster_ui"),
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="Debian's chromium is not installed (.ci/run installs it)"),
]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess:
    out = subprocess.run([str(BIN / "pricing-ops"), *args], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=900, check=False)
    assert out.returncode == 0, out.stderr[-4000:]
    return out


def _graphql(base: str, query: str) -> dict:
    request = urllib.request.Request(f"{base}/graphql", data=json.dumps({"query": query}).encode(),
                                     headers={"content-type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.load(response)["data"]


# `dg dev` with SIGINT and SIGTERM at their defaults: a process started in the background inherits
# SIGINT ignored, and Dagster maps SIGTERM to the SIGINT handler, so neither would stop it (nor its
# webserver, daemon and code server).
DG_DEV = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
          "signal.signal(signal.SIGTERM, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])")


@pytest.fixture(scope="module")
def ui(tmp_path_factory) -> Iterator[dict]:
    """The demo, a refresh with nothing new, then `dg dev` on that data folder."""
    data = tmp_path_factory.mktemp("ui") / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "PRICING_OPS_"))}
    env.update({"DATA_DIR": str(data), "DAGSTER_HOME": str(data / "dagster_home")})
    demo = _cli(["demo", "--events", "3000"], env)
    guardrail_run = re.search(r"run ([0-9a-f-]{36}): \d+ providers evaluated", demo.stderr).group(1)
    refresh = _cli(["refresh"], env)
    assert "nothing new since" in refresh.stderr  # the ordinary day: dbt left alone
    port = _free_port()
    # No scheduled run while the pages are read (a run in progress would show its checks running).
    quiet = {name: "0 0 1 1 *" for name in ("REFRESH_CRON", "EXTRACT_RESYNC_CRON", "ONBOARDING_EXPORT_CRON",
                                            "AUTOMATION_DIGEST_CRON", "WEEKLY_DIGEST_CRON")}
    dev = subprocess.Popen([sys.executable, "-c", DG_DEV, str(BIN / "dg"), "dev", "-h", "127.0.0.1", "-p", str(port)],
                           cwd=ROOT, env={**env, **quiet}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                state = _graphql(base, "{ workspaceOrError { ... on Workspace { locationEntries { name "
                                       "loadStatus } } } }")
                entries = state["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    break
            except OSError:
                pass
            assert dev.poll() is None and time.monotonic() < deadline, "dg dev did not come up"
            time.sleep(1)
        assert [e["name"] for e in entries] == ["pricing_ops"]
        yield {"base": base, "guardrail_run": guardrail_run, "home": str(data / "dagster_home")}
    finally:
        _stop_group(dev)


def _stop_group(dev: subprocess.Popen) -> None:
    """SIGTERM to `dg dev`'s process group (webserver, daemon, code server), then wait until the
    whole group is gone; SIGKILL what is left after a minute."""
    os.killpg(dev.pid, signal.SIGTERM)
    deadline = time.monotonic() + 60
    with contextlib.suppress(ProcessLookupError):
        while True:
            dev.poll()
            os.killpg(dev.pid, 0)  # raises once no process of the group is left
            if time.monotonic() > deadline:
                os.killpg(dev.pid, signal.SIGKILL)
            time.sleep(0.5)


@pytest.fixture(scope="module")
def page(ui, tmp_path_factory):
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM, headless=True,
            args=CHROMIUM_FLAGS, viewport={"width": 1600, "height": 1000},
        )
        try:
            page = context.new_page()
            page.set_default_timeout(30_000)
            page.goto(ui["base"] + "/overview")
            # The first visit offers to join the community: decline, as a person would.
            skip = page.get_by_role("button", name="Skip")
            with contextlib.suppress(PlaywrightTimeoutError):  # no dialog this time
                skip.wait_for(timeout=5_000)
                skip.click()
            yield page
        finally:
            context.close()


STATUSES = ("Succeeded", "Failed", "Skipped", "Not evaluated", "Execution failed", "In progress", "Running")


def _read(page, url: str, loaded, timeout_s: float = 120) -> str:
    """The page's text once `loaded(text)` holds: the UI fills in live data (statuses, check
    results) after the page itself, slower when the machine is busy."""
    page.goto(url)
    deadline = time.monotonic() + timeout_s
    while True:
        text = page.inner_text("body")
        if loaded(text):
            return text
        assert time.monotonic() < deadline, f"{url} never finished loading:\n{text[-1500:]}"
        page.wait_for_timeout(500)


def _check_statuses(text: str, checks: list[str]) -> dict[str, str] | None:
    """Each check's latest status in the checks tab's list (name, then status), None until all show."""
    if "Checks (" not in text:
        return None
    pane = text.split("Checks (", 1)[1]
    found = {}
    for check in checks:
        match = re.search(re.escape(check) + r"\n(" + "|".join(STATUSES) + ")", pane)
        if not match:
            return None
        found[check] = match.group(1)
    return found


def _asset_url(base: str, path: str, checks: list[str]) -> str:
    # The checks tab when the asset has checks (its header carries the asset's status too).
    return f"{base}/assets/{path}?view=checks" if checks else f"{base}/assets/{path}"


def _asset_loaded(text: str, checks: list[str]) -> bool:
    if checks:
        return _check_statuses(text, checks) is not None
    # An external asset (the Superset dashboard) is never materialized; that every materializable
    # asset was is the test below.
    return re.search(r"Latest materialization\n(\S+ \S+ ago|Never materialized)", text) is not None


def _read_assets(context, base: str, assets: list[tuple[str, list[str]]], tabs: int = 6,
                 timeout_s: float = 180) -> dict[str, str]:
    """Each asset's page text once loaded, `tabs` pages at a time (the UI's live data arrives after
    the page; several pages wait for it together)."""
    pages = [context.new_page() for _ in range(tabs)]
    out: dict[str, str] = {}
    try:
        for i in range(0, len(assets), tabs):
            batch = list(zip(pages, assets[i:i + tabs]))
            for page, (path, checks) in batch:
                page.goto(_asset_url(base, path, checks), wait_until="commit")
            deadline = time.monotonic() + timeout_s
            waiting = dict(batch)
            while waiting:
                for page, (path, checks) in list(waiting.items()):
                    text = page.inner_text("body") if page.url.startswith(base) else ""
                    if _asset_loaded(text, checks):
                        page.wait_for_load_state("networkidle")
                        out[path] = page.inner_text("body")
                        del waiting[page]
                assert time.monotonic() < deadline, "never finished loading: " + "; ".join(
                    f"{path}: {page.inner_text('body')[:1500]}" for page, (path, _) in waiting.items())
                pages[0].wait_for_timeout(500)
    finally:
        for page in pages:
            page.close()
    return out


def _header(text: str) -> str:
    """The line beside the asset's name, above its tabs."""
    return text.split("\nOverview\n", 1)[0]


def test_the_guardrail_job_page_lists_the_demo_run_and_it_can_be_re_executed(ui, page):
    text = _read(page, f"{ui['base']}/locations/pricing_ops/jobs/guardrail_evaluation/runs",
                 lambda t: "Launched by" in t and "Loading" not in t)
    assert ui["guardrail_run"][:8] in text
    # Its run page can be re-executed from the workspace's job, as a run launched from the UI.
    run = _read(page, f"{ui['base']}/runs/{ui['guardrail_run']}", lambda t: "Re-execute" in t and "View job" in t)
    assert "guardrail_evaluation" in run
    from playwright.sync_api import expect

    # Enabled once the UI has matched the run to the workspace's job (it loads after the page).
    expect(page.locator("button", has_text="Re-execute all (*)")).to_be_enabled(timeout=60_000)


def _nodes(base: str) -> list[tuple[str, list[str]]]:
    nodes = _graphql(base, "{ assetNodes { assetKey { path } assetChecksOrError { "
                           "... on AssetChecks { checks { name } } } } }")["assetNodes"]
    return [("/".join(n["assetKey"]["path"]), [c["name"] for c in n["assetChecksOrError"]["checks"]])
            for n in nodes]


def test_every_materializable_asset_was_materialized_by_the_demo(ui):
    # The page check below takes a page without a materialization section as an external asset's.
    nodes = _graphql(ui["base"], "{ assetNodes { assetKey { path } isMaterializable "
                                 "assetMaterializations(limit: 1) { runId } } }")["assetNodes"]
    never = ["/".join(n["assetKey"]["path"]) for n in nodes if n["isMaterializable"] and not n["assetMaterializations"]]
    assert never == []


def test_no_asset_is_unsynced_and_no_check_skipped_after_a_refresh_with_nothing_new(ui, page):
    from models.readiness import COMPONENTS

    nodes = _nodes(ui["base"])
    texts = _read_assets(page.context, ui["base"], nodes)
    # Dagster 1.13 marks a stale asset "Unsynced" beside its name (the cause, e.g. Upstream data, on hover).
    unsynced = [path for path, text in texts.items() if "Unsynced" in _header(text) or "Upstream data" in _header(text)]
    assert unsynced == [], unsynced
    statuses = {f"{path}:{check}": status for path, checks in nodes
                for check, status in (_check_statuses(texts[path], checks) or {}).items()}
    assert len(statuses) >= 80
    assert {k: v for k, v in statuses.items() if v not in ("Succeeded", "Failed")} == {}
    # Every readiness component was evaluated by the demo's jobs, on every asset it judges.
    assert {k.rsplit(":", 1)[1] for k in statuses} >= set(COMPONENTS)


def test_the_same_page_does_show_an_asset_whose_upstream_changed(ui, page):
    # The detector above can fail: a new version of the segments mart (as a rebuild with new rows
    # records) leaves the export behind, and its page says so.
    import dagster as dg

    with dg.DagsterInstance.from_config(ui["home"]) as instance:
        instance.report_runless_asset_event(dg.AssetMaterialization(
            "onboarding_pricing_experiment_segments", tags={"dagster/data_version": "new-rows"}))
    checks = dict(_nodes(ui["base"]))["export_onboarding_segments"]
    text = _read(page, _asset_url(ui["base"], "export_onboarding_segments", checks),
                 lambda t: _asset_loaded(t, checks) and "Unsynced" in _header(t), timeout_s=60)
    assert "Unsynced" in _header(text)
