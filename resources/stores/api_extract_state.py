"""`<raw schema>.api_extract_state`: where the reporting-API extract resumes, one row per raw table
(the request cursor of the page holding the first row not yet written, the feed's base URL, the
export rows read so far). Written in the same transaction as the rows it covers."""

from __future__ import annotations

from datetime import datetime

from resources.stores.tables import TableSpec, ensure_tables
from resources.warehouse import Warehouse, WarehouseConnection

STATE_TABLE = "api_extract_state"

API_EXTRACT_STATE = TableSpec(
    STATE_TABLE,
    (
        ("table_name", "text", False),
        ("base_url", "text", False),
        ("resume_cursor", "text", True),
        ("rows_read", "bigint", False),
        ("updated_at", "ts", False),
    ),
    ("table_name",),
)


def state_table(warehouse: Warehouse) -> str:
    return f"{warehouse.raw_schema}.{STATE_TABLE}"


def ensure_state_table(warehouse: Warehouse, conn: WarehouseConnection) -> None:
    """The state table in the raw schema, created when missing."""
    ensure_tables(conn, warehouse.raw_schema, [API_EXTRACT_STATE])


def saved_cursor(
    conn: WarehouseConnection, warehouse: Warehouse, tables: list[str], base_url: str
) -> tuple[str | None, str]:
    """(cursor to resume from, why): None means the beginning. Idempotent merges make a restart safe."""
    rows = {
        r["table_name"]: r
        for r in conn.fetch_dicts(f"select table_name, base_url, resume_cursor from {state_table(warehouse)}")
    }
    if any(t not in rows for t in tables):
        return None, "first read of the feed for " + ", ".join(t for t in tables if t not in rows)
    if any(rows[t]["base_url"] != base_url for t in tables):
        return None, "ONBOARDING_EXPORT_API_BASE_URL changed since the last read: reading the feed from the start"
    cursors = {rows[t]["resume_cursor"] for t in tables}
    if len(cursors) > 1:
        return None, "the tables were last read up to different cursors: reading the feed from the start"
    cursor = cursors.pop()
    return cursor, "resuming at the last page read" if cursor is not None else "re-reading from the start"


def save_cursor(
    conn: WarehouseConnection,
    warehouse: Warehouse,
    tables: list[str],
    base_url: str,
    resume_cursor: str | None,
    export_rows: int,
    now: datetime,
) -> None:
    """Record where each table's read resumes, adding `export_rows` to the rows read so far."""
    table = state_table(warehouse)
    for name in tables:
        conn.execute(
            f"insert into {table} (table_name, base_url, resume_cursor, rows_read, updated_at) "
            "values (:t, :b, :c, :n, :u) on conflict (table_name) do update set base_url = excluded.base_url, "
            "resume_cursor = excluded.resume_cursor, "
            f"rows_read = {table}.rows_read + excluded.rows_read, updated_at = excluded.updated_at",
            {"t": name, "b": base_url, "c": resume_cursor, "n": export_rows, "u": now},
        )
