"""`pricing-ops export [--sink webhook|file|s3] [--format ndjson|csv|parquet] [--limit N] [--cursor ISO]`.

Runs the `onboarding_experiment_export` job once in this process, recorded in the Dagster instance
the UI shows (DAGSTER_HOME). Progress goes to stderr; the outcome as one JSON line to stdout.
Safe to run twice: the second run starts from the cursor the first one left (and waits for, or is
refused by, a run still in progress).
"""

from __future__ import annotations

import argparse
import json

from orchestration.cli import progress


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="one onboarding experiment export run (new segment rows to the sink)")
    p.add_argument("--sink", choices=["webhook", "file", "s3"], default=None, help="default: ONBOARDING_EXPORT_SINK")
    p.add_argument(
        "--format", choices=["ndjson", "csv", "parquet"], default=None,
        help="file and s3 sinks; default: ONBOARDING_EXPORT_FORMAT (the webhook always takes NDJSON)",
    )
    p.add_argument("--limit", type=_positive_int, default=None, help="export at most N rows in this run")
    p.add_argument(
        "--cursor", default=None, metavar="ISO",
        help="replay every row loaded at or after this instant (e.g. 2026-11-26T09:00:00Z); saved as the cursor",
    )
    p.set_defaults(func=cmd_export)


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError("must be at least 1")
    return value



def cmd_export(args: argparse.Namespace) -> int:
    from assets.export import EXPORT_JOB_NAME, EXPORT_OP_NAME, run_config
    from orchestration.job_runner import run_job
    from orchestration.settings import get_settings

    config = run_config(args.sink, args.format, args.limit, args.cursor)
    progress(f"export: {json.dumps(config['ops'][EXPORT_OP_NAME]['config'])} (unset options come from the settings)")
    # The export job of the code location `dg dev` loads (without the dbt assets: it builds nothing
    # from them), from the settings as they are now.
    result = run_job(EXPORT_JOB_NAME, config, settings=get_settings())
    [materialization] = result.asset_materializations_for_node(EXPORT_OP_NAME)
    meta = {key: value.value for key, value in materialization.metadata.items()}
    progress(
        f"run {result.run_id}: exported {meta['rows']} rows in {meta['batches']} batches to {meta['destination']}; "
        f"cursor {meta['cursor_before']} -> {meta['cursor_after']}"
    )
    print(json.dumps({"runId": result.run_id, **meta}))
    return 0
