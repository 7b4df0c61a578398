"""Benchmark: extract N events from a Postgres source into each warehouse, next to a plain baseline.

    uv run python bench/bench_extract_postgres.py                   # 1M events
    uv run python bench/bench_extract_postgres.py --events 5000000

Writes the demo source (`resources.demo_source`) into a fresh Postgres database, then, each in its
own process so its peak memory is its own:
- baseline: psycopg `fetchmany` of Python tuples from a server-side cursor, turned into Arrow
  batches and appended to a DuckDB table (the plain way, for scale);
- extract -> DuckDB: `assets.extract.extract_table` of `onboarding_journey_events` into a fresh
  DuckDB warehouse file;
- extract -> Postgres: the same into a fresh Postgres warehouse database;
- incremental -> DuckDB: the same extract run again (reads only the EXTRACT_LOOKBACK overlap);
- re-read -> DuckDB: again with a lookback reaching past every row (a backfill: N rows re-read
  against N loaded, none inserted), the worst case for the merge's memory.
Prints events/s over the whole process (imports included) and over the work alone, and peak RSS;
the baseline and the DuckDB extract run --repeat times (default 3) and report their medians.
The databases it creates are dropped at the end. PRICING_OPS_BENCH_PG names the server
(default postgresql://postgres@127.0.0.1:5432/postgres; the user must be allowed to create databases).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADMIN_DSN = os.environ.get("PRICING_OPS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
EVENT_COLUMNS = ("id", "journey_id", "event_type", "payload", "recorded_at", "ingested_at")
BASELINE_BATCH = 10_000
TARGET_EVENTS_PER_S = 300_000
TARGET_VS_BASELINE = 4.0
TARGET_PEAK_MB = 600


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def _db_url(name: str) -> str:
    return ADMIN_DSN.rsplit("/", 1)[0] + "/" + name


# Stages (each runs in a child process) ------------------------------------------------------------
def stage_generate(args: argparse.Namespace) -> dict:
    from resources.demo_source import write_demo_source

    summary = write_demo_source(events=args.events, seed=7, postgres_url=args.source_url, progress=lambda m: None)
    return {"rows": summary.row_counts.get("onboarding_journey_events", 0)}


def stage_baseline(args: argparse.Namespace) -> dict:
    import duckdb
    import psycopg
    import pyarrow as pa

    schema = pa.schema([
        ("id", pa.int64()), ("journey_id", pa.string()), ("event_type", pa.string()), ("payload", pa.string()),
        ("recorded_at", pa.timestamp("us", tz="UTC")), ("ingested_at", pa.timestamp("us", tz="UTC")),
    ])
    rows = 0
    started = time.perf_counter()
    with duckdb.connect(str(args.work_dir / "baseline.duckdb")) as duck, psycopg.connect(args.source_url) as pg:
        duck.execute("create table events (id bigint, journey_id varchar, event_type varchar, payload json, "
                     "recorded_at timestamptz, ingested_at timestamptz)")
        with pg.cursor(name="baseline") as cur:  # server-side: the table never sits in memory whole
            cur.itersize = BASELINE_BATCH
            cur.execute("select id, journey_id, event_type, payload::text, recorded_at, ingested_at "
                        "from onboarding_journey_events")
            while batch := cur.fetchmany(BASELINE_BATCH):
                columns = list(zip(*batch))
                arrow = pa.RecordBatch.from_arrays(
                    [pa.array(col, type=field.type) for col, field in zip(columns, schema)], schema=schema
                )
                duck.register("_batch", arrow)
                duck.execute("insert into events select * from _batch")
                duck.unregister("_batch")
                rows += len(batch)
    return {"rows": rows, "work_seconds": time.perf_counter() - started}


def _extract(args: argparse.Namespace, warehouse_url: str, lookback: timedelta = timedelta(minutes=10)) -> dict:
    from assets.extract import extract_table
    from models.source_tables import ONBOARDING_JOURNEY_EVENTS
    from resources.source import SourceDatabase
    from resources.warehouse import Warehouse

    source = SourceDatabase(database_url=args.source_url)
    warehouse = Warehouse(url=warehouse_url)
    started = time.perf_counter()
    result = extract_table(source, warehouse, ONBOARDING_JOURNEY_EVENTS, lookback)
    return {"rows": result.rows_inserted, "rows_read": result.rows_read, "work_seconds": time.perf_counter() - started}


def stage_extract_duckdb(args: argparse.Namespace) -> dict:
    return _extract(args, f"duckdb:///{args.work_dir / 'warehouse.duckdb'}")


def stage_extract_postgres(args: argparse.Namespace) -> dict:
    return _extract(args, args.warehouse_url)


def stage_reread_duckdb(args: argparse.Namespace) -> dict:
    # A lookback reaching back past every row: all N re-read against N already loaded (a backfill).
    return _extract(args, f"duckdb:///{args.work_dir / 'warehouse.duckdb'}", lookback=timedelta(days=36500))


# Stages run --repeat times: the two the verdicts compare.
REPEATED = ("baseline", "extract_duckdb")

STAGES = {
    "generate": stage_generate,
    "baseline": stage_baseline,
    "extract_duckdb": stage_extract_duckdb,
    "extract_postgres": stage_extract_postgres,
    "incremental_duckdb": stage_extract_duckdb,
    "reread_duckdb": stage_reread_duckdb,
}


def warm_bytecode() -> None:
    """Import what the stages import once with bytecode caching on, so whole-process times are those
    of an installed deployment rather than of compiling dagster's sources (PYTHONDONTWRITEBYTECODE)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    subprocess.run(
        [sys.executable, "-c", ("import assets.extract, resources.source, resources.demo_source, "
                                "adbc_driver_postgresql.dbapi, duckdb, psycopg, pyarrow")],
        check=True, cwd=ROOT, env=env,
    )


def run_child(stage: str, args: argparse.Namespace, work_dir: Path) -> dict:
    work_dir.mkdir(exist_ok=True)
    command = [sys.executable, __file__, "--stage", stage, "--events", str(args.events),
               "--work-dir", str(work_dir), "--source-url", args.source_url, "--warehouse-url", args.warehouse_url]
    started = time.perf_counter()
    out = subprocess.run(command, capture_output=True, text=True, cwd=ROOT, check=False)
    if out.returncode != 0:
        sys.exit(f"stage {stage} failed (exit {out.returncode}):\n{out.stderr[-3000:]}")
    result = json.loads(out.stdout.strip().splitlines()[-1])
    result["seconds"] = time.perf_counter() - started
    return result


def median_run(runs: list[dict]) -> dict:
    """Median times over the rounds (whole process and work alone, each its own median), their
    whole-process range, and the highest peak."""
    middle = dict(runs[0])
    for key in ("seconds", "work_seconds"):
        if key in middle:
            middle[key] = statistics.median(r[key] for r in runs)
    seconds = [r["seconds"] for r in runs]
    middle.update(rounds=len(runs), low=min(seconds), high=max(seconds), peak_mb=max(r["peak_mb"] for r in runs))
    return middle


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3,
                        help="rounds of the baseline and of the DuckDB extract, median reported (default 3)")
    parser.add_argument("--skip", action="append", default=[], choices=sorted(set(STAGES) - {"generate"}),
                        help="leave out a stage")
    parser.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    parser.add_argument("--work-dir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--source-url", help=argparse.SUPPRESS)
    parser.add_argument("--warehouse-url", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.stage:  # child: one stage, reported as JSON on stdout
        extra = STAGES[args.stage](args)
        print(json.dumps({**extra, "peak_mb": _peak_mb()}))
        return

    import psycopg

    tag = uuid.uuid4().hex[:8]
    databases = [f"pricing_ops_bench_source_{tag}", f"pricing_ops_bench_warehouse_{tag}"]
    with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
        for name in databases:
            admin.execute(f'create database "{name}"')
    args.source_url, args.warehouse_url = (_db_url(name) for name in databases)
    warm_bytecode()
    try:
        with tempfile.TemporaryDirectory(prefix="bench_extract_pg_") as tmp:
            args.work_dir = Path(tmp)
            load = os.getloadavg()[0]
            print(f"Postgres -> warehouse extract, {args.events:,} events, {os.cpu_count()} cores, "
                  f"load average {load:.1f} at start; work in {tmp}", flush=True)
            results: dict[str, dict] = {}
            for stage in STAGES:
                if stage in args.skip:
                    continue
                rounds = args.repeat if stage in REPEATED else 1
                # Each round in a fresh folder (its own DuckDB files); the re-reads use round 0's.
                runs = [run_child(stage, args, Path(tmp) / f"run{i}") for i in range(rounds)]
                r = results[stage] = median_run(runs)
                print(report_line(stage, r), flush=True)
            summarize(results)
    finally:
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            for name in databases:
                admin.execute(f'drop database if exists "{name}" with (force)')


def report_line(stage: str, r: dict) -> str:
    if stage in ("incremental_duckdb", "reread_duckdb"):
        what = "overlap rows" if stage == "incremental_duckdb" else "rows (all), already loaded"
        body = f"{r['seconds']:7.2f} s  re-read {r['rows_read']:,} {what}, inserted {r['rows']:,}"
    else:
        body = f"{r['seconds']:7.2f} s {r['rows'] / r['seconds']:>10,.0f} events/s"
        if "work_seconds" in r:
            body += f"  (work alone {r['work_seconds']:6.2f} s, {r['rows'] / r['work_seconds']:>9,.0f} events/s)"
    if r.get("rounds", 1) > 1:
        body += f"  median of {r['rounds']} ({r['low']:.2f}-{r['high']:.2f} s)"
    return f"{stage:>19}: {body}  peak {r['peak_mb']:6.0f} MB"


def summarize(results: dict[str, dict]) -> None:
    """Verdicts against the issue's targets, over the whole process and over the work alone.

    Whole process is what a one-off script pays; the extract's process also imports Dagster
    (~0.6 s) that the baseline script does not, which weighs at 1M events and fades by 5M. Work
    alone is the data movement both sides share, timed the same way."""
    if "extract_duckdb" not in results:
        return
    duck = results["extract_duckdb"]
    for label, key in (("whole process", "seconds"), ("work alone", "work_seconds")):
        rate = duck["rows"] / duck[key]
        verdicts = [(f"{label}: extract -> DuckDB {rate:,.0f} events/s (target >= {TARGET_EVENTS_PER_S:,}): "
                     f"{'met' if rate >= TARGET_EVENTS_PER_S else 'MISSED'}")]
        if "baseline" in results:
            ratio = results["baseline"][key] / duck[key]
            verdicts.append(f"{ratio:.1f}x the baseline (target >= {TARGET_VS_BASELINE:.0f}x): "
                            f"{'met' if ratio >= TARGET_VS_BASELINE else 'MISSED'}")
        print("; ".join(verdicts))
    peak = max(r["peak_mb"] for name, r in results.items() if name.startswith(("extract", "reread")))
    print(f"extract peak {peak:.0f} MB (target < {TARGET_PEAK_MB} MB): {'met' if peak < TARGET_PEAK_MB else 'MISSED'}")

if __name__ == "__main__":
    main()
