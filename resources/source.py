"""The operational source: the demo DuckDB file, the operational Postgres, or the reporting API.

Reads are streamed as Arrow record batches (never row by row, never a whole table in memory):
DuckDB hands out a `RecordBatchReader` directly; Postgres goes through the ADBC driver (binary COPY
under the hood). The reporting API has no tables; `resources/reporting_api.py` reads it.

Nothing waits for ever on the source: every statement has a statement and lock timeout
(SOURCE_STATEMENT_TIMEOUT), a stop signal cancels the statement in flight
(`resources/interrupts.py`), and a read that fails for a reason an operator can act on (a timeout,
most likely a locked table; a connection the server terminated or lost) raises a `SourceReadError`
whose one line names the table, the database (without password) and that cause.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import pyarrow as pa
from dagster import ConfigurableResource
from pydantic import Field

from models.source_tables import SourceTable
from resources.engines import WarehouseConnection, engine_class
from resources.engines.duckdb import DuckDBConnection
from resources.engines.postgres import PostgresConnection, libpq_uri
from resources.interrupts import CANCEL_TIMEOUT_S, cancel_on_signal, received_signal
from resources.postgres_url import resolve_postgres_url

BATCH_ROWS = 100_000
DEFAULT_STATEMENT_TIMEOUT_S = 300.0
# How long the look at pg_locks after a timeout may take (it must not hang in turn).
LOCK_PROBE_TIMEOUT_S = 5
# What the server or libpq says when a read's connection ends under it (a pg_terminate_backend, a
# restart, a network cut), and what it means, in the order they are looked for.
_CONNECTION_ENDED = (
    ("terminating connection due to administrator command",
     ("the source server terminated the connection (terminating connection due to administrator command: "
      "pg_terminate_backend from another session, or a server shutdown)")),
    ("terminating connection due to idle", "the source server ended an idle connection"),
    ("server closed the connection unexpectedly",
     "the connection to the source was lost (server closed the connection unexpectedly: a restart or a network cut)"),
    ("could not receive data from server",
     "the connection to the source was lost (could not receive data from server)"),
    ("connection to server was lost", "the connection to the source was lost"),
    ("no connection to the server", "the connection to the source was lost (no connection to the server)"),
)


class SourceReadError(RuntimeError):
    """A source read failed for a reason the operator can act on; the message is one line naming the
    table, the database (without password) and the cause."""


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
    statement_timeout_seconds: float = Field(
        default=DEFAULT_STATEMENT_TIMEOUT_S, gt=0,
        description="SOURCE_STATEMENT_TIMEOUT: longest a source statement may run or wait for a lock",
    )

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
            return resolve_postgres_url(self.database_url or "").describe() + f" schema {self.schema_name}"
        if self.kind == "api":
            return f"reporting API {self.api_base_url}"
        return f"demo source {Path(self.demo_path).resolve()}"

    def table(self, name: str) -> str:
        """Qualified name of a source table."""
        return name if self.kind == "demo" else f'"{self.schema_name}"."{name}"'

    def _timeout_settings(self) -> dict[str, str]:
        """Session settings of every source connection: UTC, and no statement (or wait for a lock)
        longer than SOURCE_STATEMENT_TIMEOUT."""
        ms = str(max(1, round(self.statement_timeout_seconds * 1000)))
        return {"TimeZone": "UTC", "statement_timeout": ms, "lock_timeout": ms}

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
                yield DuckDBConnection(engine_class("duckdb"), raw)
            finally:
                raw.close()
            return
        import psycopg

        options = " ".join(f"-c {name}={value}" for name, value in self._timeout_settings().items())
        raw = psycopg.connect(libpq_uri(self.database_url or ""), options=options, autocommit=True)
        try:
            with cancel_on_signal(partial(raw.cancel_safe, timeout=CANCEL_TIMEOUT_S)):
                yield PostgresConnection(engine_class("postgres"), raw)
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
        sql = f"select {select} from {self.table(table.name)}{where}"
        try:
            # The reader is consumed in the caller's block: an error of the stream arrives here too.
            with _adbc_stream(self.database_url or "", sql, self._timeout_settings()) as reader:
                yield reader
        except Exception as exc:
            error = self.read_error(exc, table.name)
            if error is None:
                raise
            raise error from exc

    def read_error(self, exc: BaseException, table_name: str) -> SourceReadError | None:
        """The one-line `SourceReadError` for a failed read of `table_name` when its cause is one an
        operator acts on (a timeout, a connection ended by the server or lost), else None. The cause
        is looked for along the exception's chain: a stream's error reaches the caller wrapped by
        whatever consumed it (DuckDB's insert, ADBC's ingest)."""
        if self.kind != "postgres" or received_signal():
            return None  # a stop signal cancelled it: the run reports the interruption
        text = " ".join(str(e) for e in _chain(exc)).lower()
        where = f"source table {self.schema_name}.{table_name} on {self.describe_database()}"
        if "statement timeout" in text or "lock timeout" in text:
            holders = self._lock_holders(table_name)
            cause = (
                f"the table is locked by another session ({holders}; see pg_locks); end that session or wait for it"
                if holders else
                "likely a locked table (see pg_locks) or an overloaded source; raise SOURCE_STATEMENT_TIMEOUT "
                "if a first read of a large table needs longer"
            )
            return SourceReadError(
                f"reading {where} timed out after {_duration(self.statement_timeout_seconds)} "
                f"(SOURCE_STATEMENT_TIMEOUT): {cause}"
            )
        for phrase, meaning in _CONNECTION_ENDED:
            if phrase in text:
                return SourceReadError(f"reading {where} failed: {meaning}; run the refresh again once it is back")
        if "canceling statement due to user request" in text:
            return SourceReadError(
                f"reading {where} failed: the read was cancelled (Ctrl-C here, or pg_cancel_backend on the "
                "server); run the refresh again"
            )
        return None

    def describe_database(self) -> str:
        """The source database as `postgresql://user@host:port/db` (never the password)."""
        return resolve_postgres_url(self.database_url or "").describe() if self.kind == "postgres" else self.describe()

    def _lock_holders(self, table_name: str) -> str | None:
        """Who holds a lock that blocks reading the table (`pid 4242 (psql) holds AccessExclusiveLock`),
        from pg_locks, within a few seconds; None when nobody does or the look fails."""
        import psycopg

        try:
            with psycopg.connect(
                libpq_uri(self.database_url or ""), autocommit=True, connect_timeout=LOCK_PROBE_TIMEOUT_S,
                options=f"-c statement_timeout={LOCK_PROBE_TIMEOUT_S * 1000}",
            ) as conn:
                # A plain read (AccessShareLock) waits only for an AccessExclusiveLock.
                rows = conn.execute(
                    "select l.pid, coalesce(nullif(a.application_name, ''), a.usename), l.mode "
                    "from pg_locks l left join pg_stat_activity a on a.pid = l.pid "
                    "where l.relation = to_regclass(%s) and l.granted and l.mode = 'AccessExclusiveLock' "
                    "and l.pid <> pg_backend_pid() order by l.pid",
                    (self.table(table_name),),
                ).fetchall()
        except Exception:  # noqa: BLE001 - the look is a courtesy; the timeout is the error
            return None
        return ", ".join(f"pid {pid} ({who or 'unknown'}) holds {mode}" for pid, who, mode in rows) or None


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen and len(seen) < 20:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _duration(seconds: float) -> str:
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g} min"
    return f"{seconds:g} s"


def _demo_select(name: str, duck_type: str) -> str:
    return f"{name}::varchar as {name}" if duck_type == "json" else name


@contextmanager
def _adbc_stream(dsn: str, sql: str, session: dict[str, Any]) -> Iterator[pa.RecordBatchReader]:
    """`sql`'s rows as an Arrow stream on a connection of its own with `session`'s settings; a stop
    signal cancels the statement (its execution and the stream's reads)."""
    import adbc_driver_postgresql.dbapi as pg_dbapi

    with pg_dbapi.connect(libpq_uri(dsn)) as conn, conn.cursor() as cur, cancel_on_signal(cur.adbc_cancel):
        for name, value in session.items():
            cur.execute(f"set {name} = '{value}'")
        cur.execute(sql)
        yield cur.fetch_record_batch()
