"""Benchmark: the same refresh on the three warehouse engines side by side, from one PostgreSQL source.

    uv run python bench/bench_engines.py                         # 1M events of history, +50k new
    uv run python bench/bench_engines.py --history 100000 --new 10000    # a quick pass
    uv run python bench/bench_engines.py --spark-url sc://127.0.0.1:15002  # a cluster already running

For each engine (DuckDB file, PostgreSQL database, Spark through Spark Connect on a local cluster:
master + 2 workers + Connect, started here unless --spark-url is given, state in PostgreSQL), two
`pricing-ops refresh` processes: a full refresh on an empty warehouse (--history events), then
--new events arrive in the source (ingested now) and a refresh takes them in. Printed per run: the
whole process's wall time, the extract's rate for the events table (rows/s, as the run logs it) and
dbt's own time. Targets (issue 19): +50k on 1M on Spark under 60 s; extract into Spark >= 100k rows/s.
The machine is shared: the load average is printed with every run.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PRICING_OPS = str(Path(sys.executable).parent / "pricing-ops")
ADMIN_URL = os.environ.get("BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
_EXTRACT = re.compile(r"onboarding_journey_events: read ([0-9]+) rows from .* \(([0-9,]+) rows/s\)")
_DBT = re.compile(r"dbt build: .* in ([0-9.]+) s")
_DBT_OWN = re.compile(r"Finished running .* in .*?([0-9.]+) ?s(?:econds)?\b")


def _admin(sql: str) -> None:
    import psycopg

    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(sql)


def make_database(prefix: str, created: list[str]) -> str:
    name = f"bench_engines_{prefix}_{uuid.uuid4().hex[:8]}"
    _admin(f'create database "{name}"')
    created.append(name)
    return ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"


def hold_back(source_url: str, count: int) -> None:
    """The `count` newest events moved aside: the history without them."""
    import psycopg

    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute(f"create table held_events as select * from onboarding_journey_events order by id desc limit {count}")
        conn.execute("delete from onboarding_journey_events where id in (select id from held_events)")


def release(source_url: str) -> None:
    """The held events arrive now (ingested_at = now, as new rows of the app would)."""
    import psycopg

    with psycopg.connect(source_url, autocommit=True) as conn:
        conn.execute("insert into onboarding_journey_events overriding system value "
                     "select id, journey_id, event_type, payload, recorded_at, clock_timestamp() from held_events")
        conn.execute("drop table held_events")


def refresh(label: str, env: dict[str, str]) -> dict[str, object]:
    started = time.perf_counter()
    out = subprocess.run([PRICING_OPS, "refresh"], env=env, capture_output=True, text=True, cwd=ROOT, check=False)
    seconds = time.perf_counter() - started
    log = out.stdout + out.stderr
    if out.returncode != 0:
        sys.stderr.write(log[-6000:])
        raise SystemExit(f"{label}: exit {out.returncode}")
    extract = _EXTRACT.search(log)
    dbt = _DBT.search(log)
    row = {
        "label": label,
        "seconds": seconds,
        "rows": int(extract.group(1)) if extract else None,
        "rate": int(extract.group(2).replace(",", "")) if extract else None,
        "dbt": float(dbt.group(1)) if dbt else None,
        "load": os.getloadavg()[0],
    }
    rate = f"{row['rate']:>9,} rows/s" if row["rate"] is not None else " " * 16
    dbt_s = f"dbt {row['dbt']:6.1f} s" if row["dbt"] is not None else ""
    rows = f"{row['rows']:>9,} events" if row["rows"] is not None else ""
    print(f"{label:<34} {seconds:7.1f} s  {rows}  {rate}  {dbt_s}   (load {row['load']:.1f})", flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--history", type=int, default=1_000_000, help="events of history (default 1M)")
    parser.add_argument("--new", type=int, default=50_000, help="new events of the second refresh (default 50k)")
    parser.add_argument("--engines", default="duckdb,postgres,spark", help="comma-separated subset")
    parser.add_argument("--spark-url", default=None, help="a running Spark Connect server (default: start one here)")
    args = parser.parse_args()
    engines = [e.strip() for e in args.engines.split(",") if e.strip()]

    from resources.demo_source import write_demo_source

    created: list[str] = []
    cluster = None
    with tempfile.TemporaryDirectory(prefix="bench_engines_") as tmp:
        root = Path(tmp)
        try:
            source_url = make_database("source", created)
            started = time.perf_counter()
            write_demo_source(events=args.history + args.new, seed=7, postgres_url=source_url, progress=lambda m: None)
            hold_back(source_url, args.new)
            print(f"source: {args.history:,} events of history (+{args.new:,} held back) in PostgreSQL "
                  f"({time.perf_counter() - started:.0f} s); {os.cpu_count()} cores", flush=True)
            base = {k: v for k, v in os.environ.items() if not k.startswith(("WAREHOUSE_", "STATE_", "DAGSTER_"))}
            base.update({"ONBOARDING_EXPORT_DATABASE_URL": source_url, "PRICING_OPS_VERBOSE": ""})
            envs: dict[str, dict[str, str]] = {}
            for engine in engines:
                env = {**base, "DATA_DIR": str(root / engine)}
                if engine == "postgres":
                    env["WAREHOUSE_URL"] = make_database("warehouse", created)
                elif engine == "spark":
                    url = args.spark_url
                    if url is None:
                        from resources.engines.spark_cluster import LocalSparkCluster, free_port

                        cluster = LocalSparkCluster(root / "spark-cluster", connect_port=free_port())
                        started = time.perf_counter()
                        url = cluster.start().connect_url
                        print(f"local Spark cluster up in {time.perf_counter() - started:.0f} s ({url})", flush=True)
                    env.update({"WAREHOUSE_URL": url, "STATE_DATABASE_URL": make_database("state", created),
                                "WAREHOUSE_SCHEMA": f"bench_{uuid.uuid4().hex[:8]}"})
                envs[engine] = env
            full = {engine: refresh(f"{engine}: full refresh", env) for engine, env in envs.items()}
            release(source_url)
            new = {engine: refresh(f"{engine}: +{args.new:,} on {args.history:,}", env) for engine, env in envs.items()}
        finally:
            spark = envs.get("spark") if "envs" in locals() else None
            if spark is not None and cluster is None:  # a cluster of the caller's: leave no schema behind
                from resources.engines.spark import SparkEngine

                with SparkEngine(spark["WAREHOUSE_URL"]).connect() as conn:
                    for suffix in ("", "_raw", "_staging"):
                        conn.execute(f"drop database if exists {spark['WAREHOUSE_SCHEMA']}{suffix} cascade")
            if cluster is not None:
                cluster.stop()
            for name in created:
                _admin(f'drop database if exists "{name}" with (force)')

    print(f"\n{'engine':<10} {'full refresh':>13} {'extract rows/s':>15} {'dbt (full)':>11} "
          f"{'+new refresh':>13} {'dbt (+new)':>11}")
    for engine in engines:
        f, n = full[engine], new[engine]
        print(f"{engine:<10} {f['seconds']:>11.1f} s {f['rate'] or 0:>15,} {f['dbt'] or 0:>9.1f} s "
              f"{n['seconds']:>11.1f} s {n['dbt'] or 0:>9.1f} s")
    if "spark" in full:
        rate, plus = full["spark"]["rate"] or 0, new["spark"]["seconds"]
        print(f"\nSpark: extract {rate:,} rows/s (target >= 100,000: {'met' if rate >= 100_000 else 'NOT met'}); "
              f"+{args.new:,} on {args.history:,} in {plus:.1f} s (target < 60 s: {'met' if plus < 60 else 'NOT met'})")


if __name__ == "__main__":
    main()
