"""Reading the export: the rows after the cursor, planned into windows and cut into batches.

The rows after the cursor are first planned into windows of about 100k rows with cheap aggregate
queries (one per extraction run's `loaded_at`; a big load cut at quantiles of its event ids). Each
window is then one query on plain ranges (loaded_at, event_id) that the database can push into its
scan and skip blocks with, its payload rendered by the database (JSON text for NDJSON) straight
into Arrow. The warehouse connection is held only while a window is read (a DuckDB file takes one
process at a time, and the refresh must not wait for a slow receiver); memory holds at most two
windows (the next is read while the current one is delivered), whatever the number of rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pyarrow as pa

from models.export_cursor import ExportCursor
from models.export_rows import (
    EXPORT_FIELDS,
    KEY_COLUMNS,
    NDJSON_LINE,
    after_cursor_sql,
    cursor_params,
    key_select_sql,
    order_by_sql,
    payload_select_sql,
)
from models.marts import SEGMENTS_MART
from resources.export_batches import ExportBatch
from resources.warehouse import Warehouse, WarehouseConnection

# Rows read per window: big enough that the per-query cost vanishes, small enough to stay a few MB.
DEFAULT_WINDOW_ROWS = 100_000

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


def _quantiles_sql(engine, mart: str, where: str, pieces: int) -> str:
    quantiles = engine.quantiles_sql("m.event_id", [i / pieces for i in range(1, pieces)])
    return f"select {quantiles} from {mart} m where {where} and m.loaded_at = :g"


def _plan_windows(conn: WarehouseConnection, mart: str, position: ExportCursor | None, window_rows: int) -> list[_Window]:
    """Windows of about `window_rows` rows covering every row after `position`, in export order.

    Loads (one loaded_at per extraction run) smaller than a window are merged; a bigger one is cut
    at quantiles of its event ids (an event's rows stay together: a handful of slugs at most)."""
    engine = conn.engine
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
            plan = _plan_windows(conn, mart, position, window_rows)
        if not plan:
            return
        for window in plan:
            with warehouse.connect() as conn:
                engine = conn.engine
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


def read_ahead(windows: Iterator[pa.Table]) -> Iterator[pa.Table]:
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
