"""`pricing-ops digest slack|email [--period P]` and `pricing-ops readyz`."""

from __future__ import annotations

import argparse
import json
import sys

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
    from dagster import DagsterInstance

    from assets.readiness import collect_readiness
    from orchestration.digests import build_digest_options
    from orchestration.instance import prepare_dagster_home
    from orchestration.resources import build_source, build_warehouse

    settings = get_settings()
    prepare_dagster_home(settings)
    # Used outside a run: built with the values themselves (an `EnvVar` needs a Dagster instance).
    warehouse = build_warehouse(settings, resolved=True)
    source = build_source(settings, resolved=True)
    with DagsterInstance.get() as instance:
        report = collect_readiness(warehouse, source, build_digest_options(settings), instance)
    print(json.dumps(report.to_json(), indent=2))
    if not report.ready:
        raise CommandError(
            "not ready: " + "; ".join(f"{c.name} {c.status}: {c.message}" for c in report.not_ready())
        )
    return 0
