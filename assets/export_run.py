"""One export run (contract section 5): lock, read the cursor, deliver batch after batch, record
the run in `export_runs`, send the Slack notice.

Windows are cut into batches of ONBOARDING_EXPORT_BATCH_SIZE rows; after each batch the sink
acknowledged, the cursor is written. A run killed at any point resumes at the last acknowledged
batch: nothing is lost, at most the one unacknowledged batch is sent again, with the same
`Idempotency-Key` (it has the same rows).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from assets.export_windows import DEFAULT_WINDOW_ROWS, cut_batches, read_ahead, read_export_windows
from models.export_cursor import CursorError, ExportCursor, start_cursor
from models.export_notices import render_escalation, render_failure, render_success
from models.export_runs import ExportRunRecord, export_is_failing
from models.instants import parse_instant
from models.marts import SEGMENTS_MART
from resources.export_cursor import CursorStoreError, ExportBusyError, ExportCursorStore
from resources.export_notifier import ExportNotifier
from resources.export_sinks import ExportSinks, SinkConfigError, SinkDeliveryError
from resources.slack import SlackDeliveryError
from resources.stores.export_runs import EXPORT_RUNS, record_export_run
from resources.warehouse import Warehouse

_PROGRESS_EVERY_SECONDS = 10.0

_log = logging.getLogger(__name__)


class ExportFailed(Exception):
    """An export run that failed after it started; carries what it did (rows, cursor) and why."""

    def __init__(self, record: ExportRunRecord):
        super().__init__(record.error or "export failed")
        self.record = record


@contextmanager
def _warehouse_lock(warehouse: Warehouse, wait_seconds: float) -> Iterator[None]:
    """Where state lives in a server (PostgreSQL), also a session lock there: exports on other hosts
    wait too. (A DuckDB file has one writer at a time already, and must not be held for the run.)"""
    state = warehouse.engine.state_engine()
    if not state.session_locks:
        yield
        return
    with state.connect() as conn:
        deadline = time.monotonic() + wait_seconds
        while not conn.try_session_lock("pricing_ops.onboarding_experiment_export"):
            if time.monotonic() >= deadline:
                raise ExportBusyError(
                    "another onboarding export holds the warehouse's export lock (another host); this run "
                    f"waited {wait_seconds:.0f}s and gives up without exporting (cursor unchanged)"
                )
            time.sleep(0.5)
        conn.commit()  # the session lock outlives the transaction; no snapshot held for the run
        yield


def _check_mart(warehouse: Warehouse) -> None:
    with warehouse.connect() as conn:
        if not conn.table_exists(warehouse.schema, SEGMENTS_MART):
            raise RuntimeError(
                f"the segments mart {warehouse.schema}.{SEGMENTS_MART} does not exist in {warehouse.describe()}; "
                "run `pricing-ops refresh` (or the refresh job) first"
            )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    known = (SinkDeliveryError, SinkConfigError, CursorError, CursorStoreError, ExportBusyError, RuntimeError)
    message = text if isinstance(exc, known) and text else f"{type(exc).__name__}: {text}"
    return message[:1000]


def _starting_cursor(cursor_store: ExportCursorStore, override: str | None, log: Any) -> ExportCursor | None:
    """The stored cursor, or the override (a bare instant that keeps the stored row count)."""
    if override is None:
        return cursor_store.read()
    try:
        instant = parse_instant(override)
    except ValueError:
        raise CursorError(
            f"--cursor / config cursor {override[:60]!r} is not an ISO 8601 instant; use e.g. 2026-11-26T09:00:00Z"
        ) from None
    try:
        stored = cursor_store.read()
    except CursorError as exc:
        # The override is how an operator repairs an unreadable cursor; the count restarts at 0.
        log.warning(f"ignoring the unreadable stored cursor because a cursor override was given: {exc}")
        stored = None
    cursor = ExportCursor(instant, rows_exported=stored.rows_exported if stored else 0, updated_at=datetime.now(UTC))
    # Saved at once: the next run replays from this instant even if this one delivers nothing.
    cursor_store.write(cursor)
    return cursor


def run_export(
    *,
    warehouse: Warehouse,
    sinks: ExportSinks,
    cursor_store: ExportCursorStore,
    run_id: str,
    sink: str | None = None,
    fmt: str | None = None,
    limit: int | None = None,
    cursor_override: str | None = None,
    notifier: ExportNotifier | None = None,
    log: Any = None,
    window_rows: int | None = None,
) -> ExportRunRecord:
    """One export run: lock, read the cursor, deliver batch after batch (cursor written after each
    acknowledged one), record the run in `export_runs`, send the Slack notice.

    Raises ExportBusyError (nothing done, nothing recorded) when another export runs, ExportFailed
    (recorded, notified) when the run fails after it started.
    """
    log = log or _log
    chosen_sink, chosen_fmt = sinks.resolve(sink, fmt)
    if limit is not None and limit < 1:
        raise SinkConfigError(f"limit must be a positive number of rows, got {limit}")
    batch_size = sinks.batch_size
    window = window_rows or max(batch_size, (DEFAULT_WINDOW_ROWS // batch_size) * batch_size)
    record = ExportRunRecord(run_id=run_id, started_at=datetime.now(UTC), sink=chosen_sink, format=chosen_fmt)

    with cursor_store.exclusive(run_id), _warehouse_lock(warehouse, cursor_store.lock_wait_seconds):
        started = time.monotonic()
        try:
            cursor = _starting_cursor(cursor_store, cursor_override, log)
            record.cursor_before = record.cursor_after = cursor
            log.info(
                f"export to {chosen_sink} ({chosen_fmt}), batches of {batch_size}, cursor {record.cursor_before_text} "
                f"at {cursor_store.describe()}" + (f", at most {limit} rows" if limit else "")
            )
            _check_mart(warehouse)
            writer = sinks.open(chosen_sink, chosen_fmt, run_id, record.started_at, log)
            record.destination = writer.destination
            last_progress = time.monotonic()
            try:
                windows = read_export_windows(warehouse, cursor, chosen_fmt, window, limit)
                for batch in cut_batches(read_ahead(windows), batch_size):
                    writer.deliver(batch)
                    now = datetime.now(UTC)
                    cursor = cursor.advanced(batch.last, batch.rows, now) if cursor else start_cursor(batch.last, batch.rows, now)
                    cursor_store.write(cursor)
                    record.cursor_after = cursor
                    record.rows_exported += batch.rows
                    record.batches += 1
                    if time.monotonic() - last_progress >= _PROGRESS_EVERY_SECONDS:
                        last_progress = time.monotonic()
                        rate = record.rows_exported / max(last_progress - started, 1e-9)
                        log.info(f"{record.rows_exported} rows in {record.batches} batches ({rate:,.0f} rows/s)")
            finally:
                writer.close()
            record.status = "success"
        except Exception as exc:  # noqa: BLE001 - any failure is recorded, notified and re-raised
            record.status = "failed"
            record.error = _one_line(exc)
        record.finished_at = datetime.now(UTC)
        elapsed = time.monotonic() - started
        streak = _record_safely(warehouse, record, log)
        if record.status == "success":
            log.info(
                f"exported {record.rows_exported} rows in {record.batches} batches to {record.destination} in "
                f"{elapsed:.1f}s ({record.rows_exported / max(elapsed, 1e-9):,.0f} rows/s); cursor now "
                f"{record.cursor_after_text}"
            )
        _notify(notifier, record, streak, log)
    if record.status != "success":
        raise ExportFailed(record)
    return record


def _record_safely(warehouse: Warehouse, record: ExportRunRecord, log: Any) -> int:
    try:
        return record_export_run(warehouse, record)
    except Exception as exc:  # noqa: BLE001 - the export itself is done (or failed for its own reason): say so, go on
        log.warning(f"could not record the run in {warehouse.schema}.{EXPORT_RUNS}: {_one_line(exc)}")
        return 1 if record.status == "failed" else 0


def _notify(notifier: ExportNotifier | None, record: ExportRunRecord, streak: int, log: Any) -> None:
    if notifier is None or not notifier.enabled:
        return
    url = notifier.run_url(record.run_id)
    messages = [render_success(record, url)] if record.status == "success" else [render_failure(record, url)]
    if record.status == "failed" and export_is_failing(streak):
        messages.append(render_escalation(record, streak, url))
    for text in messages:
        try:
            notifier.send(text)
        except SlackDeliveryError as exc:  # a notice never turns a good export into a failed one
            log.warning(f"export notice not sent: {exc}")
