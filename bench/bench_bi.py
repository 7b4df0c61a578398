"""Benchmark: `pricing-ops bi` from start to a served dashboard, first and later starts, and the BI copy.

    uv run python bench/bench_bi.py                     # demo of 200k events in a temporary DATA_DIR
    uv run python bench/bench_bi.py --data-dir .data    # an existing data folder (after `pricing-ops demo`)

Times, as whole processes:
1. publishing the BI copy of the marts (`DATA_DIR/bi/marts.duckdb`) from the DuckDB warehouse whole,
   the check a refresh makes when nothing changed (fingerprint only), and a publish after 1,000
   rows of the segments mart moved (only the changed rows), beside the whole one;
2. the first `pricing-ops bi` of a data folder (provisioning: Superset's metadata DB from the cached
   base, admin, bundle import) until it prints the dashboard's URL and `/health` answers;
3. a second start of the same folder (nothing to provision) until it serves.
Targets (contract section 11, issue 22): a later start serves within a minute, in seconds here.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from models.marts import BI_TABLES
from resources.bi_copy import publish_bi_copy
from resources.warehouse import Warehouse

PRICING_OPS = Path(sys.executable).parent / "pricing-ops"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def time_start(env: dict[str, str], log: Path) -> float:
    """Seconds from `pricing-ops bi` to its 'dashboard:' line (printed once /health answers)."""
    started = time.monotonic()
    with log.open("w") as out:
        proc = subprocess.Popen([str(PRICING_OPS), "bi", "--port", str(free_port())], env=env, cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        while "dashboard: http://" not in log.read_text():
            if proc.poll() is not None:
                raise SystemExit(f"pricing-ops bi exited {proc.returncode}: {log.read_text()[-2000:]}")
            time.sleep(0.2)
        return time.monotonic() - started
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=None, help="a data folder with a demo warehouse "
                        "(default: a new one, filled by `pricing-ops demo`)")
    parser.add_argument("--events", type=int, default=200_000, help="demo events when a new folder is made")
    args = parser.parse_args()
    data = args.data_dir or Path(tempfile.mkdtemp(prefix="bench-bi-")) / "data"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "WAREHOUSE_"))}
    env.update({"DATA_DIR": str(data.resolve()), "BI_ADMIN_PASSWORD": "bench-password"})
    if args.data_dir is None:
        print(f"pricing-ops demo --events {args.events} into {data} ...", flush=True)
        subprocess.run([str(PRICING_OPS), "demo", "--events", str(args.events)], env=env, cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    warehouse = Warehouse(url=f"duckdb:///{data.resolve() / 'warehouse.duckdb'}", schema_name="analytics")
    target = data / "bi" / "marts.duckdb"
    started = time.monotonic()
    result = publish_bi_copy(warehouse, target, BI_TABLES, force=True)
    publish_s = time.monotonic() - started
    started = time.monotonic()
    unchanged = publish_bi_copy(warehouse, target, BI_TABLES)
    check_s = time.monotonic() - started
    assert not unchanged.published
    print(f"BI copy: {sum(result.rows.values()):,} rows in {len(result.rows)} tables published in {publish_s:.2f} s; "
          f"nothing changed: checked in {check_s:.2f} s")
    # What a refresh with new events publishes: a few segment rows changed and added, the rest as it was.
    with warehouse.connect() as conn:
        segments = "analytics.onboarding_pricing_experiment_segments"
        conn.execute(f"create temp table moved as select * from {segments} using sample 1000 rows")
        conn.execute(f"delete from {segments} where event_id in (select event_id from moved)")
        conn.execute(f"insert into {segments} select * replace (event_id + 1000000000000 as event_id) from moved")
    started = time.monotonic()
    changed = publish_bi_copy(warehouse, target, BI_TABLES)
    changed_s = time.monotonic() - started
    assert changed.published
    print(f"BI copy after 1,000 segment rows moved: published in {changed_s:.2f} s "
          f"(its changed rows only; a whole copy took {publish_s:.2f} s)")

    for name in ("provisioned", "superset.db"):  # a first start of this folder
        (data / "bi" / name).unlink(missing_ok=True)
    logs = data / "bi"
    first = time_start(env, logs / "bench-first.log")
    second = time_start(env, logs / "bench-second.log")
    print(f"pricing-ops bi, first start of the folder (provisioning): {first:.1f} s")
    print(f"pricing-ops bi, second start (nothing to provision):      {second:.1f} s "
          f"(target: within 60 s; {'met' if second < 60 else 'NOT met'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
