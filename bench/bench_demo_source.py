"""Benchmark: write the demo source with N events to a DuckDB file and, optionally, to Postgres.

    uv run python bench/bench_demo_source.py                       # 1M events, DuckDB file
    uv run python bench/bench_demo_source.py --events 10000000     # the 10M scale check
    uv run python bench/bench_demo_source.py --postgres            # also into a fresh Postgres database

Each target is written in its own process so that its peak memory is its own. Prints wall and CPU
seconds (the process's imports excluded), events/s and peak RSS. The Postgres database it creates
is dropped at the end; PRICING_OPS_BENCH_PG names the server (default
postgresql://postgres@127.0.0.1:5432/postgres; the user must be allowed to create databases).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ADMIN_DSN = os.environ.get("PRICING_OPS_BENCH_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _child(target: str, events: int, where: str) -> None:
    """Runs in a subprocess: one write, figures as JSON on stdout."""
    from resources.demo_source import write_demo_source

    wall, cpu = time.monotonic(), _cpu_s()
    kwargs = {"duckdb_path": Path(where)} if target == "duckdb" else {"postgres_url": where}
    summary = write_demo_source(events=events, seed=7, progress=lambda line: print(line, file=sys.stderr), **kwargs)
    print(json.dumps({
        "wall_s": time.monotonic() - wall,
        "cpu_s": _cpu_s() - cpu,
        "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rows": summary.row_counts,
    }))


def _run(target: str, events: int, where: str) -> dict:
    out = subprocess.run([sys.executable, __file__, "--child", target, "--events", str(events), "--where", where],
                         check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _report(target: str, events: int, figures: dict) -> None:
    print(f"{target:>8}: {events:,} events in {figures['wall_s']:.1f} s wall, {figures['cpu_s']:.1f} s CPU "
          f"({events / figures['wall_s']:,.0f} events/s), peak {figures['peak_mb']:.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--postgres", action="store_true", help="also write into a fresh Postgres database")
    parser.add_argument("--child", choices=["duckdb", "postgres"], help=argparse.SUPPRESS)
    parser.add_argument("--where", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.events, args.where)
        return

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "demo_source.duckdb"
        figures = _run("duckdb", args.events, str(path))
        _report("duckdb", args.events, figures)
        print(f"{'':>8}  file size {path.stat().st_size / 2**20:.0f} MB")
    if args.postgres:
        import psycopg

        name = f"bench_demo_source_{uuid.uuid4().hex[:8]}"
        with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
            admin.execute(f'create database "{name}"')
        try:
            url = ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
            _report("postgres", args.events, _run("postgres", args.events, url))
        finally:
            with psycopg.connect(ADMIN_DSN, autocommit=True) as admin:
                admin.execute(f'drop database if exists "{name}" with (force)')


if __name__ == "__main__":
    main()
