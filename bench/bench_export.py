"""Benchmark of the onboarding export: N rows (default 1M) of the segments mart to the file sink in
each format and to a webhook receiver on 127.0.0.1; prints rows/s and peak memory.

    .venv/bin/python bench/bench_export.py                       # 1M rows, every target
    .venv/bin/python bench/bench_export.py --rows 5000000 --targets file-ndjson,webhook
    .venv/bin/python bench/bench_export.py --repeat 3           # best of 3 on a busy machine

Each target runs in a fresh process (the real `run_export`, imports and all) so its peak RSS is
its own; the receiver runs in another process, as a real one would. rows/s is rows exported over
the wall time of the run (cursor read to last cursor write). Targets on a 2-core machine:
>= 200k rows/s NDJSON file, >= 100k rows/s webhook, < 500 MB peak at 5M rows.
"""

from __future__ import annotations

import argparse
import gzip
import json
import multiprocessing
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGETS = ("file-ndjson", "file-csv", "file-parquet", "webhook", "webhook-gzip")


def build_warehouse(path: Path, rows: int, loads: int = 8, shuffled: bool = False) -> None:
    """The segments mart with `rows` rows over `loads` extraction runs, made inside DuckDB, every
    third row a second slug of the event before. Stored in load order, as dbt builds it from the
    raw events (appended run after run); `shuffled` stores it in random order instead, the worst
    case for the export's windows (no block can be skipped)."""
    import duckdb

    with duckdb.connect(str(path)) as conn:
        conn.execute("set TimeZone = 'UTC'")
        conn.execute("create schema if not exists analytics")
        conn.execute(
            f"""
            create table analytics.onboarding_pricing_experiment_segments as
            select cast(e as bigint) as event_id, 'journey-' || (e // 2) as journey_id, 'order-' || (e // 2) as order_id,
                   'SO-' || lpad(cast(e // 2 as varchar), 8, '0') as order_number,
                   case when i % 3 = 2 then 'winter-copy' else 'spring-offer' end as slug,
                   case when e % 2 = 0 then 'a' else 'b' end as variant_key,
                   case when e % 2 = 0 then 'Control' else 'Spring 15% off' end as variant_name,
                   e % 2 = 0 as is_control, 'random_split' as assignment_strategy,
                   case when e % 5 = 0 then 'flag-' || e else null end as feature_flag_key,
                   'checkout' as surface, 'active' as journey_status, 'paid' as order_status,
                   cast((e % 100000) / 100.0 as decimal(12, 2)) as order_total, 'USD' as order_currency,
                   cast(e % 500 as integer) as loyalty_projection_points,
                   timestamptz '2026-11-01 00:00:00+00' + to_microseconds(e * 1013) as recorded_at,
                   timestamptz '2026-11-01 00:00:00+00' + to_microseconds(e * 1013) as ingested_at,
                   timestamptz '2026-11-20 00:00:00.000001+00' + to_seconds((i * {loads}) // {rows}) as loaded_at
            from (select i, case when i % 3 = 2 then i - 1 else i end as e from range(0, {rows}) t(i))
            order by {"random()" if shuffled else "loaded_at, event_id"}
            """
        )
        conn.execute("checkpoint")  # a settled warehouse, as dbt leaves it: no WAL for the export to replay


# Receiver (its own process) --------------------------------------------------------------------


def _serve(port_queue, stats_path: str, advertise_gzip: bool) -> None:
    counts = {"requests": 0, "rows": 0, "bytes": 0, "gzip": 0}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            raw = self.rfile.read(int(self.headers["Content-Length"]))
            body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
            counts["requests"] += 1
            counts["rows"] += body.count(b"\n")
            counts["bytes"] += len(raw)
            counts["gzip"] += self.headers.get("Content-Encoding") == "gzip"
            self.send_response(200)
            self.send_header("Content-Length", "0")
            if advertise_gzip:
                self.send_header("Accept-Encoding", "gzip")
            self.end_headers()

        def do_PUT(self):  # the bench asks for the counts
            Path(stats_path).write_text(json.dumps(counts))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    port_queue.put(server.server_address[1])
    server.serve_forever()


def start_receiver(stats_path: Path, advertise_gzip: bool):
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_serve, args=(queue, str(stats_path), advertise_gzip), daemon=True)
    proc.start()
    return proc, queue.get(timeout=30)


# One export (child process) --------------------------------------------------------------------


def child(warehouse: str, sink: str, fmt: str, out_dir: str, webhook: str | None, batch: int) -> None:
    sys.path.insert(0, str(ROOT))
    from assets.export import run_export
    from resources.export_cursor import ExportCursorStore
    from resources.export_sinks import ExportSinks
    from resources.warehouse import Warehouse

    sinks = ExportSinks(sink=sink, format=fmt, batch_size=batch, export_dir=out_dir, webhook_url=webhook)
    store = ExportCursorStore(file_path=f"{out_dir}/cursor.json", lock_path=f"{out_dir}/export.lock")
    started = time.perf_counter()
    record = run_export(warehouse=Warehouse(url=f"duckdb:///{warehouse}"), sinks=sinks, cursor_store=store,
                        run_id=f"bench-{sink}-{fmt}")
    seconds = time.perf_counter() - started
    print(json.dumps({"rows": record.rows_exported, "batches": record.batches, "seconds": seconds,
                      "peak_mb": peak_rss_mb()}))


def peak_rss_mb() -> float:
    """This process's peak resident memory. VmHWM, not ru_maxrss: Linux carries ru_maxrss over
    from the parent through fork + exec, so a child would report the bench's own peak."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_target(target: str, warehouse: Path, workdir: Path, batch: int) -> dict:
    sink, _, fmt = target.partition("-")
    out = workdir / target
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    receiver = None
    webhook = None
    stats = out / "receiver.json"
    if sink == "webhook":
        receiver, port = start_receiver(stats, advertise_gzip=(fmt == "gzip"))
        webhook = f"http://127.0.0.1:{port}/segments"
        fmt = "ndjson"
    try:
        code = (
            f"import sys; sys.path.insert(0, {str(ROOT)!r}); from bench.bench_export import child; "
            f"child({str(warehouse)!r}, {sink!r}, {fmt!r}, {str(out)!r}, {webhook!r}, {batch})"
        )
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                              env={**os.environ, "PYTHONPATH": str(ROOT)}, check=False)
        if proc.returncode != 0:
            raise SystemExit(f"{target} failed:\n{proc.stderr[-3000:]}")
        result = json.loads(proc.stdout.strip().splitlines()[-1])
        if receiver is not None:
            import requests

            requests.put(webhook, timeout=10)
            received = json.loads(stats.read_text())
            result["received_rows"] = received["rows"]
            result["gzip_requests"] = received["gzip"]
            result["wire_mb"] = received["bytes"] / 1e6
        else:
            result["files"] = len([p for p in out.iterdir() if p.name.startswith("onboarding_segments_")])
        return result
    finally:
        if receiver is not None:
            receiver.kill()
        shutil.rmtree(out, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, default=1000)
    parser.add_argument("--targets", default=",".join(TARGETS), help=f"comma-separated: {', '.join(TARGETS)}")
    parser.add_argument("--workdir", default=None, help="where the warehouse and outputs go (default: a temp dir)")
    parser.add_argument("--shuffled", action="store_true", help="store the mart in random order (worst case)")
    parser.add_argument("--repeat", type=int, default=1, help="runs per target; the best one is shown (shared machines)")
    args = parser.parse_args()

    workdir = Path(args.workdir or tempfile.mkdtemp(prefix="bench_export_"))
    workdir.mkdir(parents=True, exist_ok=True)
    warehouse = workdir / "warehouse.duckdb"
    try:
        if warehouse.exists():
            warehouse.unlink()
        started = time.perf_counter()
        build_warehouse(warehouse, args.rows, shuffled=args.shuffled)
        layout = "random order" if args.shuffled else "load order"
        print(f"mart: {args.rows:,} rows ({layout}) built in {time.perf_counter() - started:.1f}s, {os.cpu_count()} cores")
        print(f"load average {os.getloadavg()[0]:.1f}; best of {args.repeat} run(s) per target, peak MB the highest")
        print(f"{'target':<14} {'rows':>10} {'batches':>8} {'seconds':>8} {'rows/s':>10} {'peak MB':>8}  notes")
        for target in args.targets.split(","):
            runs = [run_target(target.strip(), warehouse, workdir, args.batch_size) for _ in range(args.repeat)]
            r = min(runs, key=lambda run: run["seconds"])
            r["peak_mb"] = max(run["peak_mb"] for run in runs)
            notes = (f"received {r['received_rows']:,} rows, {r['gzip_requests']} gzip, {r['wire_mb']:.0f} MB on the wire"
                     if "received_rows" in r else f"{r['files']} files")
            print(f"{target:<14} {r['rows']:>10,} {r['batches']:>8,} {r['seconds']:>8.2f} "
                  f"{r['rows'] / r['seconds']:>10,.0f} {r['peak_mb']:>8.0f}  {notes}", flush=True)
    finally:
        if not args.workdir:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
