"""The warehouse: a DuckDB file (embedded default) or PostgreSQL (production), one interface.

Everything above this module speaks SQL that both engines accept, with `:name` placeholders; this
module translates placeholders, opens connections, bulk-loads Arrow streams and exposes the
locations (`raw_schema`, `schema`) and the environment dbt needs to build on the same database.

Sessions are pinned to UTC on both engines, but no result relies on it: the SQL above converts
instants explicitly (`at time zone 'UTC'`).
"""

from __future__ import annotations

import contextlib
import math
import re
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from resources.interrupts import CANCEL_TIMEOUT_S, cancel_on_signal
from resources.postgres_url import is_postgres_url, resolve_postgres_url

_PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)")


def libpq_uri(dsn: str) -> str:
    """The URL as every libpq client (psycopg, ADBC) takes it, resolved once with nothing left to a
    client's defaults (resources/postgres_url.py: socket directory, PG* variables, driver suffix)."""
    return resolve_postgres_url(dsn).libpq_uri()


@dataclass(frozen=True)
class WarehouseLocation:
    """What a warehouse URL names, parsed once. `dsn` is secret: never log it."""

    kind: str  # "duckdb" | "postgres"
    path: Path | None = None
    dsn: str | None = None

    @classmethod
    def parse(cls, url: str) -> WarehouseLocation:
        """`duckdb:///relative.duckdb`, `duckdb:////absolute.duckdb` or `postgresql://...`."""
        scheme = url.split(":", 1)[0].lower()
        if scheme == "duckdb":
            rest = url[len("duckdb:///") :] if url.startswith("duckdb:///") else ""
            if not rest:
                raise ValueError(
                    "WAREHOUSE_URL: a DuckDB URL names a file, e.g. duckdb:///.data/warehouse.duckdb "
                    "(relative) or duckdb:////var/lib/warehouse.duckdb (absolute)"
                )
            return cls(kind="duckdb", path=Path(rest).expanduser().resolve())
        if is_postgres_url(url):
            try:
                return cls(kind="postgres", dsn=libpq_uri(url))
            except ValueError as exc:
                raise ValueError(f"WAREHOUSE_URL: {exc}") from None
        raise ValueError(
            f"WAREHOUSE_URL: unsupported scheme {scheme!r}; use duckdb:///path.duckdb or postgresql://..."
        )

    def describe(self) -> str:
        """A printable name of the warehouse without any secret."""
        if self.kind == "duckdb":
            return f"duckdb file {self.path}"
        return resolve_postgres_url(self.dsn or "").describe()


def pg_connection_parts(dsn: str) -> dict[str, str]:
    """host/port/user/password/dbname/sslmode of a PostgreSQL URL, for dbt's profile."""
    return resolve_postgres_url(dsn).dbt_profile()


class WarehouseConnection:
    """A live connection with engine-neutral helpers. Obtain one from `Warehouse.connect()`."""

    def __init__(self, kind: str, raw: Any):
        self.kind = kind
        self.raw = raw
        # DuckDB settings as this code set them: read back, some come rounded ('286.1 MiB').
        self._duckdb_set: dict[str, str] = {}

    def set_duckdb(self, name: str, value: str) -> None:
        """Set a DuckDB setting (database-wide), remembering the value as given."""
        self.execute(f"set {name} = '{value}'")
        self._duckdb_set[name] = value

    # SQL -----------------------------------------------------------------------------------------
    def _sql(self, sql: str, params: Mapping[str, Any] | None) -> str:
        """Translate `:name` placeholders; a statement without parameters is passed as written."""
        if not params:
            return sql
        repl = r"$\1" if self.kind == "duckdb" else r"%(\1)s"
        if self.kind == "postgres":
            sql = sql.replace("%", "%%")
        return _PLACEHOLDER.sub(repl, sql)

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        if self.kind == "duckdb":
            # DuckDB 2 keeps a pending result open until it is fetched; drain it.
            self.raw.execute(self._sql(sql, params), dict(params) if params else None).fetchall()
        else:
            with self.raw.cursor() as cur:
                cur.execute(self._sql(sql, params), params)

    def fetchall(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        if self.kind == "duckdb":
            return self.raw.execute(self._sql(sql, params), dict(params) if params else None).fetchall()
        with self.raw.cursor() as cur:
            cur.execute(self._sql(sql, params), params)
            return cur.fetchall() if cur.description else []

    def fetchone(self, sql: str, params: Mapping[str, Any] | None = None) -> tuple | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def fetch_dicts(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        if self.kind == "duckdb":
            cur = self.raw.execute(self._sql(sql, params), dict(params) if params else None)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]
        with self.raw.cursor() as cur:
            cur.execute(self._sql(sql, params), params)
            names = [d.name for d in cur.description]
            return [dict(zip(names, row)) for row in cur.fetchall()]

    def fetch_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """A query's rows as an Arrow table (DuckDB builds it natively, no Python object per row)."""
        if self.kind == "duckdb":
            return self.raw.sql(self._sql(sql, params), params=dict(params) if params else None).to_arrow_table()
        with self.raw.cursor() as cur:
            cur.execute(self._sql(sql, params), params)
            names = [d.name for d in cur.description]
            rows = cur.fetchall()
        return pa.table({name: [row[i] for row in rows] for i, name in enumerate(names)})

    @contextmanager
    def duckdb_settings(self, **settings: str) -> Iterator[None]:
        """DuckDB settings for the statements of a block, the previous values put back after.

        They are database-wide: other connections to the same file in this process see them
        meanwhile. After an error the transaction is aborted and the values stay until the
        connection closes (with the last connection to the file, the database and its settings go).
        """
        if self.kind != "duckdb":
            raise ValueError("duckdb_settings is for a DuckDB warehouse")
        before = {
            name: self._duckdb_set.get(name) or str(self.fetchone(f"select current_setting('{name}')")[0])
            for name in settings
        }
        for name, value in settings.items():
            self.set_duckdb(name, value)
        yield
        for name, value in before.items():
            self.set_duckdb(name, value)

    def table_exists(self, schema: str, table: str) -> bool:
        row = self.fetchone(
            "select count(*) from information_schema.tables where table_schema = :s and table_name = :t",
            {"s": schema, "t": table},
        )
        return bool(row and row[0])

    def commit(self) -> None:
        self.raw.commit()

    def rollback(self) -> None:
        self.raw.rollback()

    # Bulk load -----------------------------------------------------------------------------------
    def append_arrow(self, qualified_table: str, reader: pa.RecordBatchReader | pa.Table) -> int:
        """Append a stream of Arrow batches to an existing table whose columns match by name.

        DuckDB scans the stream directly; on Postgres it goes through binary COPY, batch by batch,
        so memory holds one batch at a time.
        """
        if isinstance(reader, pa.Table):
            reader = reader.to_reader()
        columns = ", ".join(f'"{name}"' for name in reader.schema.names)
        if self.kind == "duckdb":
            self.raw.register("_arrow_in", reader)
            try:
                inserted = self.raw.execute(
                    f"insert into {qualified_table} ({columns}) select {columns} from _arrow_in"
                ).fetchone()
                return int(inserted[0]) if inserted else 0
            finally:
                self.raw.unregister("_arrow_in")
        return _pg_copy_arrow(self.raw, qualified_table, reader)


def _pg_copy_arrow(conn: Any, qualified_table: str, reader: pa.RecordBatchReader) -> int:
    """COPY an Arrow stream into Postgres as CSV, one batch at a time (bounded memory).

    pyarrow's CSV writer quotes empty strings and leaves nulls as empty unquoted fields, which is
    exactly how Postgres's CSV format tells the two apart.
    """
    import pyarrow.csv as pacsv

    names = reader.schema.names
    columns = ", ".join(f'"{name}"' for name in names)
    total = 0
    with conn.cursor() as cur, cur.copy(
        f"copy {qualified_table} ({columns}) from stdin with (format csv)"
    ) as copy:
        for batch in reader:
            if batch.num_rows == 0:
                continue
            sink = pa.BufferOutputStream()
            pacsv.write_csv(
                batch,
                sink,
                write_options=pacsv.WriteOptions(include_header=False, quoting_style="needed"),
            )
            copy.write(sink.getvalue().to_pybytes())
            total += batch.num_rows
    return total



class Warehouse(ConfigurableResource):
    """The warehouse (WAREHOUSE_URL: a DuckDB file by default, or PostgreSQL) holding the raw
    tables, the dbt models, the experiment statistics and the automation state, in WAREHOUSE_SCHEMA
    and its `_raw` and `_staging` schemas."""

    url: str = Field(description="duckdb:///path.duckdb or postgresql://... (secret: set via EnvVar)")
    schema_name: str = Field(default="analytics", description="Marts schema (WAREHOUSE_SCHEMA)")
    duckdb_memory_limit: str = Field(default="300MB", description="DuckDB memory_limit per connection")
    duckdb_lock_wait_seconds: float = Field(default=60.0, description="how long to wait for a busy DuckDB file")

    _location: WarehouseLocation | None = PrivateAttr(default=None)

    @property
    def location(self) -> WarehouseLocation:
        if self._location is None:
            self._location = WarehouseLocation.parse(self.url)
        return self._location

    @property
    def kind(self) -> str:
        return self.location.kind

    @property
    def schema(self) -> str:
        return self.schema_name

    @property
    def raw_schema(self) -> str:
        return f"{self.schema_name}_raw"

    @property
    def staging_schema(self) -> str:
        return f"{self.schema_name}_staging"

    def describe(self) -> str:
        return self.location.describe()

    @contextmanager
    def connect(self, read_only: bool = False, timeout_s: float | None = None) -> Iterator[WarehouseConnection]:
        """A connection in UTC; commits on success, rolls back on error, always closes.

        DuckDB allows one writing process per file: a busy file is retried for up to a minute
        before failing with a message that names the file. `timeout_s` bounds everything instead
        (probes that must answer in time): the wait for a busy DuckDB file, and on PostgreSQL the
        connection, each statement and each lock wait (a locked table fails in time, not never).
        """
        loc = self.location
        if loc.kind == "duckdb":

            assert loc.path is not None
            loc.path.parent.mkdir(parents=True, exist_ok=True)
            wait = self.duckdb_lock_wait_seconds if timeout_s is None else timeout_s
            raw = _duckdb_connect_retrying(loc.path, read_only, wait)
            conn = WarehouseConnection("duckdb", raw)
            conn.set_duckdb("TimeZone", "UTC")
            # DuckDB's default is 80% of RAM; bounded, it spills instead.
            conn.set_duckdb("memory_limit", self.duckdb_memory_limit)
            # Its progress bar draws on stdout for queries over 2 s: stdout is for results.
            conn.set_duckdb("enable_progress_bar", "false")
            raw.execute("begin transaction")
        else:
            import psycopg

            if timeout_s is None:
                raw = psycopg.connect(loc.dsn, options="-c TimeZone=UTC", autocommit=False)
            else:
                ms = max(1, int(timeout_s * 1000))
                # A lock wait ends first, as such (not as a statement that ran too long).
                raw = psycopg.connect(
                    loc.dsn, autocommit=False, connect_timeout=max(1, math.ceil(timeout_s)),
                    options=f"-c TimeZone=UTC -c statement_timeout={ms} -c lock_timeout={max(1, ms * 9 // 10)}",
                )
            conn = WarehouseConnection("postgres", raw)
        try:
            # A stop signal interrupts the statement in flight (a blocked DuckDB scan, a Postgres
            # wait), which rolls the transaction back: nothing half-written.
            cancel = raw.interrupt if loc.kind == "duckdb" else partial(raw.cancel_safe, timeout=CANCEL_TIMEOUT_S)
            with cancel_on_signal(cancel):
                yield conn
            raw.commit()
        except BaseException:
            with contextlib.suppress(Exception):  # the connection may be gone: the first error is the one to raise
                raw.rollback()
            raise
        finally:
            raw.close()

    def load_scratch_table(self, qualified_table: str, ddl: str, reader: pa.RecordBatchReader) -> int:
        """(Re)create a scratch table from `ddl` and bulk-load an Arrow stream into it, committed on
        a connection of its own. PostgreSQL only: ADBC's binary COPY, ~6x the CSV COPY of
        `append_arrow` (1M events: 1.0 s against 6.1 s) with one batch in memory at a time. Binary
        COPY takes each column in its exact width: the stream must match the table's types.
        Returns the rows loaded."""
        if self.kind != "postgres":
            raise ValueError("load_scratch_table is for a PostgreSQL warehouse; on DuckDB use append_arrow")
        import adbc_driver_postgresql.dbapi as pg_dbapi

        schema, table = qualified_table.split(".", 1)
        with pg_dbapi.connect(self.location.dsn or "") as adbc, adbc.cursor() as cur, cancel_on_signal(cur.adbc_cancel):
            cur.execute(f"drop table if exists {qualified_table}")
            cur.execute(ddl)
            rows = cur.adbc_ingest(table, reader, mode="append", db_schema_name=schema)
            adbc.commit()
        return int(rows)

    def ensure_schemas(self, conn: WarehouseConnection) -> None:
        for schema in (self.schema, self.raw_schema):
            conn.execute(f"create schema if not exists {schema}")

    def dbt_env(self) -> dict[str, str]:
        """Environment for a dbt invocation on this warehouse (contains secrets: never log it)."""
        env = {"PRICING_OPS_WAREHOUSE_SCHEMA": self.schema_name}
        loc = self.location
        if loc.kind == "duckdb":
            env["PRICING_OPS_DBT_TARGET"] = "duckdb"
            env["PRICING_OPS_DUCKDB_PATH"] = str(loc.path)
        else:
            env["PRICING_OPS_DBT_TARGET"] = "postgres"
            for key, value in pg_connection_parts(loc.dsn or "").items():
                env[f"PRICING_OPS_PG_{key.upper()}"] = value
        return env


def _duckdb_connect_retrying(path: Path, read_only: bool, timeout_s: float = 60.0):
    import duckdb

    deadline = time.monotonic() + timeout_s
    delay = 0.05
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only)
        except duckdb.IOException as exc:
            if "lock" not in str(exc).lower() or time.monotonic() > deadline:
                raise RuntimeError(
                    f"warehouse file {path} is locked by another process for over {timeout_s:.0f}s; "
                    "wait for the running job to finish (one DuckDB writer at a time) or use a "
                    "PostgreSQL WAREHOUSE_URL"
                ) from exc
            time.sleep(delay)
            delay = min(delay * 2, 1.0)
