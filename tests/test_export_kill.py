"""A real `kill -9` of `pricing-ops export` in the middle of a run: the next run resumes from the
last acknowledged batch, no row is missing, and the only duplicate is the batch that was in flight,
sent again with the same Idempotency-Key."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from export_helpers import Receiver, bulk_segments_duckdb

from assets.export import run_export
from orchestration.export import export_resources
from orchestration.resources import build_warehouse

ROWS = 1200
BATCH = 100


def _cli_env(settings, receiver_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DAGSTER_HOME",)}
    env.update(
        DATA_DIR=str(settings.data_dir),
        DAGSTER_HOME=str(settings.dagster_home),
        WAREHOUSE_URL=settings.WAREHOUSE_URL.get_secret_value(),
        ONBOARDING_EXPORT_SINK="webhook",
        ANALYTICS_SEGMENTS_WEBHOOK=receiver_url,
        ONBOARDING_EXPORT_BATCH_SIZE=str(BATCH),
        PYTHONPATH="",
    )
    return env


def test_a_killed_export_resumes_from_the_last_acknowledged_batch(make_settings, tmp_path):
    path = tmp_path / "warehouse.duckdb"
    bulk_segments_duckdb(path, ROWS, loads=3)
    in_flight = threading.Event()
    release = threading.Event()

    def plan(number, headers):
        if number == 4:  # batch 4 reaches the receiver; its answer never reaches the exporter
            in_flight.set()
            release.wait(120)

    receiver = Receiver(plan=plan).start()
    settings = make_settings(WAREHOUSE_URL=f"duckdb:///{path}", ONBOARDING_EXPORT_SINK="webhook",
                             ANALYTICS_SEGMENTS_WEBHOOK=receiver.url, ONBOARDING_EXPORT_BATCH_SIZE=BATCH)
    try:
        cli = [str(Path(sys.executable).parent / "pricing-ops"), "export"]
        proc = subprocess.Popen(cli, cwd=tmp_path, env=_cli_env(settings, receiver.url),
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            assert in_flight.wait(180), proc.stderr.read1().decode() if proc.poll() is not None else "no batch 4"
            os.kill(proc.pid, signal.SIGKILL)
            assert proc.wait(30) == -signal.SIGKILL
        finally:
            if proc.poll() is None:
                proc.kill()
            release.set()

        # The cursor is whole (atomic rename) and sits after batch 3, the last acknowledged one.
        cursor = json.loads(settings.export_cursor_path.read_text())
        assert cursor["rowsExported"] == 3 * BATCH
        assert len(receiver.requests) == 4

        resources = export_resources(settings)
        record = run_export(warehouse=build_warehouse(settings), sinks=resources["export_sinks"],
                            cursor_store=resources["export_cursor"], run_id="resumed")
        assert record.rows_exported == ROWS - 3 * BATCH
        assert record.cursor_before.rows_exported == 3 * BATCH
    finally:
        receiver.stop()

    received = [(r.headers["Idempotency-Key"], row["eventId"], row["slug"]) for r in receiver.requests for row in r.rows]
    counts = Counter((event, slug) for _, event, slug in received)
    assert len(counts) == ROWS  # no row missing
    duplicated = {key for key, n in counts.items() if n > 1}
    assert all(n <= 2 for n in counts.values())
    # The duplicates are exactly batch 4, sent twice with the same key.
    killed_batch, resent_batch = receiver.requests[3], receiver.requests[4]
    assert duplicated == {(row["eventId"], row["slug"]) for row in killed_batch.rows}
    assert len(duplicated) == BATCH
    assert killed_batch.body == resent_batch.body
    assert killed_batch.headers["Idempotency-Key"] == resent_batch.headers["Idempotency-Key"]
    # And everything arrived in export order once the duplicate batch is set aside.
    order = [(row["eventId"], row["slug"]) for r in receiver.requests[:3] + receiver.requests[4:] for row in r.rows]
    assert len(order) == ROWS and len(set(order)) == ROWS
