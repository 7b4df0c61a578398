"""The onboarding experiment export (contract section 5): the segments mart, in load order, to a
webhook, files or S3, resuming from a cursor, one export at a time.

Reading: the rows after the cursor are first planned into windows of about 100k rows with cheap
aggregate queries (one per extraction run's `loaded_at`; a big load cut at quantiles of its event
ids). Each window is then one query on plain ranges (loaded_at, event_id) that the database can
push into its scan and skip blocks with, its payload rendered by the database (JSON text for
NDJSON) straight into Arrow. The warehouse connection is held only while a window is read (a
DuckDB file takes one process at a time, and the refresh must not wait for a slow receiver);
memory holds at most two windows (the next is read while the current one is delivered), whatever
the number of rows.

Delivering: windows are cut into batches of ONBOARDING_EXPORT_BATCH_SIZE rows; after each batch
the sink acknowledged, the cursor is written. A run killed at any point resumes at the last
acknowledged batch: nothing is lost, at most the one unacknowledged batch is sent again, with the
same `Idempotency-Key` (it has the same rows).
"""

# No `from __future__ import annotations`: Dagster reads the op's config and resource annotations at runtime.
import logging
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import Enum
from typing import Any

import dagster as dg
import pyarrow as pa
from pydantic import Field

from models.export_notices import render_escalation, render_failure, render_success, should_escalate
from models.export_rows import (
    EXPORT_FIELDS,
    KEY_COLUMNS,
    NDJSON_LINE,
    SEGMENTS_MART,
    CursorError,
    ExportCursor,
    ExportRunRecord,
    after_cursor_sql,
    cursor_params,
    failures_in_a_row,
    format_instant,
    key_select_sql,
    order_by_sql,
    parse_instant,
    payload_select_sql,
    start_cursor,
)
from resources.export_cursor import CursorStoreError, ExportBusyError, ExportCursorStore
from resources.export_notifier import ExportNotifier
from resources.export_sinks import ExportBatch, ExportSinks, SinkConfigError, SinkDeliveryError
from resources.slack import SlackDeliveryError
from resources.warehouse import Warehouse, WarehouseConnection

EXPORT_JOB_NAME = "onboarding_experiment_export"
EXPORT_OP_NAME = "export_onboarding_segments"
EXPORT_RUNS = "export_runs"
# Rows read per window: big enough that the per-query cost vanishes, small enough to stay a few MB.
DEFAULT_WINDOW_ROWS = 100_000
_PROGRESS_EVERY_SECONDS = 10.0

_log = logging.getLogger(__name__)


class ExportFailed(Exception):
    """An export run that failed after it started; carries what it did (rows, cursor) and why."""

    def __init__(self, record: ExportRunRecord):
        super().__init__(record.error or "export failed")
        self.record = record


# Reading ---------------------------------------------------------------------------------------

_TEXT = pa.string()


def arrow_schema(fmt: str) -> pa.Schema:
    """The columns of a window/batch: the key, then the payload of the format."""
    keys = [
        pa.field(KEY_COLUMNS[0], pa.timestamp("us", tz="UTC")),
        pa.field(KEY_COLUMNS[1], pa.int64()),
        pa.field(KEY_COLUMNS[2], _TEXT),
    ]
    if fmt == "ndjson":
        return pa.schema([*keys, pa.field(NDJSON_LINE, _TEXT)])
    fields = []
    for f in EXPORT_FIELDS:
        if f.kind == "int":
            typ = pa.int64() if f.key == "eventId" else pa.int32()
        elif f.kind == "bool":
            typ = pa.bool_()
        elif f.kind == "instant":
            typ = pa.timestamp("us", tz="UTC") if fmt == "parquet" else _TEXT
        elif f.kind == "money":
            typ = pa.decimal128(38, 2) if fmt == "parquet" else _TEXT
        else:
            typ = _TEXT
        fields.append(pa.field(f.key, typ))
    return pa.schema([*keys, *fields])


def _fetch_arrow(conn: WarehouseConnection, sql: str, params: dict[str, Any], schema: pa.Schema) -> pa.Table:
    """A window as Arrow with the declared names and types (naive UTC timestamps become UTC-labelled,
    Postgres's inferred types the declared ones)."""
    table = conn.fetch_arrow(sql, params)
    return table.rename_columns(schema.names).cast(schema)


@dataclass(frozen=True)
class _Window:
    """A slice of the export order cut on simple ranges the scan can push down (and skip blocks
    with): loaded_at in [first, last], and for a split load, event_id in (after, through]."""

    first_loaded_at: datetime
    last_loaded_at: datetime
    after_event_id: int | None = None
    through_event_id: int | None = None

    def sql(self) -> str:
        parts = ["m.loaded_at >= :w_first", "m.loaded_at <= :w_last"]
        if self.after_event_id is not None:
            parts.append("m.event_id > :w_after")
        if self.through_event_id is not None:
            parts.append("m.event_id <= :w_through")
        return " and ".join(parts)

    def params(self) -> dict[str, Any]:
        params: dict[str, Any] = {"w_first": self.first_loaded_at, "w_last": self.last_loaded_at}
        if self.after_event_id is not None:
            params["w_after"] = self.after_event_id
        if self.through_event_id is not None:
            params["w_through"] = self.through_event_id
        return params


def _quantiles_sql(engine: str, mart: str, where: str, pieces: int) -> str:
    fractions = ", ".join(f"{i / pieces:.6f}" for i in range(1, pieces))
    if engine == "duckdb":
        return f"select quantile_disc(m.event_id, [{fractions}]) from {mart} m where {where} and m.loaded_at = :g"
    return (
        f"select percentile_disc(array[{fractions}]::float8[]) within group (order by m.event_id) "
        f"from {mart} m where {where} and m.loaded_at = :g"
    )


def _plan_windows(conn: WarehouseConnection, mart: str, position: ExportCursor | None, window_rows: int) -> list[_Window]:
    """Windows of about `window_rows` rows covering every row after `position`, in export order.

    Loads (one loaded_at per extraction run) smaller than a window are merged; a bigger one is cut
    at quantiles of its event ids (an event's rows stay together: a handful of slugs at most)."""
    engine = conn.kind
    where = after_cursor_sql(engine, position)
    params = cursor_params(position)
    loads = conn.fetchall(
        f"select m.loaded_at, count(*) from {mart} m where {where} group by m.loaded_at order by m.loaded_at", params
    )
    windows: list[_Window] = []
    pending: list[datetime] = []
    pending_rows = 0
    for loaded_at, count in loads:
        if pending and pending_rows + count > window_rows:
            windows.append(_Window(pending[0], pending[-1]))
            pending, pending_rows = [], 0
        if count <= window_rows:
            pending.append(loaded_at)
            pending_rows += count
            continue
        pieces = -(-count // window_rows)
        [cuts] = conn.fetchone(_quantiles_sql(engine, mart, where, pieces), {**params, "g": loaded_at})
        previous = None
        for cut in sorted({int(c) for c in cuts or []}):
            windows.append(_Window(loaded_at, loaded_at, previous, cut))
            previous = cut
        windows.append(_Window(loaded_at, loaded_at, previous, None))
    if pending:
        windows.append(_Window(pending[0], pending[-1]))
    return windows


def _connection_setup(conn: WarehouseConnection) -> None:
    if conn.kind == "duckdb":
        # DuckDB draws a progress bar on stdout for queries over 2 s; stdout is the CLI's output.
        conn.execute("set enable_progress_bar = false")


def read_export_windows(
    warehouse: Warehouse,
    after: ExportCursor | None,
    fmt: str,
    window_rows: int = DEFAULT_WINDOW_ROWS,
    limit: int | None = None,
) -> Iterator[pa.Table]:
    """Rows of the segments mart after `after`, in (loaded_at, event_id, slug) order, as Arrow tables
    of about `window_rows` rows (the key columns, then the payload of `fmt`), `limit` rows at most.

    The windows are planned first (cheap aggregate queries), then read one connection each, so the
    warehouse is free between windows. Rows of a planned window never move (loaded_at is kept by
    re-reads), and a plan once done is followed by a new one: rows loaded meanwhile go out too."""
    mart = f"{warehouse.schema}.{SEGMENTS_MART}"
    schema = arrow_schema(fmt)
    position = after
    remaining = limit
    while True:
        with warehouse.connect() as conn:
            _connection_setup(conn)
            plan = _plan_windows(conn, mart, position, window_rows)
        if not plan:
            return
        for window in plan:
            with warehouse.connect() as conn:
                _connection_setup(conn)
                engine = conn.kind
                table = _fetch_arrow(
                    conn,
                    f"select {key_select_sql(engine)}, {payload_select_sql(engine, fmt)} from {mart} m "
                    f"where {window.sql()} and {after_cursor_sql(engine, position)} order by {order_by_sql(engine)}",
                    {**window.params(), **cursor_params(position)},
                    schema,
                )
            if remaining is not None and table.num_rows > remaining:
                table = table.slice(0, remaining)
            if table.num_rows == 0:
                continue
            yield table
            tail = table.slice(table.num_rows - 1, 1)
            position = ExportCursor(
                tail.column(0)[0].as_py(), int(tail.column(1)[0].as_py()), tail.column(2)[0].as_py()
            )
            if remaining is not None:
                remaining -= table.num_rows
                if remaining == 0:
                    return


def _read_ahead(windows: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """Read the next window while the current one is being delivered (one window ahead)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="export-read") as pool:
        pending = pool.submit(next, windows, None)
        while True:
            window = pending.result()
            if window is None:
                return
            pending = pool.submit(next, windows, None)
            yield window


def cut_batches(windows: Iterator[pa.Table], batch_size: int) -> Iterator[ExportBatch]:
    """Consecutive batches of exactly `batch_size` rows (the last one may be short), numbered from 1.
    Boundaries depend only on the starting position, so a resumed run cuts the same batches."""
    pending: list[pa.Table] = []
    pending_rows = 0
    seq = 0
    for window in windows:
        offset = 0
        while offset < window.num_rows:
            take = min(batch_size - pending_rows, window.num_rows - offset)
            pending.append(window.slice(offset, take))
            pending_rows += take
            offset += take
            if pending_rows == batch_size:
                seq += 1
                yield ExportBatch(seq, pending[0] if len(pending) == 1 else pa.concat_tables(pending))
                pending, pending_rows = [], 0
    if pending_rows:
        seq += 1
        yield ExportBatch(seq, pending[0] if len(pending) == 1 else pa.concat_tables(pending))


# The run ---------------------------------------------------------------------------------------


def ensure_export_runs(conn: WarehouseConnection, schema: str) -> None:
    conn.execute(f"create schema if not exists {schema}")
    conn.execute(
        f"""create table if not exists {schema}.{EXPORT_RUNS} (
            run_id text primary key,
            started_at timestamptz not null,
            finished_at timestamptz,
            status text not null,
            sink text not null,
            rows_exported bigint not null,
            batches integer not null,
            cursor_before text,
            cursor_after text,
            error text
        )"""
    )


def record_export_run(warehouse: Warehouse, record: ExportRunRecord) -> int:
    """Store the run in `export_runs` (replacing a row of the same run id); returns how many runs in
    a row have now failed (0 after a success)."""
    with warehouse.connect() as conn:
        ensure_export_runs(conn, warehouse.schema)
        table = f"{warehouse.schema}.{EXPORT_RUNS}"
        conn.execute(f"delete from {table} where run_id = :run_id", {"run_id": record.run_id})
        conn.execute(
            f"insert into {table} (run_id, started_at, finished_at, status, sink, rows_exported, batches, "
            "cursor_before, cursor_after, error) values (:run_id, :started_at, :finished_at, :status, :sink, "
            ":rows, :batches, :before, :after, :error)",
            {
                "run_id": record.run_id,
                "started_at": record.started_at,
                "finished_at": record.finished_at,
                "status": record.status,
                "sink": record.sink,
                "rows": record.rows_exported,
                "batches": record.batches,
                "before": record.cursor_before.to_json().strip() if record.cursor_before else None,
                "after": record.cursor_after.to_json().strip() if record.cursor_after else None,
                "error": record.error,
            },
        )
        statuses = conn.fetchall(f"select status from {table} order by started_at desc limit 50")
    return failures_in_a_row([s[0] for s in statuses])


@contextmanager
def _warehouse_lock(warehouse: Warehouse, wait_seconds: float) -> Iterator[None]:
    """On a Postgres warehouse, also a session advisory lock: exports on other hosts wait too."""
    if warehouse.kind != "postgres":
        yield
        return
    with warehouse.connect() as conn:
        deadline = time.monotonic() + wait_seconds
        while not conn.fetchone("select pg_try_advisory_lock(hashtext('pricing_ops.onboarding_experiment_export'))")[0]:
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
                for batch in cut_batches(_read_ahead(windows), batch_size):
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
    if record.status == "failed" and should_escalate(streak):
        messages.append(render_escalation(record, streak, url))
    for text in messages:
        try:
            notifier.send(text)
        except SlackDeliveryError as exc:  # a notice never turns a good export into a failed one
            log.warning(f"export notice not sent: {exc}")


# Dagster ---------------------------------------------------------------------------------------


class ExportSinkChoice(str, Enum):
    webhook = "webhook"
    file = "file"
    s3 = "s3"


class ExportFormatChoice(str, Enum):
    ndjson = "ndjson"
    csv = "csv"
    parquet = "parquet"


class OnboardingExportConfig(dg.Config):
    """Launchpad / CLI options of one export run; unset means the settings' value."""

    sink: ExportSinkChoice | None = Field(default=None, description="webhook, file or s3 (ONBOARDING_EXPORT_SINK)")
    format: ExportFormatChoice | None = Field(
        default=None, description="ndjson, csv or parquet for file/s3 (ONBOARDING_EXPORT_FORMAT)"
    )
    limit: int | None = Field(default=None, description="export at most this many rows in this run")
    cursor: str | None = Field(
        default=None,
        description="ISO 8601 instant: replay every row loaded at or after it (saved as the cursor)",
    )


def _metadata(record: ExportRunRecord) -> dict[str, Any]:
    return {
        "rows": dg.MetadataValue.int(record.rows_exported),
        "batches": dg.MetadataValue.int(record.batches),
        "cursor_before": dg.MetadataValue.text(record.cursor_before_text),
        "cursor_after": dg.MetadataValue.text(record.cursor_after_text),
        "sink": dg.MetadataValue.text(f"{record.sink} ({record.format})"),
        "destination": dg.MetadataValue.text(record.destination or "-"),
        "started_at": dg.MetadataValue.text(format_instant(record.started_at)),
        "finished_at": dg.MetadataValue.text(format_instant(record.finished_at) if record.finished_at else "-"),
    }


def _tag_run(context: dg.OpExecutionContext, record: ExportRunRecord) -> None:
    # Run tags show in the Runs list, so rows and cursors are visible without opening a run.
    try:
        context.instance.add_run_tags(
            context.run_id,
            {
                "export/rows": str(record.rows_exported),
                "export/batches": str(record.batches),
                "export/cursor_before": record.cursor_before_text,
                "export/cursor_after": record.cursor_after_text,
            },
        )
    except Exception as exc:  # noqa: BLE001 - tags are a convenience, never a failure
        context.log.warning(f"could not tag the run: {type(exc).__name__}")


@dg.op(
    name=EXPORT_OP_NAME,
    description="Export new rows of the segments mart to the sink, resuming from the cursor.",
    out=dg.Out(int, description="rows exported"),
    pool=EXPORT_JOB_NAME,
)
def export_onboarding_segments(
    context: dg.OpExecutionContext,
    config: OnboardingExportConfig,
    warehouse: Warehouse,
    export_sinks: ExportSinks,
    export_cursor: ExportCursorStore,
    export_notifier: ExportNotifier,
):
    try:
        record = run_export(
            warehouse=warehouse,
            sinks=export_sinks,
            cursor_store=export_cursor,
            run_id=context.run_id,
            sink=config.sink.value if config.sink else None,
            fmt=config.format.value if config.format else None,
            limit=config.limit,
            cursor_override=config.cursor,
            notifier=export_notifier,
            log=context.log,
        )
    except ExportFailed as exc:
        _tag_run(context, exc.record)
        raise dg.Failure(description=exc.record.error, metadata=_metadata(exc.record), allow_retries=False) from None
    except (ExportBusyError, SinkConfigError) as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    _tag_run(context, record)
    yield dg.Output(record.rows_exported, metadata=_metadata(record))


@dg.job(
    name=EXPORT_JOB_NAME,
    description="Onboarding experiment export: new rows of onboarding_pricing_experiment_segments to the "
    "webhook, files or S3, in load order, resuming from the cursor (contract section 5).",
    # One export at a time in the run queue (with a limit of 1 for this key in dagster.yaml); the
    # lock in run_export holds it for CLI runs and other processes too.
    tags={"dagster/concurrency_key": EXPORT_JOB_NAME},
)
def onboarding_experiment_export():
    export_onboarding_segments()


def run_config(
    sink: str | None = None, fmt: str | None = None, limit: int | None = None, cursor: str | None = None
) -> dict[str, Any]:
    """The job's run config for the given options (the CLI's flags)."""
    options = {k: v for k, v in {"sink": sink, "format": fmt, "limit": limit, "cursor": cursor}.items() if v is not None}
    return {"ops": {EXPORT_OP_NAME: {"config": options}}}


__all__ = [
    "ExportFailed",
    "onboarding_experiment_export",
    "read_export_windows",
    "run_config",
    "run_export",
]
