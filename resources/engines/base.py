"""The one interface every warehouse engine implements (DuckDB, PostgreSQL, Spark), so that the
extract assets, the stores and the sinks never ask which engine they are on.

An `Engine` is what a `WAREHOUSE_URL` names, parsed once: how to connect, how to bulk-load Arrow
streams into raw tables and merge the changed rows, where transactional state goes, how to quote
an identifier and spell a type, the SQL of the export's row format, and the dbt target. A
`WarehouseConnection` is one live connection with the same small set of helpers on every engine
(`:name` placeholders, fetches as tuples, dicts or Arrow, bulk appends).
"""

from __future__ import annotations

import contextlib
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, ClassVar

import pyarrow as pa

from models.source_tables import LOADED_AT, Column, SourceTable, raw_columns
from resources.interrupts import cancel_on_signal

PLACEHOLDER = re.compile(r"(?<![:\w]):([A-Za-z_][A-Za-z0-9_]*)")


@contextmanager
def one_transaction(raw: Any, interrupt: Callable[[], Any], begin: Callable[[], None] = lambda: None) -> Iterator[None]:
    """A transactional connection's life around the caller's statements: `begin` (session settings,
    BEGIN), then the statements, then commit; on any failure a rollback and the cause re-raised (the
    connection may already be gone); closed whatever happens. A stop signal calls `interrupt`, which
    ends the statement in flight (a blocked scan, a lock wait) and so rolls the transaction back:
    nothing half-written."""
    try:
        begin()
        with cancel_on_signal(interrupt):
            yield
        raw.commit()
    except BaseException:
        with contextlib.suppress(Exception):
            raw.rollback()
        raise
    finally:
        raw.close()


@dataclass(frozen=True)
class EngineTuning:
    """Per-process knobs of the embedded engine (DuckDB) that the `Warehouse` resource carries."""

    duckdb_memory_limit: str = "300MB"
    duckdb_lock_wait_seconds: float = 60.0


@dataclass
class RawLoad:
    """What loading one source table into its raw table did (the caller's `ExtractResult` takes it)."""

    rows_read: int = 0
    rows_updated: int = 0
    loaded_at: datetime | None = None


class WarehouseConnection(ABC):
    """A live connection with engine-neutral helpers. Obtain one from `Warehouse.connect()`."""

    engine: Engine

    def __init__(self, engine: Engine, raw: Any):
        self.engine = engine
        self.raw = raw

    @property
    def kind(self) -> str:
        """The engine's name, for messages and metadata only: code never branches on it."""
        return self.engine.name

    @abstractmethod
    def fetchall(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]: ...

    @abstractmethod
    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None: ...

    @abstractmethod
    def fetch_dicts(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]: ...

    @abstractmethod
    def fetch_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """A query's rows as an Arrow table."""

    @abstractmethod
    def append_arrow(self, qualified_table: str, reader: pa.RecordBatchReader | pa.Table) -> int:
        """Append a stream of Arrow batches to an existing table whose columns match by name;
        returns the rows appended."""

    @abstractmethod
    def table_exists(self, schema: str, table: str) -> bool: ...

    def fetchone(self, sql: str, params: Mapping[str, Any] | None = None) -> tuple | None:
        rows = self.fetchall(sql, params)
        return rows[0] if rows else None

    def commit(self) -> None:
        self.raw.commit()

    def rollback(self) -> None:
        self.raw.rollback()

    def lock(self, name: str) -> None:
        """Hold `name` exclusively until this transaction ends, against other processes and hosts
        (engines with one writer per file, or no transactions, need nothing)."""

    def bound_waits(self, lock_wait_s: float, statement_s: float) -> None:
        """Bound this session's lock waits and statements where the engine can (a probe)."""

    def try_session_lock(self, name: str) -> bool:
        """Take `name` for the rest of the session if free (True), else False at once."""
        return True

    @abstractmethod
    def register_arrow(self, name: str, table: pa.Table) -> str:
        """Make an Arrow table selectable as `name` in this transaction; returns the name to select
        from (`unregister_arrow` when done)."""

    @abstractmethod
    def unregister_arrow(self, name: str) -> None: ...


class Engine(ABC):
    """A warehouse engine: see the module docstring. `name` is for messages and asset metadata."""

    name: ClassVar[str]
    # Locks that other processes and hosts see, held by a session (`WarehouseConnection.try_session_lock`).
    session_locks: ClassVar[bool] = False
    # Row-level `insert ... on conflict` (the reporting API's partial upserts need it).
    upserts: ClassVar[bool] = True
    # Postgres grants a role SELECT on the marts (`warehouse grant-bi-reader`); others have no SQL grants.
    sql_grants: ClassVar[bool] = False
    # Connections may read side by side (a DuckDB file is read by one connection at a time).
    concurrent_connections: ClassVar[bool] = True
    # The marts live in one local file that BI must not hold open (the DuckDB BI copy, contract 11).
    embedded_file: Path | None = None

    def __init__(self, url: str, tuning: EngineTuning | None = None):
        self.url = url
        self.tuning = tuning or EngineTuning()

    # Where ------------------------------------------------------------------------------------------
    @abstractmethod
    def describe(self) -> str:
        """A printable name of the warehouse without any secret."""

    @abstractmethod
    def connect(
        self, read_only: bool = False, timeout_s: float | None = None
    ) -> AbstractContextManager[WarehouseConnection]:
        """A connection in UTC; commits on success, rolls back on error, always closes. `timeout_s`
        bounds the wait for it, each statement and each lock wait where the engine can (probes that
        must answer in time). A stop signal interrupts the statement in flight."""

    def state_engine(self) -> Engine:
        """Where transactional state lives (follow-ups, ledgers, build and extract bookkeeping):
        the warehouse itself, unless it has no transactions (Spark: STATE_DATABASE_URL)."""
        return self

    @property
    def state_is_separate(self) -> bool:
        return self.state_engine() is not self

    @abstractmethod
    def dbt_env(self, schema: str) -> dict[str, str]:
        """Environment for a dbt invocation on this warehouse (contains secrets: never log it)."""

    # Dialect ----------------------------------------------------------------------------------------
    def quote(self, identifier: str) -> str:
        return '"' + identifier.replace('"', '""') + '"'

    @classmethod
    @abstractmethod
    def column_type(cls, column: Column) -> str:
        """A source-table column's type in this engine."""

    @abstractmethod
    def state_type(self, kind: str) -> str:
        """A state-table column kind (resources/stores/tables.py) in this engine."""

    @classmethod
    def create_table_sql(cls, table: SourceTable, qualified_name: str, raw: bool = False) -> str:
        """`create table if not exists` for a source table (or its raw copy), keyed by its key."""
        lines = [
            f"  {c.name} {cls.column_type(c)}{'' if c.nullable else ' not null'}"
            for c in (raw_columns(table) if raw else table.columns)
        ]
        lines.append(f"  primary key ({table.key})")
        return f"create table if not exists {qualified_name} (\n" + ",\n".join(lines) + "\n)"

    def create_state_table_sql(self, qualified: str, columns: list[tuple[str, str]]) -> str:
        """`create table if not exists` with (name, type) columns and no key."""
        body = ", ".join(f"{name} {typ}" for name, typ in columns)
        return f"create table if not exists {qualified} ({body})"

    def raw_table_index_sql(self, table: SourceTable, qualified: str) -> list[str]:
        """Indexes a raw table needs beside its key (none where the engine prunes without)."""
        return []

    @classmethod
    def stage_table_sql(cls, table: SourceTable, name: str) -> str:
        """A scratch table with a source table's columns and no key (a re-read may repeat an id)."""
        return f"create table {name} ({', '.join(f'{c.name} {cls.column_type(c)}' for c in table.columns)})"

    def create_schema(self, conn: WarehouseConnection, schema: str) -> None:
        conn.execute(f"create schema if not exists {schema}")

    # Raw tables -------------------------------------------------------------------------------------
    @abstractmethod
    def load_raw(
        self,
        conn: WarehouseConnection,
        table: SourceTable,
        raw: str,
        reader: pa.RecordBatchReader,
        read_since: datetime | None,
        next_loaded_at,
    ) -> RawLoad:
        """Bulk-load a stream of source rows and merge them into `raw` by key: new ids of an
        append-only table (stamped with `next_loaded_at(conn, raw)`), the latest version of each id
        of the others. `read_since`: where the read started (the overlap), or None (everything)."""

    # Export row format (models/export_rows.py renders the SQL through these) -----------------------
    @abstractmethod
    def instant_iso_sql(self, column: str) -> str:
        """An instant as ISO 8601 UTC text with six fractional digits and `Z`."""

    @abstractmethod
    def utc_timestamp_sql(self, column: str) -> str:
        """An instant as a value that arrives in Arrow as its UTC wall time."""

    def text_type(self) -> str:
        return "text"

    def bytewise_sql(self, column: str) -> str:
        """A text column compared byte by byte (the export's order)."""
        return column

    @abstractmethod
    def json_line_sql(self, fields: list[tuple[str, str]]) -> str:
        """One compact JSON object of (key, SQL expression) pairs, keys in order, as text."""

    @abstractmethod
    def quantiles_sql(self, column: str, fractions: list[float]) -> str:
        """An aggregate giving the discrete quantiles of `column` as one list."""

    @abstractmethod
    def row_checksum_sql(self, columns: list[str]) -> str:
        """An integer hash of a row's columns, summed to tell whether a table changed."""

    def add_missing_columns(self, conn: WarehouseConnection, qualified: str, columns: list[tuple[str, str]]) -> None:
        """Columns (name, type) a table made by an earlier version lacks, added (null)."""
        for name, typ in columns:
            conn.execute(f"alter table {qualified} add column if not exists {name} {typ}")

    def grant_bi_reader(self, conn: WarehouseConnection, qualified: str) -> None:
        """SELECT on a table for the BI role, where the engine has SQL grants and the role exists."""

    def rewrite_rows(self, conn: WarehouseConnection, qualified: str, columns: str, staged: str, slugs: str) -> None:
        """Make `qualified` hold `staged`'s rows for the slugs listed in `slugs` (a relation with a
        `slug` column); `staged` holds every row the table must hold."""
        conn.execute(f"delete from {qualified} where slug in (select slug from {slugs})")
        conn.execute(
            f"insert into {qualified} ({columns}) select {columns} from {staged} where slug in (select slug from {slugs})"
        )

    def row_after_sql(self, columns: list[str], values: list[str]) -> str:
        """True for a row whose (columns...) sorts after (values...)."""
        return f"({', '.join(columns)}) > ({', '.join(values)})"


def translate_placeholders(sql: str, params: Mapping[str, Any] | None, style: str) -> str:
    """`:name` placeholders in a driver's style (`$name`, `%(name)s`); unchanged without params."""
    if not params:
        return sql
    if style == "pyformat":
        return PLACEHOLDER.sub(r"%(\1)s", sql.replace("%", "%%"))
    return PLACEHOLDER.sub(r"$\1", sql)


def insert_new_sql(table: SourceTable, raw: str, staged: str, overlap: str = "") -> str:
    """Rows of `staged` whose key `raw` does not hold yet, stamped `:loaded_at` (append-only tables:
    one read of a keyed source cannot repeat an id, so no dedupe)."""
    cols = ", ".join(table.column_names)
    return (
        f"insert into {raw} ({cols}, {LOADED_AT.name}) select {cols}, :loaded_at from {staged} s "
        f"where not exists (select 1 from {raw} t where t.{table.key} = s.{table.key}{overlap})"
    )


def latest_version_sql(table: SourceTable, staged: str) -> str:
    """One row per key of `staged`: its latest version by the watermark."""
    cols = ", ".join(table.column_names)
    return (
        f"select {cols} from (select {cols}, row_number() over "
        f"(partition by {table.key} order by {table.watermark or table.key} desc) as rn from {staged} s) s "
        "where rn = 1"
    )
