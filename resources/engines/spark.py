"""Apache Spark through Spark Connect (`sc://host:port`, contract section 10): raw, staging, marts and
the experiment tables as tables of the cluster's catalog; transactional state in PostgreSQL
(STATE_DATABASE_URL), since Spark has neither transactions nor row-level updates without Delta,
Iceberg or Hudi jars, which this platform cannot assume a cluster has.

- Sessions: one Connect session per process and URL (the first query of a session is the slow one),
  its time zone set to UTC (a cluster's default is its JVM's) and ANSI mode on, so an overflow or a
  bad cast fails instead of becoming NULL.
- Bulk load: Arrow batches through Connect into a Parquet stage table, ~`LOAD_CHUNK_ROWS` per
  request, then merged by key in SQL: new ids of an append-only table are appended (`insert into`
  an existing table, never rewriting it); a table that changes in place is rebuilt beside the old
  one (latest version of each key) and swapped in by rename, because `insert overwrite` may not read
  the table it overwrites.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import pyarrow as pa

from models.source_tables import Column, SourceTable
from resources.engines.base import Engine, EngineTuning, RawLoad, WarehouseConnection, insert_new_sql
from resources.engines.postgres import PostgresEngine
from resources.interrupts import cancel_on_signal

# Rows per Arrow request to the Connect server: the driver holds a request as a local collection
# while it writes it out (200k rows of events exhausted a 1 GiB driver), so requests stay small.
LOAD_CHUNK_ROWS = 50_000
_ISO_FORMAT = "yyyy-MM-dd'T'HH:mm:ss.SSSSSS'Z'"
_SESSIONS: dict[str, Any] = {}
_SESSIONS_LOCK = threading.Lock()
_URL = re.compile(r"^sc://[^/:;]+(:\d+)?(/.*)?$")


def spark_session(url: str):
    """The process's Connect session for `url`, created once, in UTC and ANSI mode."""
    with _SESSIONS_LOCK:
        session = _SESSIONS.get(url)
        if session is None or session.is_stopped:
            import warnings

            try:
                # pyspark 4.3 warns that pandas 3 is not fully supported: Arrow carries our data, not pandas.
                warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas")
                from pyspark.sql import SparkSession
            except ImportError:
                raise RuntimeError(
                    "WAREHOUSE_URL is a Spark Connect URL but pyspark is not installed: install the `spark` "
                    "extra (`uv sync --extra spark`)"
                ) from None
            # pyspark logs every failed query with its JVM stack at ERROR; the exception says it once.
            logging.getLogger("SQLQueryContextLogger").setLevel(logging.CRITICAL)
            session = SparkSession.builder.remote(url).getOrCreate()
            session.conf.set("spark.sql.pyspark.jvmStacktrace.enabled", "false")
            session.conf.set("spark.sql.session.timeZone", "UTC")
            session.conf.set("spark.sql.ansi.enabled", "true")
            _SESSIONS[url] = session
        return session


class SparkConnection(WarehouseConnection):
    """Statements run at once (Spark has no transactions): commit and rollback do nothing."""

    def _df(self, sql: str, params: Mapping[str, Any] | None):
        return self.raw.sql(sql, args=dict(params) if params else None)

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        self._df(sql, params).collect()

    def fetch_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        # Arrow keeps instants UTC-labelled, decimals exact; no Python object per row on the way.
        return self._df(sql, params).toArrow()

    def fetchall(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        table = self.fetch_arrow(sql, params)
        return list(zip(*(col.to_pylist() for col in table.columns))) if table.num_columns else []

    def fetch_dicts(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        return self.fetch_arrow(sql, params).to_pylist()

    def table_exists(self, schema: str, table: str) -> bool:
        return bool(self.raw.catalog.tableExists(f"{schema}.{table}"))

    def commit(self) -> None:
        pass

    def rollback(self) -> None:
        pass

    def append_arrow(self, qualified_table: str, reader: pa.RecordBatchReader | pa.Table) -> int:
        """Appended in chunks of LOAD_CHUNK_ROWS; columns matched by name (insertInto is positional)."""
        if isinstance(reader, pa.Table):
            reader = reader.to_reader()
        columns = self.raw.table(qualified_table).columns
        total = 0
        for chunk in _chunks(reader):
            self.raw.createDataFrame(chunk).select(*columns).write.insertInto(qualified_table)
            total += chunk.num_rows
        return total

    def register_arrow(self, name: str, table: pa.Table) -> str:
        _dataframe(self.raw, table).createOrReplaceTempView(name)
        return name

    def unregister_arrow(self, name: str) -> None:
        self.raw.catalog.dropTempView(name)


def _dataframe(session, table: pa.Table):
    """A DataFrame of an Arrow table; an empty one keeps its columns (Spark cannot infer a schema
    from no rows)."""
    if table.num_rows:
        return session.createDataFrame(table)
    from pyspark.sql.pandas.types import from_arrow_schema

    return session.createDataFrame([], schema=from_arrow_schema(table.schema))


def _chunks(reader: pa.RecordBatchReader) -> Iterator[pa.Table]:
    pending: list[pa.RecordBatch] = []
    rows = 0
    for batch in reader:
        pending.append(batch)
        rows += batch.num_rows
        if rows >= LOAD_CHUNK_ROWS:
            yield pa.Table.from_batches(pending, reader.schema)
            pending, rows = [], 0
    if rows:
        yield pa.Table.from_batches(pending, reader.schema)


def spark_type(column: Column) -> str:
    """A source column's Spark type, from its DuckDB spelling: text and JSON as string, instants as
    `timestamp` (Spark's instant type, shown in the session time zone: UTC here)."""
    duck = column.duckdb_type.lower()
    if duck in ("varchar", "text", "json"):
        return "string"
    if duck == "timestamptz":
        return "timestamp"
    return duck


class SparkEngine(Engine):
    name = "spark"
    upserts = False

    def __init__(self, url: str, tuning: EngineTuning | None = None, state_url: str | None = None):
        super().__init__(url, tuning)
        if not _URL.match(url):
            raise ValueError("WAREHOUSE_URL: a Spark Connect URL is sc://host:port (e.g. sc://127.0.0.1:15002)")
        self._state_url = state_url
        self._state: Engine | None = None

    def describe(self) -> str:
        return f"spark connect {self.url.split('/;', 1)[0]}"

    def state_engine(self) -> Engine:
        if self._state is None:
            if not self._state_url:
                raise ValueError(
                    "STATE_DATABASE_URL is required with a Spark warehouse (follow-ups, ledgers and build "
                    "bookkeeping need transactions): set it to a PostgreSQL URL, e.g. postgresql://host/pricing_state"
                )
            self._state = PostgresEngine(self._state_url, self.tuning)
        return self._state

    @contextmanager
    def connect(self, read_only: bool = False, timeout_s: float | None = None) -> Iterator[SparkConnection]:
        # No transactions to roll back; a stop signal interrupts the session's running queries.
        session = spark_session(self.url)
        with cancel_on_signal(session.interruptAll):
            yield SparkConnection(self, session)

    def dbt_env(self, schema: str) -> dict[str, str]:
        # dbt-spark's `session` method builds over the same Connect URL (SPARK_REMOTE).
        return {"PRICING_OPS_WAREHOUSE_SCHEMA": schema, "PRICING_OPS_DBT_TARGET": "spark", "SPARK_REMOTE": self.url,
                # dbt-spark asks a Connect session to set static configs it cannot change: one warning per model.
                "PYTHONWARNINGS": "ignore::UserWarning:pyspark.sql.connect.conf"}

    def quote(self, identifier: str) -> str:
        return "`" + identifier.replace("`", "``") + "`"

    @classmethod
    def column_type(cls, column: Column) -> str:
        return spark_type(column)

    @classmethod
    def create_table_sql(cls, table: SourceTable, qualified_name: str, raw: bool = False) -> str:
        """Parquet in the catalog: no keys (the merge keeps them unique), no NOT NULL."""
        from models.source_tables import raw_columns

        cols = ",\n".join(f"  {c.name} {spark_type(c)}" for c in (raw_columns(table) if raw else table.columns))
        return f"create table if not exists {qualified_name} (\n{cols}\n) using parquet"

    def create_state_table_sql(self, qualified: str, columns: list[tuple[str, str]]) -> str:
        body = ", ".join(f"{name} {typ}" for name, typ in columns)
        return f"create table if not exists {qualified} ({body}) using parquet"

    # Raw tables ---------------------------------------------------------------------------------------
    def load_raw(self, conn, table, raw, reader, read_since, next_loaded_at) -> RawLoad:
        load = RawLoad()
        schema_name = raw.rsplit(".", 1)[0]
        stage = f"{schema_name}._stage_{table.name}"
        session = conn.raw
        conn.execute(f"drop table if exists {stage}")
        first = True
        for chunk in _chunks(reader):
            df = session.createDataFrame(chunk)
            if first:
                df.write.format("parquet").mode("overwrite").saveAsTable(stage)
                first = False
            else:
                df.write.insertInto(stage)
            load.rows_read += chunk.num_rows
        if first:  # nothing read: an empty stage of the same columns
            _dataframe(session, reader.schema.empty_table()).write.format("parquet").saveAsTable(stage)
        # The stage holds the wire types (json and money may travel as text): cast on the way in.
        typed = ", ".join(f"cast({c.name} as {spark_type(c)}) as {c.name}" for c in table.columns)
        staged = f"(select {typed} from {stage})"
        if table.merge == "insert_new":
            load.loaded_at = next_loaded_at(conn, raw)
            overlap, params = "", {"loaded_at": load.loaded_at}
            if read_since is not None:
                overlap, params["since"] = f" and t.{table.watermark} >= :since", read_since
            conn.execute(insert_new_sql(table, raw, staged, overlap), params)
        else:
            load.rows_updated = self._replace_latest(conn, table, raw, staged)
        conn.execute(f"drop table if exists {stage}")
        return load

    def _replace_latest(self, conn: SparkConnection, table: SourceTable, raw: str, staged: str) -> int:
        """The raw table with the latest version of each staged key, rebuilt beside it and swapped in
        by rename; returns how many existing rows changed."""
        cols = table.column_names
        col_list = ", ".join(cols)
        key = table.key
        deduped = (
            f"select {col_list} from (select {col_list}, row_number() over (partition by {key} "
            f"order by {table.watermark or key} desc) as rn from {staged} s) s where rn = 1"
        )
        diffs = " or ".join(f"not (t.{c} <=> d.{c})" for c in cols if c != key)
        [changed] = conn.fetchone(
            f"select count(*) from ({deduped}) d join {raw} t on t.{key} = d.{key} where {diffs}"
        )
        if not changed and not conn.fetchone(
            f"select count(*) from ({deduped}) d left anti join {raw} t on t.{key} = d.{key}"
        )[0]:
            return 0  # nothing new, nothing changed: the table stays as it is
        rebuilt = f"{raw}__rebuilt"
        conn.execute(f"drop table if exists {rebuilt}")
        conn.execute(
            f"create table {rebuilt} using parquet as "
            f"select {col_list} from ({deduped}) d "
            f"union all select {', '.join(f't.{c}' for c in cols)} from {raw} t left anti join ({deduped}) d "
            f"on t.{key} = d.{key}"
        )
        conn.execute(f"drop table {raw}")
        conn.execute(f"alter table {rebuilt} rename to {raw}")
        return int(changed)

    # Export row format --------------------------------------------------------------------------------
    def instant_iso_sql(self, column: str) -> str:
        # The session time zone is UTC (spark_session), so the wall time formatted is UTC's.
        return f"date_format({column}, \"{_ISO_FORMAT}\")"

    def utc_timestamp_sql(self, column: str) -> str:
        return column

    def text_type(self) -> str:
        return "string"

    def json_line_sql(self, fields: list[tuple[str, str]]) -> str:
        packed = ", ".join(f"'{key}', {expr}" for key, expr in fields)
        # Nulls are written as null (to_json drops null fields by default).
        return f"to_json(named_struct({packed}), map('ignoreNullFields', 'false'))"

    def row_checksum_sql(self, columns: list[str]) -> str:
        # As a decimal: a sum of 64-bit hashes overflows bigint (an error in ANSI mode).
        return f"cast(xxhash64({', '.join(columns)}) as decimal(20, 0))"

    def state_type(self, kind: str) -> str:
        """Column kinds of the tables the jobs write into the warehouse (the experiment tables)."""
        return {"text": "string", "int": "int", "bigint": "bigint", "ts": "timestamp", "double": "double",
                "date": "date"}[kind]

    def add_missing_columns(self, conn, qualified: str, columns: list[tuple[str, str]]) -> None:
        present = {c.lower() for c in conn.raw.table(qualified).columns}
        missing = [f"{name} {typ}" for name, typ in columns if name.lower() not in present]
        if missing:
            conn.execute(f"alter table {qualified} add columns ({', '.join(missing)})")

    def rewrite_rows(self, conn, qualified: str, columns: str, staged: str, slugs: str) -> None:
        # No row deletes: the table is rewritten whole from the staged rows (all it must hold).
        conn.execute(f"insert overwrite table {qualified} select {columns} from {staged}")

    def quantiles_sql(self, column: str, fractions: list[float]) -> str:
        parts = ", ".join(f"percentile_disc({f:.6f}) within group (order by {column})" for f in fractions)
        return f"array({parts})"

    def row_after_sql(self, columns: list[str], values: list[str]) -> str:
        # Spark compares structs only of identical types; spelled out, each pair coerces on its own.
        (column, value), rest = (columns[0], values[0]), (columns[1:], values[1:])
        if not rest[0]:
            return f"{column} > {value}"
        return f"({column} > {value} or ({column} = {value} and {self.row_after_sql(*rest)}))"

