"""What both extract paths (the source database, `assets/extract.py`, and the reporting API,
`assets/extract_api.py`) share about the warehouse raw tables: their asset keys, the raw and stage
DDL, the monotone `loaded_at`, and the result record each extracted table reports.

It sits below both paths so that neither imports the other; the extract asset picks one.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import dagster as dg

from models.instants import as_utc, format_instant
from models.source_tables import LOADED_AT, SOURCE_TABLES
from resources.warehouse import Warehouse, WarehouseConnection


def raw_asset_key(table_name: str) -> dg.AssetKey:
    """The asset key of a raw table: `raw/<table>`."""
    return dg.AssetKey(["raw", table_name])


@dataclass
class ExtractResult:
    table: str
    rows_read: int = 0
    rows_inserted: int = 0
    rows_updated: int = 0
    rows_total: int = 0
    watermark_before: datetime | None = None
    watermark_after: datetime | None = None
    read_since: datetime | None = None
    loaded_at: datetime | None = None
    seconds: float = 0.0
    full_resync: bool = False
    # Rows fetched by key because a loaded row referenced them and the warehouse lacked them.
    fetched_by_key: int = 0

    def metadata(self) -> dict[str, dg.MetadataValue]:
        md: dict[str, dg.MetadataValue] = {
            "rows_read": dg.MetadataValue.int(self.rows_read),
            "rows_inserted": dg.MetadataValue.int(self.rows_inserted),
            "rows_updated": dg.MetadataValue.int(self.rows_updated),
            "dagster/row_count": dg.MetadataValue.int(self.rows_total),
            "read_since": dg.MetadataValue.text(format_instant(self.read_since) if self.read_since else "beginning (full read)"),
            "watermark_after": dg.MetadataValue.text(format_instant(self.watermark_after) if self.watermark_after else "-"),
            "seconds": dg.MetadataValue.float(round(self.seconds, 3)),
        }
        if self.loaded_at is not None:
            md["loaded_at"] = dg.MetadataValue.text(format_instant(self.loaded_at))
        if self.full_resync:
            md["full_resync"] = dg.MetadataValue.bool(True)
        if self.fetched_by_key:
            md["fetched_by_key"] = dg.MetadataValue.int(self.fetched_by_key)
        return md


def ensure_raw_tables(warehouse: Warehouse, conn: WarehouseConnection) -> None:
    warehouse.ensure_schemas(conn)
    for table in SOURCE_TABLES:
        qualified = f"{warehouse.raw_schema}.{table.name}"
        conn.execute(conn.engine.create_table_sql(table, qualified, raw=True))
        for statement in conn.engine.raw_table_index_sql(table, qualified):
            conn.execute(statement)


def next_loaded_at(conn: WarehouseConnection, raw: str) -> datetime:
    """Now, or just after the newest `loaded_at` if the clock is behind it: monotone across runs."""
    now = datetime.now(UTC)
    row = conn.fetchone(f"select max({LOADED_AT.name}) from {raw}")
    latest = as_utc(row[0]) if row and row[0] is not None else None
    if latest is not None and latest >= now:
        return latest + timedelta(microseconds=1)
    return now
