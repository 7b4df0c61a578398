"""The warehouse: a DuckDB file (embedded default), PostgreSQL (production) or Apache Spark through
Spark Connect (past one machine, contract section 10), one resource.

What differs per engine lives in `resources/engines/` (one module each, one interface); this module
is the Dagster resource that names the warehouse (WAREHOUSE_URL, WAREHOUSE_SCHEMA and its `_raw` and
`_staging` siblings) and hands out connections to it and to where transactional state lives
(`state_connect`: the warehouse itself, or STATE_DATABASE_URL when the warehouse is Spark).

Everything above speaks SQL that every engine accepts, with `:name` placeholders. Sessions are
pinned to UTC, but no result relies on it: the SQL converts instants explicitly.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from resources.engines import Engine, EngineTuning, WarehouseConnection, engine_for_url
from resources.engines.postgres import libpq_uri

__all__ = ["Warehouse", "WarehouseConnection", "WarehouseLocation", "engine_for_url", "libpq_uri"]


@dataclass(frozen=True)
class WarehouseLocation:
    """Where a warehouse's one-writer lock lives (resources/warehouse_writer.py): the DuckDB file,
    or the PostgreSQL database of its transactional state (the warehouse itself, or
    STATE_DATABASE_URL beside a Spark warehouse). `dsn` is secret: never log it."""

    kind: str  # "duckdb" | "postgres"
    path: Path | None = None
    dsn: str | None = None
    where: str = ""

    @classmethod
    def parse(cls, url: str, state_url: str | None = None) -> WarehouseLocation:
        engine = engine_for_url(url, state_url=state_url)
        if engine.embedded_file is not None:
            return cls(kind="duckdb", path=engine.embedded_file, where=engine.describe())
        state = engine.state_engine()
        return cls(kind="postgres", dsn=getattr(state, "dsn", None), where=engine.describe())

    def describe(self) -> str:
        """A printable name of the warehouse without any secret."""
        return self.where


class Warehouse(ConfigurableResource):
    """The warehouse (WAREHOUSE_URL: a DuckDB file by default, PostgreSQL, or Spark Connect) holding
    the raw tables, the dbt models and the experiment statistics in WAREHOUSE_SCHEMA and its `_raw`
    and `_staging` schemas; and the automation state, there or in STATE_DATABASE_URL (Spark)."""

    url: str = Field(description="duckdb:///path.duckdb, postgresql://... or sc://host:port (secret: set via EnvVar)")
    schema_name: str = Field(default="analytics", description="Marts schema (WAREHOUSE_SCHEMA)")
    state_url: str | None = Field(
        default=None,
        description="PostgreSQL for transactional state when the warehouse is Spark (STATE_DATABASE_URL; secret)",
    )
    duckdb_memory_limit: str = Field(default="300MB", description="DuckDB memory_limit per connection")
    duckdb_lock_wait_seconds: float = Field(default=60.0, description="how long to wait for a busy DuckDB file")

    _engine: Engine | None = PrivateAttr(default=None)

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            tuning = EngineTuning(self.duckdb_memory_limit, self.duckdb_lock_wait_seconds)
            self._engine = engine_for_url(self.url, tuning, self.state_url)
        return self._engine

    @property
    def kind(self) -> str:
        """The engine's name, for messages and metadata only."""
        return self.engine.name

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
        return self.engine.describe()

    def connect(self, read_only: bool = False, timeout_s: float | None = None):
        """A connection to the warehouse in UTC; commits on success, rolls back on error, closes.
        `timeout_s` bounds the connection, each statement and each lock wait (probes that must
        answer in time); a stop signal interrupts the statement in flight."""
        return self.engine.connect(read_only, timeout_s)

    def state_connect(self, read_only: bool = False, timeout_s: float | None = None):
        """A connection to where transactional state lives (the warehouse, or STATE_DATABASE_URL)."""
        return self.engine.state_engine().connect(read_only, timeout_s)

    @property
    def location(self) -> WarehouseLocation:
        return WarehouseLocation.parse(self.url, self.state_url)

    def describe_state(self) -> str:
        return self.engine.state_engine().describe()

    def ensure_schemas(self, conn: WarehouseConnection) -> None:
        for schema in (self.schema, self.raw_schema):
            self.engine.create_schema(conn, schema)

    @contextmanager
    def state_with_copies(self, tables: Iterable[tuple[str, str]]) -> Iterator[WarehouseConnection]:
        """A state connection that also sees the named warehouse tables ((schema, table) pairs), for
        statements that join state with a mart (the guardrail evaluation joins the status mart with
        the automation state). When state lives in the warehouse they are the tables themselves;
        else a copy of each is written into the state database first (small tables only: one row
        per provider), replacing the previous copy in the same transaction."""
        engine = self.engine
        if not engine.state_is_separate:
            with self.connect() as conn:
                yield conn
            return
        copies = []
        with self.connect(read_only=True) as conn:
            for schema, table in tables:
                if conn.table_exists(schema, table):
                    copies.append((schema, table, conn.fetch_arrow(f"select * from {schema}.{table}")))
        with self.state_connect() as state:
            for schema, table, rows in copies:
                state.execute(f"create schema if not exists {schema}")
                state.execute(f"drop table if exists {schema}.{table}")
                state.execute(f"create table {schema}.{table} as select * from {state.register_arrow('_copy', rows)}")
                state.unregister_arrow("_copy")
            yield state

    def dbt_env(self) -> dict[str, str]:
        """Environment for a dbt invocation on this warehouse (contains secrets: never log it)."""
        return self.engine.dbt_env(self.schema_name)
