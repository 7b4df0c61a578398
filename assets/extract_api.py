"""Extract from the reporting API (no database access): events, journeys and orders into the raw tables.

Called by the extract multi-asset (`assets/extract.py`) when the source is the API; both paths share
`resources/raw_tables.py`. Export rows are mapped onto the source tables by
`models/reporting_api_rows.py` and merged the way the database extract merges (scratch stage, then insert-new for events with a monotone `loaded_at`, upsert by key
for journeys and orders), a few thousand rows per transaction as the pages arrive, so the feed is
never held in memory whole.

Incremental: each flush commits, with its rows, the cursor to resume from in
`<raw schema>.api_extract_state` (one row per raw table): the request cursor of the page holding the
first row not yet written, and at the end the cursor of the last page. The next run re-reads that
page; every write is idempotent by key, so the re-read adds nothing.

The API has no providers and no telemetry: their raw tables are left as they are (created empty
if missing) and still reported as materialized, with metadata saying so, because the dbt step runs
only when every raw table it depends on was materialized; without them the marts would not be built
at all. Guardrails need the database source. The API has no order status either: orders it creates
are `unknown`, never booked.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import dagster as dg
import pyarrow as pa

from models.reporting_api_rows import (
    EVENT_TYPE,
    UNKNOWN_ORDER_STATUS,
    MappedRows,
    map_export_rows,
    split_trailing_event,
)
from models.source_tables import (
    LOADED_AT,
    ONBOARDING_JOURNEY_EVENTS,
    ONBOARDING_JOURNEYS,
    ORDERS,
    SourceTable,
)
from resources.raw_tables import ExtractResult, ensure_raw_tables, next_loaded_at, raw_asset_key
from resources.reporting_api import ReportingApiClient
from resources.source import SourceDatabase
from resources.stores.api_extract_state import ensure_state_table, save_cursor, saved_cursor
from resources.warehouse import Warehouse, WarehouseConnection

API_TABLES: tuple[SourceTable, ...] = (ONBOARDING_JOURNEY_EVENTS, ONBOARDING_JOURNEYS, ORDERS)
# Export rows per warehouse transaction: bounds memory and the work a crash can lose.
FLUSH_ROWS = 20_000

_UTC_US = pa.timestamp("us", tz="UTC")


def extract_from_api(
    context: Any,
    source: SourceDatabase,
    warehouse: Warehouse,
    selected: set[str],
    flush_rows: int = FLUSH_ROWS,
) -> Iterator[dg.MaterializeResult]:
    """Bring the selected raw tables the API can fill up to date; yields one result per selected table
    (those the API cannot fill are left unchanged, see the module docstring)."""
    log = context.log
    tables = [t for t in API_TABLES if t.name in selected]
    unavailable = sorted(selected - {t.name for t in API_TABLES})
    if unavailable:
        log.info(
            f"not available from the reporting API, left as they are: {', '.join(unavailable)} "
            "(set ONBOARDING_EXPORT_DATABASE_URL to extract providers and guardrail telemetry)"
        )
    if not tables:
        yield from _left_unchanged(warehouse, unavailable)
        return
    if ORDERS in tables:
        log.info(
            f"orders from the reporting API have status '{UNKNOWN_ORDER_STATUS}' (the feed carries no order "
            "status), so they count as not booked; revenue marts need ONBOARDING_EXPORT_DATABASE_URL"
        )
    if not warehouse.engine.upserts:
        raise RuntimeError(
            f"the reporting API source merges rows in place, which {warehouse.describe()} cannot do (no row "
            "upserts); use ONBOARDING_EXPORT_DATABASE_URL as the source, or a DuckDB or PostgreSQL warehouse"
        )
    started = time.monotonic()
    client = ReportingApiClient(source.api_base_url or "", source.api_key)
    names = [t.name for t in tables]
    results = {name: ExtractResult(table=name) for name in names}
    with warehouse.connect() as conn:
        ensure_raw_tables(warehouse, conn)
        ensure_state_table(warehouse, conn)
        cursor_before, why = saved_cursor(conn, warehouse, names, client.base_url)
        counts_before = {name: _count(conn, warehouse, name) for name in names}
    log.info(f"reporting API {client.endpoint}: {why}")

    # Rows read but not written yet, each with the request cursor of the page it came from.
    pending: list[tuple[str | None, dict]] = []
    skipped: dict[str, int] = {}
    pages = 0
    flushes = 0
    cursor_after = cursor_before
    for page in client.pages(cursor_before):
        pages += 1
        pending.extend((page.request_cursor, row) for row in page.events)
        if page.next_cursor is None:
            rows = [row for _, row in pending]
            cursor_after = page.request_cursor
            pending = []
        elif len(pending) >= flush_rows:
            # The last event may go on in the next page: it waits, and the saved cursor points at it.
            complete, _trailing = split_trailing_event([row for _, row in pending])
            if not complete:
                continue
            cursor_after = pending[len(complete)][0]
            rows, pending = complete, pending[len(complete) :]
        else:
            continue
        mapped = map_export_rows(rows)
        for reason, n in mapped.skipped.items():
            skipped[reason] = skipped.get(reason, 0) + n
        _write(warehouse, tables, mapped, cursor_after, client.base_url, len(rows), results)
        flushes += 1
        log.info(f"reporting API: {pages} pages read, {len(rows)} export rows written (flush {flushes})")

    with warehouse.connect() as conn:
        for name in names:
            result = results[name]
            result.rows_total = _count(conn, warehouse, name)
            result.rows_inserted = result.rows_total - counts_before[name]
            result.seconds = time.monotonic() - started
    if skipped:
        log.warning("reporting API rows left out: " + "; ".join(f"{n} x {r}" for r, n in sorted(skipped.items())))
    for name in names:
        result = results[name]
        log.info(
            f"{name}: {result.rows_inserted} new, {result.rows_updated} updated, {result.rows_total} in warehouse "
            f"({pages} API pages, {result.seconds:.2f}s)"
        )
        metadata = result.metadata()
        metadata.update(
            {
                "source": dg.MetadataValue.text(f"reporting API {client.base_url}"),
                "api_pages": dg.MetadataValue.int(pages),
                "api_retries": dg.MetadataValue.int(client.retries),
                "read_since": dg.MetadataValue.text(
                    f"cursor {cursor_before}" if cursor_before else "beginning of the feed (full read)"
                ),
                "resume_cursor": dg.MetadataValue.text(cursor_after or "beginning of the feed"),
                "rows_skipped": dg.MetadataValue.int(sum(skipped.values())),
            }
        )
        if skipped:
            metadata["skipped_reasons"] = dg.MetadataValue.md(
                "\n".join(f"- {n} x {reason}" for reason, n in sorted(skipped.items()))
            )
        yield dg.MaterializeResult(asset_key=raw_asset_key(name), metadata=metadata)
    yield from _left_unchanged(warehouse, unavailable)


def _left_unchanged(warehouse: Warehouse, names: list[str]) -> Iterator[dg.MaterializeResult]:
    if not names:
        return
    with warehouse.connect() as conn:
        ensure_raw_tables(warehouse, conn)
        counts = {name: _count(conn, warehouse, name) for name in names}
    for name in names:
        yield dg.MaterializeResult(
            asset_key=raw_asset_key(name),
            metadata={
                "source": dg.MetadataValue.text(
                    "not available from the reporting API: left unchanged (needs ONBOARDING_EXPORT_DATABASE_URL)"
                ),
                "rows_inserted": dg.MetadataValue.int(0),
                "dagster/row_count": dg.MetadataValue.int(counts[name]),
            },
        )


def _count(conn: WarehouseConnection, warehouse: Warehouse, table: str) -> int:
    row = conn.fetchone(f"select count(*) from {warehouse.raw_schema}.{table}")
    return int(row[0]) if row else 0


def _write(
    warehouse: Warehouse,
    tables: list[SourceTable],
    mapped: MappedRows,
    resume_cursor: str | None,
    base_url: str,
    export_rows: int,
    results: dict[str, ExtractResult],
) -> None:
    """One transaction: the mapped rows of the selected tables and the cursor to resume from."""
    with warehouse.connect() as conn:
        for table in tables:
            raw = f"{warehouse.raw_schema}.{table.name}"
            # The same lock the database extract takes: one writer of a raw table at a time.
            conn.lock(f"pricing_ops.extract.{raw}")
            stage = f"{warehouse.raw_schema}._api_stage_{table.name}"
            conn.execute(f"drop table if exists {stage}")
            conn.execute(conn.engine.stage_table_sql(table, stage))
            batch = _arrow(table, mapped)
            results[table.name].rows_read += conn.append_arrow(stage, batch)
            if table is ONBOARDING_JOURNEY_EVENTS:
                _insert_new_events(conn, raw, stage, results[table.name])
            else:
                results[table.name].rows_updated += _upsert(conn, raw, stage, table)
            conn.execute(f"drop table if exists {stage}")
        save_cursor(conn, warehouse, [t.name for t in tables], base_url, resume_cursor, export_rows, datetime.now(UTC))


def _arrow(table: SourceTable, mapped: MappedRows) -> pa.Table:
    if table is ONBOARDING_JOURNEY_EVENTS:
        events = mapped.events
        return pa.table(
            {
                "id": pa.array([e.id for e in events], pa.int64()),
                "journey_id": pa.array([e.journey_id for e in events], pa.string()),
                "event_type": pa.array([EVENT_TYPE] * len(events), pa.string()),
                "payload": pa.array([e.payload for e in events], pa.string()),
                "recorded_at": pa.array([e.recorded_at for e in events], _UTC_US),
            }
        )
    if table is ONBOARDING_JOURNEYS:
        journeys = list(mapped.journeys.values())
        return pa.table(
            {
                "id": pa.array([j.id for j in journeys], pa.string()),
                "order_id": pa.array([j.order_id for j in journeys], pa.string()),
                "status": pa.array([j.status for j in journeys], pa.string()),
                "created_at": pa.array([j.created_at for j in journeys], _UTC_US),
                "updated_at": pa.array([j.updated_at for j in journeys], _UTC_US),
            }
        )
    orders = list(mapped.orders.values())
    return pa.table(
        {
            "id": pa.array([o.id for o in orders], pa.string()),
            "order_number": pa.array([o.order_number for o in orders], pa.string()),
            # Exact decimal text; the stage column is numeric(12,2).
            "total": pa.array([str(o.total) for o in orders], pa.string()),
            "currency": pa.array([o.currency for o in orders], pa.string()),
            "loyalty_projection_points": pa.array([o.loyalty_projection_points for o in orders], pa.int32()),
            "created_at": pa.array([o.created_at for o in orders], _UTC_US),
            "updated_at": pa.array([o.updated_at for o in orders], _UTC_US),
        }
    )


def _insert_new_events(conn: WarehouseConnection, raw: str, stage: str, result: ExtractResult) -> None:
    """Events not yet in the warehouse, stamped with this flush's `loaded_at` (also their `ingested_at`).

    Each flush commits separately, so each gets its own instant, later than every earlier one: an
    export reading between two flushes never passes rows that a later flush adds.
    """
    loaded_at = next_loaded_at(conn, raw)
    result.loaded_at = loaded_at
    cols = "id, journey_id, event_type, payload, recorded_at"
    conn.execute(
        f"insert into {raw} ({cols}, ingested_at, {LOADED_AT.name}) "
        f"select {cols}, :at, :at from (select {cols}, row_number() over (partition by id order by id) as rn "
        f"from {stage}) d where rn = 1 and not exists (select 1 from {raw} t where t.id = d.id)",
        {"at": loaded_at},
    )


# Columns the API knows, per table; the others (journey progress, order status, provider, channel)
# keep what the warehouse has, or the source's defaults on a new row.
_UPSERT = {
    ONBOARDING_JOURNEYS.name: (
        ("order_id", "status"),
        "id, order_id, status, 0, null, created_at, updated_at",
    ),
    ORDERS.name: (
        ("order_number", "total", "currency", "loyalty_projection_points"),
        (
            f"id, order_number, null, '{UNKNOWN_ORDER_STATUS}', total, currency, loyalty_projection_points, "
            "null, null, created_at, updated_at"
        ),
    ),
}


def _upsert(conn: WarehouseConnection, raw: str, stage: str, table: SourceTable) -> int:
    """Insert new rows, update known ones where the API says something new; returns rows updated.

    `created_at`/`updated_at` only widen (earliest and latest `recordedAt` seen), so a re-read page
    changes nothing.
    """
    served, select = _UPSERT[table.name]
    changed = " or ".join(
        [f"t.{c} is distinct from s.{c}" for c in served]
        + ["s.created_at < t.created_at", "s.updated_at > t.updated_at"]
    )
    row = conn.fetchone(f"select count(*) from {stage} s join {raw} t on t.id = s.id where {changed}")
    updated = int(row[0]) if row else 0
    sets = ", ".join(
        [f"{c} = excluded.{c}" for c in served]
        + [
            f"created_at = least({raw}.created_at, excluded.created_at)",
            f"updated_at = greatest({raw}.updated_at, excluded.updated_at)",
        ]
    )
    where = " or ".join(
        [f"{raw}.{c} is distinct from excluded.{c}" for c in served]
        + [f"excluded.created_at < {raw}.created_at", f"excluded.updated_at > {raw}.updated_at"]
    )
    conn.execute(
        f"insert into {raw} ({', '.join(table.column_names)}) select {select} from {stage} "
        f"on conflict (id) do update set {sets} where {where}"
    )
    return updated
