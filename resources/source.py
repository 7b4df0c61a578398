"""The operational source: the demo DuckDB file, the operational Postgres, or the reporting API.

Reads are streamed as Arrow record batches (never row by row, never a whole table in memory):
DuckDB hands out a `RecordBatchReader` directly; Postgres goes through the ADBC driver (binary COPY
under the hood). The reporting API has no tables; `resources/reporting_api.py` reads it.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path

import pyarrow as pa
from dagster import ConfigurableResource
from pydantic import Field

from models.source_tables import SourceTable
from resources.warehouse import WarehouseConnection, WarehouseLocation, libpq_uri

BATCH_ROWS = 100_000


class SourceDatabase(ConfigurableResource):
    """The operational database the extract and the guardrail sensor read: PostgreSQL at
    ONBOARDING_EXPORT_DATABASE_URL, the reporting API at ONBOARDING_EXPORT_API_BASE_URL, or the demo
    source (a DuckDB file in DATA_DIR) when neither is set."""

    database_url: str | None = Field(
        default=None, description="ONBOARDING_EXPORT_DATABASE_URL (secret); unset: demo source"
    )
    demo_path: str = Field(default=".data/demo_source.duckdb", description="embedded demo source file")
    api_base_url: str | None = Field(default=None, description="ONBOARDING_EXPORT_API_BASE_URL")
    api_key: str | None = Field(default=None, description="CHECKOUT_API_KEY (secret)")
    schema_name: str = Field(default="public", description="SOURCE_SCHEMA")

    @property
    def kind(self) -> str:
        if self.database_url:
            return "postgres"
        if self.api_base_url:
            return "api"
        return "demo"

    @property
    def has_tables(self) -> bool:
        return self.kind != "api"

    def describe(self) -> str:
        """Where the source is, without secrets."""
        if self.kind == "postgres":
            return WarehouseLocation.parse(self.database_url or "").describe() + f" schema {self.schema_name}"
        if self.kind == "api":
            return f"reporting API {self.api_base_url}"
        return f"demo source {Path(self.demo_path).resolve()}"

    def table(self, name: str) -> str:
        """Qualified name of a source table."""
        return name if self.kind == "demo" else f'"{self.schema_name}"."{name}"'

    @contextmanager
    def connect(self) -> Iterator[WarehouseConnection]:
        """A read connection with the warehouse's engine-neutral helpers (`:name` placeholders)."""
        if self.kind == "api":
            raise RuntimeError(
                "the source is the reporting API (ONBOARDING_EXPORT_API_BASE_URL): it has no tables; "
                "set ONBOARDING_EXPORT_DATABASE_URL for database reads"
            )
        if self.kind == "demo":
            import duckdb

            path = Path(self.demo_path)
            if not path.exists():
                raise FileNotFoundError(
                    f"demo source {path.resolve()} does not exist; create it with `pricing-ops demo-source` "
                    "or set ONBOARDING_EXPORT_DATABASE_URL"
                )
            raw = duckdb.connect(str(path), read_only=True)
            raw.execute("set TimeZone = 'UTC'")
            try:
                yield WarehouseConnection("duckdb", raw)
            finally:
                raw.close()
            return
        import psycopg

        raw = psycopg.connect(libpq_uri(self.database_url or ""), options="-c TimeZone=UTC", autocommit=True)
        try:
            yield WarehouseConnection("postgres", raw)
        finally:
            raw.close()

    @contextmanager
    def read_table(
        self, table: SourceTable, since: datetime | None, keys: Sequence[str] | None = None
    ) -> Iterator[pa.RecordBatchReader]:
        """Stream a source table's rows (those with `watermark >= since` when given, or those whose
        key is one of `keys`) as Arrow.

        Columns come out as the warehouse loads them: payload as JSON text, money as decimal text
        on Postgres (exact; the warehouse casts it back to numeric(12,2)).
        """
        where = ""
        if keys is not None:
            # Keys come from the warehouse (data): each is a quoted literal, never SQL.
            literals = ", ".join("'" + str(k).replace("'", "''") + "'" for k in keys) or "null"
            where = f" where {table.key} in ({literals})"
        elif since is not None and table.watermark:
            where = f" where {table.watermark} >= '{since.isoformat()}'::timestamptz"
        if self.kind == "demo":
            select = ", ".join(_demo_select(c.name, c.duckdb_type) for c in table.columns)
            with self.connect() as conn:
                yield conn.raw.sql(f"select {select} from {self.table(table.name)}{where}").to_arrow_reader(
                    BATCH_ROWS
                )
            return
        if self.kind == "api":
            raise RuntimeError("the reporting API source is read by resources/reporting_api.py, not by table")
        # json and numeric come as text: exact, and cast back on load (Column.travels_as_text).
        select = ", ".join(f"{c.name}::text as {c.name}" if c.travels_as_text else c.name for c in table.columns)
        yield from _adbc_stream(self.database_url or "", f"select {select} from {self.table(table.name)}{where}")


def _demo_select(name: str, duck_type: str) -> str:
    return f"{name}::varchar as {name}" if duck_type == "json" else name


def _adbc_stream(dsn: str, sql: str) -> Iterator[pa.RecordBatchReader]:
    import adbc_driver_postgresql.dbapi as pg_dbapi

    with pg_dbapi.connect(libpq_uri(dsn)) as conn, conn.cursor() as cur:
        cur.execute("set TimeZone = 'UTC'")
        cur.execute(sql)
        yield cur.fetch_record_batch()
