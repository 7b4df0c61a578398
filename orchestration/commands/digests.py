"""`pricing-ops digest slack|email [--period P]` and `pricing-ops readyz`."""

from __future__ import annotations

import argparse
import json
import sys
import time

from orchestration.cli import CommandError
from orchestration.settings import Settings, get_settings


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("digest", help="send one digest for a period (once per period)")
    p.add_argument("kind", choices=["slack", "email"], help="slack: automation digest; email: weekly digest")
    p.add_argument(
        "--period", default=None, help="slack: UTC date YYYY-MM-DD; email: ISO week YYYY-Www (default: the current one)"
    )
    p.set_defaults(func=cmd_digest)

    p = sub.add_parser("readyz", help="the readiness report as JSON; exit 1 when not ready")
    p.set_defaults(func=cmd_readyz)


def send_digest(settings: Settings, kind: str, period: str | None) -> dict:
    """Run the digest job once (recorded in the Dagster instance); returns its outcome
    (`status`: sent, already_sent or in_progress)."""
    from assets.digests import JOB_FOR_KIND, OP_FOR_KIND, digest_run_config
    from models.digests.periods import parse_period
    from orchestration.job_runner import run_job

    if period:
        try:
            parse_period(kind, period)  # type: ignore[arg-type]
        except ValueError as exc:
            raise CommandError(f"{exc}") from None
    result = run_job(JOB_FOR_KIND[kind], digest_run_config(kind, period), settings=settings)
    return result.output_for_node(OP_FOR_KIND[kind])


def cmd_digest(args: argparse.Namespace) -> int:
    outcome = send_digest(get_settings(), args.kind, args.period)
    where = f" to {outcome['ref']}" if outcome.get("ref") else ""
    print(f"{args.kind} digest {outcome['period']}: {outcome['status'].replace('_', ' ')}{where}", file=sys.stderr)
    print(json.dumps(outcome))
    return 0


def cmd_readyz(args: argparse.Namespace) -> int:
    """The report as JSON on stdout, within READYZ_TIMEOUT whatever is locked, down or full: a
    Dagster instance that cannot be opened (a full disk, its storage down) is a component of the
    report, not a crash."""
    from assets.readiness import collect_readiness
    from models.readiness import instance_component
    from orchestration.digests import build_digest_options
    from orchestration.resources import build_source, build_warehouse

    settings = get_settings()
    timeout = settings.READYZ_TIMEOUT.total_seconds()
    deadline = time.monotonic() + timeout
    # Used outside a run: built with the values themselves (an `EnvVar` needs a Dagster instance).
    warehouse = build_warehouse(settings, resolved=True)
    source = build_source(settings, resolved=True)
    # The instance gets half the time at most; the probes (which read it) the rest.
    home, instance, instance_error = open_instance_within(settings, timeout / 2)
    extra = [instance_component(str(home), instance_error)] if instance_error else []
    report = collect_readiness(warehouse, source, build_digest_options(settings), instance,
                               timeout_s=timeout, extra=extra, deadline=deadline)
    if instance is not None and not report.unfinished:
        # A probe left behind may still read it: then it is not closed under it (the process ends anyway).
        instance.dispose()
    print(json.dumps(report.to_json(), indent=2), flush=True)
    if not report.ready:
        raise CommandError(
            "not ready: " + "; ".join(f"{c.name} {c.status}: {c.message}" for c in report.not_ready())
        )
    return 0


def open_instance_within(settings: Settings, timeout_s: float):
    """(DAGSTER_HOME, the instance or None, why not): the data folder's Dagster instance, opened on a
    thread given `timeout_s` (dagster-postgres retries a server that is down for longer)."""
    import os
    import threading
    from pathlib import Path

    from orchestration.instance import new_instance, prepare_dagster_home

    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home)
    outcome: dict = {}

    def open_it() -> None:
        try:
            outcome["home"] = prepare_dagster_home(settings)
        except OSError as exc:  # a full disk: the dagster.yaml already there still serves
            outcome["prepare_error"] = exc
        try:
            outcome["instance"] = new_instance(home)
        except Exception as exc:  # noqa: BLE001 - said in the report as the instance's error
            outcome["error"] = exc

    thread = threading.Thread(target=open_it, name="readiness-instance", daemon=True)
    thread.start()
    thread.join(timeout_s)
    if thread.is_alive():
        return home, None, f"no answer within {timeout_s:g} s (its storage does not answer)"
    if "error" in outcome:
        exc = outcome["error"]
        # The first line: SQLAlchemy goes on with the statement it was running.
        first = (str(exc).strip().splitlines() or [""])[0]
        return home, None, f"{type(exc).__name__}: {first}" + _free_space_note(home)
    return home, outcome["instance"], None


def _free_space_note(home) -> str:
    import shutil

    try:
        free = shutil.disk_usage(home if home.exists() else home.parent).free
    except OSError:
        return ""
    return f" ({free} bytes free on its disk)" if free < 50 * 1024 * 1024 else ""
