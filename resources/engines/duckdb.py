"""DuckDB: the embedded default warehouse (`duckdb:///relative.duckdb`, `duckdb:////absolute.duckdb`).

One writing process per file: a busy file is retried for up to a minute before failing with a
message that names the file. Sessions are pinned to UTC, though no result relies on it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa

from models.source_tables import Column, SourceTable
from resources.engines.base import (
    Engine,
    EngineTuning,
    RawLoad,
    WarehouseConnection,
    insert_new_sql,
    one_transaction,
    translate_placeholders,
)
from resources.engines.sql_merge import merge_latest

# DuckDB buffer cap while streaming an append-only table in (see DuckDBEngine.load_raw).
STREAMING_APPEND_MEMORY_LIMIT = "128MB"
_ISO_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"
# State-table column kinds (resources/stores/tables.py) as DuckDB types.
_STATE_TYPES = {"text": "varchar", "int": "integer", "bigint": "bigint", "ts": "timestamptz",
                "double": "double", "date": "date"}


class DuckDBConnection(WarehouseConnection):
    def __init__(self, engine: Engine, raw: Any):
        super().__init__(engine, raw)
        # Settings as this code set them: read back, some come rounded ('286.1 MiB').
        self._settings: dict[str, str] = {}

    def set_duckdb(self, name: str, value: str) -> None:
        """Set a DuckDB setting (database-wide), remembering the value as given."""
        self.execute(f"set {name} = '{value}'")
        self._settings[name] = value

    def _run(self, sql: str, params: Mapping[str, Any] | None):
        return self.raw.execute(translate_placeholders(sql, params, "dollar"), dict(params) if params else None)

    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> None:
        # DuckDB 2 keeps a pending result open until it is fetched; drain it.
        self._run(sql, params).fetchall()

    def fetchall(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple]:
        return self._run(sql, params).fetchall()

    def fetch_dicts(self, sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        cur = self._run(sql, params)
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]

    def fetch_arrow(self, sql: str, params: Mapping[str, Any] | None = None) -> pa.Table:
        """DuckDB builds the Arrow table natively, no Python object per row."""
        sql = translate_placeholders(sql, params, "dollar")
        return self.raw.sql(sql, params=dict(params) if params else None).to_arrow_table()

    def table_exists(self, schema: str, table: str) -> bool:
        row = self.fetchone(
            "select count(*) from information_schema.tables where table_schema = :s and table_name = :t",
            {"s": schema, "t": table},
        )
        return bool(row and row[0])

    def register_arrow(self, name: str, table: pa.Table) -> str:
        self.raw.register(name, table)
        return name

    def unregister_arrow(self, name: str) -> None:
        self.raw.unregister(name)

    @contextmanager
    def duckdb_settings(self, **settings: str) -> Iterator[None]:
        """DuckDB settings for the statements of a block, the previous values put back after.

        They are database-wide: other connections to the same file in this process see them
        meanwhile. After an error the transaction is aborted and the values stay until the
        connection closes (with the last connection to the file, the database and its settings go).
        """
        before = {
            name: self._settings.get(name) or str(self.fetchone(f"select current_setting('{name}')")[0])
            for name in settings
        }
        for name, value in settings.items():
            self.set_duckdb(name, value)
        yield
        for name, value in before.items():
            self.set_duckdb(name, value)

    def append_arrow(self, qualified_table: str, reader: pa.RecordBatchReader | pa.Table) -> int:
        """DuckDB scans the stream directly."""
        if isinstance(reader, pa.Table):
            reader = reader.to_reader()
        columns = ", ".join(f'"{name}"' for name in reader.schema.names)
        self.raw.register("_arrow_in", reader)
        try:
            inserted = self.raw.execute(
                f"insert into {qualified_table} ({columns}) select {columns} from _arrow_in"
            ).fetchone()
            return int(inserted[0]) if inserted else 0
        finally:
            self.raw.unregister("_arrow_in")


class DuckDBEngine(Engine):
    name = "duckdb"
    concurrent_connections = False

    def __init__(self, url: str, tuning: EngineTuning | None = None):
        super().__init__(url, tuning)
        rest = url[len("duckdb:///") :] if url.startswith("duckdb:///") else ""
        if not rest:
            raise ValueError(
                "WAREHOUSE_URL: a DuckDB URL names a file, e.g. duckdb:///.data/warehouse.duckdb "
                "(relative) or duckdb:////var/lib/warehouse.duckdb (absolute)"
            )
        self.path = Path(rest).expanduser().resolve()
        self.embedded_file = self.path

    def describe(self) -> str:
        return f"duckdb file {self.path}"

    @contextmanager
    def connect(self, read_only: bool = False, timeout_s: float | None = None) -> Iterator[DuckDBConnection]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        wait = self.tuning.duckdb_lock_wait_seconds if timeout_s is None else timeout_s
        raw = _connect_retrying(self.path, read_only, wait)
        conn = DuckDBConnection(self, raw)

        def begin() -> None:
            conn.set_duckdb("TimeZone", "UTC")
            # DuckDB's default is 80% of RAM; bounded, it spills instead.
            conn.set_duckdb("memory_limit", self.tuning.duckdb_memory_limit)
            # Its progress bar draws on stdout for queries over 2 s: stdout is for results.
            conn.set_duckdb("enable_progress_bar", "false")
            raw.execute("begin transaction")

        with one_transaction(raw, raw.interrupt, begin):
            yield conn

    def dbt_env(self, schema: str) -> dict[str, str]:
        return {"PRICING_OPS_WAREHOUSE_SCHEMA": schema, "PRICING_OPS_DBT_TARGET": "duckdb",
                "PRICING_OPS_DUCKDB_PATH": str(self.path)}

    @classmethod
    def column_type(cls, column: Column) -> str:
        return column.duckdb_type

    def state_type(self, kind: str) -> str:
        return _STATE_TYPES[kind]

    @classmethod
    def create_table_sql(cls, table: SourceTable, qualified_name: str, raw: bool = False) -> str:
        """The raw copy of an append-only table has no primary key: DuckDB keeps such a key as an
        in-memory ART index that slows every bulk append (~25% of the events extract) and grows with
        the table. The key still holds: the extract inserts only ids not yet present (one writer at
        a time) and dbt tests `unique` on the staging model."""
        sql = super().create_table_sql(table, qualified_name, raw)
        if raw and table.merge == "insert_new":
            sql = sql.replace(f",\n  primary key ({table.key})", "")
        return sql

    def load_raw(self, conn, table, raw, reader, read_since, next_loaded_at) -> RawLoad:
        load = RawLoad()
        if table.merge == "insert_new":
            self._stream_new_rows(conn, table, raw, reader, read_since, next_loaded_at, load)
            return load
        stage = raw.rsplit(".", 1)[0] + f"._stage_{table.name}"
        conn.execute(f"drop table if exists {stage}")
        cols = ", ".join(f"{c.name} {c.duckdb_type}" for c in table.columns)
        conn.execute(f"create table {stage} ({cols})")
        load.rows_read = conn.append_arrow(stage, reader)
        load.rows_updated = merge_latest(conn, table, raw, stage)
        conn.execute(f"drop table if exists {stage}")
        return load

    def _stream_new_rows(self, conn, table, raw, reader, read_since, next_loaded_at, load: RawLoad) -> None:
        """Append-only table: insert straight from the Arrow stream the ids not yet loaded.

        One read of a keyed source table cannot repeat an id, so there is no stage and no dedupe: 5M
        events at the speed of the read itself (bench/bench_extract_postgres.py). Append-only rows
        never change, so an id already loaded has the same watermark as its re-read copy: only raw
        rows from `read_since` on can match, and those few (the overlap) are the join's hash side.
        DuckDB cannot size an Arrow stream and would hash the stream instead, holding a large re-read
        whole (a 10M re-read failed in 128MB); `build_side_probe_side` off keeps the stream as the
        probe side, piped into the insert. A streaming append needs little memory, but DuckDB keeps
        the blocks it writes cached up to memory_limit, so the process grew with the rows loaded
        until that cap: a small cap keeps it flat (410 MB at 5M, 416 MB at 10M events), as fast.
        """
        load.loaded_at = next_loaded_at(conn, raw)
        params: dict[str, object] = {"loaded_at": load.loaded_at}
        overlap = ""
        if read_since is not None:
            overlap, params["since"] = f" and t.{table.watermark} >= :since", read_since
        counted, count = _counting(reader)
        with conn.duckdb_settings(
            memory_limit=STREAMING_APPEND_MEMORY_LIMIT, disabled_optimizers="build_side_probe_side"
        ):
            conn.raw.register("_extract_in", counted)
            try:
                conn.execute(insert_new_sql(table, raw, "_extract_in", overlap), params)
            except BaseException:
                # After a failed insert DuckDB refuses all but a rollback ("Current transaction is
                # aborted"): the insert's own error (a source read that broke, say) is the cause.
                with contextlib.suppress(Exception):
                    conn.raw.unregister("_extract_in")
                raise
            conn.raw.unregister("_extract_in")
        load.rows_read = count[0]

    # Export row format --------------------------------------------------------------------------------
    def instant_iso_sql(self, column: str) -> str:
        # Epoch microseconds back to a naive UTC timestamp: cheaper than `at time zone` (ICU).
        return f"strftime(make_timestamp(epoch_us({column})), '{_ISO_FORMAT}')"

    def utc_timestamp_sql(self, column: str) -> str:
        return f"make_timestamp(epoch_us({column}))"

    def text_type(self) -> str:
        return "varchar"

    def json_line_sql(self, fields: list[tuple[str, str]]) -> str:
        # to_json of a struct keeps the field order and is the cheapest way DuckDB builds JSON.
        packed = ", ".join(f'"{key}" := {expr}' for key, expr in fields)
        return f"to_json(struct_pack({packed}))::varchar"

    def row_checksum_sql(self, columns: list[str]) -> str:
        return f"hash({', '.join(columns)})"

    def quantiles_sql(self, column: str, fractions: list[float]) -> str:
        return f"quantile_disc({column}, [{', '.join(f'{f:.6f}' for f in fractions)}])"


def _counting(reader: pa.RecordBatchReader) -> tuple[pa.RecordBatchReader, list[int]]:
    count = [0]

    def batches():
        for batch in reader:
            count[0] += batch.num_rows
            yield batch

    return pa.RecordBatchReader.from_batches(reader.schema, batches()), count


def _connect_retrying(path: Path, read_only: bool, timeout_s: float = 60.0):
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
            # Never past the deadline: a caller that must answer by then (readyz) reports the lock, not a bare timeout.
            time.sleep(min(delay, max(0.01, deadline - time.monotonic())))
            delay = min(delay * 2, 1.0)

