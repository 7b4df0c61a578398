"""`pricing-ops demo`, `demo-source` and `refresh`."""

from __future__ import annotations

import argparse
import logging
from datetime import date
from typing import Any

from models.marts import MART_TABLES
from orchestration.cli import CommandError, progress
from orchestration.settings import Settings, get_settings

log = logging.getLogger("pricing_ops")



def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job on the embedded default: demo source, refresh, "
                       "guardrails, export to files, digests to the outbox")
    p.add_argument("--events", type=int, default=200_000, help="demo events when the source is written")
    p.add_argument("--seed", type=int, default=7, help="random seed of the demo data (same seed, same data)")
    p.add_argument("--fresh-source", action="store_true", help="rewrite the demo source even if present")
    p.set_defaults(func=cmd_demo)

    p = sub.add_parser("demo-source", help="write the demo source (DuckDB file in DATA_DIR, or Postgres at --url)")
    p.add_argument("--events", type=int, default=200_000, help="how many onboarding journey events to write")
    p.add_argument("--seed", type=int, default=7, help="random seed of the demo data (same seed, same data)")
    p.add_argument("--url", default=None, help="postgresql://... to write into instead of the DuckDB file")
    p.set_defaults(func=cmd_demo_source)

    p = sub.add_parser("refresh", help="extract + dbt build once against the configured settings")
    p.add_argument("--as-of-date", default=None, help="YYYY-MM-DD (default: today's UTC date)")
    p.add_argument(
        "--full-refresh", action="store_true",
        help="rebuild every incremental model from all rows (repairs a warehouse whose dbt tests fail on "
        "duplicates; slower)",
    )
    p.add_argument(
        "--full-data-tests", action="store_true",
        help="check every row with the dbt data tests, as the daily resync does (a refresh checks the rows "
        "it wrote); finds duplicates that got in some other way",
    )
    p.set_defaults(func=cmd_refresh)



def cmd_demo_source(args: argparse.Namespace) -> int:
    from resources.demo_source import write_demo_source

    settings = get_settings()
    if args.events < 1:
        raise CommandError("--events must be at least 1")
    if args.url:
        summary = write_demo_source(
            events=args.events, seed=args.seed, postgres_url=args.url, schema=settings.SOURCE_SCHEMA,
            progress=progress,
        )
    else:
        summary = write_demo_source(
            events=args.events, seed=args.seed, duckdb_path=settings.demo_source_path, progress=progress
        )
    progress(f"demo source written: {summary}")
    return 0


def refresh_run_config(
    as_of_date: str | None, full_refresh: bool = False, full_data_tests: bool = False
) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if as_of_date:
        config["as_of_date"] = as_of_date
    if full_refresh:
        config["full_refresh"] = True
    if full_data_tests:
        config["full_data_tests"] = True
    return {"ops": {"pricing_dbt_models": {"config": config}}} if config else {}


def check_as_of_date(text: str | None) -> str | None:
    """`--as-of-date` as given when it is a YYYY-MM-DD date, else a one-line `CommandError` (before
    any work starts)."""
    if text is None:
        return None
    try:
        date.fromisoformat(text)
    except ValueError:
        raise CommandError(f"--as-of-date {text!r} is not a date; give YYYY-MM-DD (a UTC date), e.g. 2026-12-01") from None
    if len(text) != 10:
        raise CommandError(f"--as-of-date {text!r} is not a date; give YYYY-MM-DD (a UTC date), e.g. 2026-12-01")
    return text


def cmd_refresh(args: argparse.Namespace) -> int:
    from orchestration.job_runner import run_job

    settings = get_settings()
    check_as_of_date(args.as_of_date)
    result = run_job("refresh", refresh_run_config(args.as_of_date, args.full_refresh, args.full_data_tests))
    progress(f"refresh done (run {result.run_id}){' with every model rebuilt' if args.full_refresh else ''}")
    print_mart_counts(settings)
    return 0


def print_mart_counts(settings: Settings) -> None:
    from orchestration.resources import build_warehouse

    warehouse = build_warehouse(settings, resolved=True)
    with warehouse.connect(read_only=True) as conn:
        for mart in MART_TABLES:
            count = conn.fetchone(f"select count(*) from {warehouse.schema}.{mart}")[0]
            progress(f"  {warehouse.schema}.{mart}: {count} rows")
    progress(f"warehouse: {warehouse.describe()}")


def cmd_demo(args: argparse.Namespace) -> int:
    from orchestration.job_runner import run_job

    settings = get_settings()
    if args.fresh_source or not settings.demo_source_path.exists():
        from resources.demo_source import write_demo_source

        progress(f"writing the demo source ({args.events} events, seed {args.seed})")
        write_demo_source(
            events=args.events, seed=args.seed, duckdb_path=settings.demo_source_path, progress=progress
        )
    else:
        progress(f"demo source present: {settings.demo_source_path} (--fresh-source to rewrite)")
    run_job("refresh")
    print_mart_counts(settings)
    from orchestration.cli import main

    # The rest of the main job is what ops would run: each step is the CLI command of its own.
    for step in (["guardrails", "evaluate"], ["export", "--sink", "file"], ["digest", "slack"], ["digest", "email"]):
        progress(f"== pricing-ops {' '.join(step)}")
        if main(step) != 0:
            raise CommandError(f"demo step `pricing-ops {' '.join(step)}` failed (see above)")
    progress("== where everything is")
    progress(f"  demo source:    {settings.demo_source_path}")
    progress(f"  warehouse:      {settings.warehouse_url.removeprefix('duckdb:///')}")
    progress(f"  exports:        {settings.export_dir}")
    progress(f"  export cursor:  {settings.export_cursor_path}")
    progress(f"  outbox:         {settings.outbox_dir} (Slack payloads as .json, emails as .eml)")
    progress(f"  Dagster home:   {settings.dagster_home} (UI: DAGSTER_HOME={settings.dagster_home} uv run dg dev)")
    return 0
