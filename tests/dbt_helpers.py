"""Helpers for tests of the dbt project on its own: load warehouse raw tables by hand, run dbt in
process, read tables back in a form that compares across DuckDB and Postgres."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from assets.dbt import environment
from models.source_tables import SOURCE_TABLES_BY_NAME, raw_columns
from resources.engines import create_table_sql
from resources.warehouse import Warehouse

DBT_PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"


def load_raw_tables(warehouse: Warehouse, rows_by_table: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
    """Create the raw tables with the project's own DDL and insert the rows.

    Every value goes through `cast(:v as <column type>)`: timestamps as ISO text with an offset,
    money as decimal text, payloads as JSON text, so both engines receive exactly the same values.
    """
    with warehouse.connect() as conn:
        warehouse.ensure_schemas(conn)
        for name, rows in rows_by_table.items():
            table = SOURCE_TABLES_BY_NAME[name]
            qualified = f"{warehouse.raw_schema}.{name}"
            conn.execute(create_table_sql(table, qualified, warehouse.kind, raw=True))
            if not warehouse.engine.upserts:
                # Spark: no row-at-a-time inserts worth the name; the same casts in DuckDB, then Arrow.
                conn.append_arrow(qualified, _cast_in_duckdb(table, list(rows)))
                continue
            columns = raw_columns(table)
            casts = ", ".join(
                f"cast(:{c.name} as {c.duckdb_type if warehouse.kind == 'duckdb' else c.postgres_type})"
                for c in columns
            )
            sql = f"insert into {qualified} ({', '.join(c.name for c in columns)}) values ({casts})"
            for row in rows:
                conn.execute(sql, {c.name: row.get(c.name) for c in columns})



def _cast_in_duckdb(table, rows: list[Mapping[str, Any]]):
    """The rows in the raw table's types (cast by DuckDB as in `load_raw_tables`), as Arrow."""
    import duckdb

    columns = raw_columns(table)
    with duckdb.connect() as conn:
        conn.execute("set TimeZone = 'UTC'")
        conn.execute(f"create table t ({', '.join(f'{c.name} {c.duckdb_type}' for c in columns)})")
        casts = ", ".join(f"cast(${c.name} as {c.duckdb_type})" for c in columns)
        for row in rows:
            conn.execute(f"insert into t values ({casts})", {c.name: row.get(c.name) for c in columns})
        # JSON travels as its text (Spark keeps raw JSON as string).
        select = ", ".join(f"cast({c.name} as varchar) as {c.name}" if c.duckdb_type.lower() == "json" else c.name
                           for c in columns)
        return conn.sql(f"select {select} from t").to_arrow_table()


def replace_raw_rows(warehouse: Warehouse, name: str, rows: list[dict]) -> None:
    """An in-place change as the extract's upsert leaves it: each row's latest version by id."""
    if warehouse.engine.upserts:
        with warehouse.connect() as conn:
            for row in rows:
                conn.execute(f"delete from {warehouse.raw_schema}.{name} where id = :id", {"id": row["id"]})
        load_raw_tables(warehouse, {name: rows})
        return
    # Spark has no row deletes: the table rewritten without those ids, then the rows appended.
    qualified = f"{warehouse.raw_schema}.{name}"
    ids = ", ".join("'" + str(row["id"]).replace("'", "''") + "'" for row in rows)
    with warehouse.connect() as conn:
        conn.execute(f"drop table if exists {qualified}__kept")
        conn.execute(f"create table {qualified}__kept using parquet as select * from {qualified} "
                     f"where cast(id as string) not in ({ids})")
        conn.execute(f"drop table {qualified}")
        conn.execute(f"alter table {qualified}__kept rename to {qualified}")
    load_raw_tables(warehouse, {name: rows})


def run_dbt(
    warehouse: Warehouse,
    args: Sequence[str],
    work_dir: Path,
    dbt_vars: Mapping[str, Any] | None = None,
    manifest: Any = None,
):
    """One in-process dbt invocation on `warehouse`; returns the dbtRunnerResult, raising on failure.

    target/ and logs/ go under `work_dir` so tests never touch the manifest the Dagster definitions
    read from dbt_project/target. With `manifest` (from `parse_manifest` on the same engine) dbt
    skips parsing, the bulk of an invocation's cost; vars still apply, they are read at run time.
    """
    from dbt.cli.main import dbtRunner

    cli = [
        *args,
        "--project-dir", str(DBT_PROJECT_DIR),
        "--profiles-dir", str(DBT_PROJECT_DIR),
        "--target-path", str(work_dir / "target"),
        "--log-path", str(work_dir / "logs"),
    ]
    if dbt_vars is not None:
        cli += ["--vars", json.dumps(dict(dbt_vars))]
    with environment(warehouse.dbt_env()):
        try:
            result = dbtRunner(manifest=manifest).invoke(cli)
        finally:
            if warehouse.kind == "duckdb":
                release_duckdb_file()
    if not result.success:
        failures = []
        for node_result in getattr(result.result, "results", None) or []:
            if str(node_result.status) not in ("success", "pass"):
                failures.append(f"{node_result.node.unique_id}: {node_result.status}: {node_result.message}")
        raise AssertionError(f"dbt {' '.join(args)} failed: {result.exception or ''}\n" + "\n".join(failures))
    return result


def parse_manifest(warehouse: Warehouse, work_dir: Path) -> Any:
    """The project's manifest parsed for the engine of `warehouse` (adapter macros differ)."""
    return run_dbt(warehouse, ["parse"], work_dir).result


def release_duckdb_file() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in the process after an invocation.

    dbt-duckdb caches its database handle in a class attribute; while it lives, this process cannot
    open the same file read-only (DuckDB refuses a second configuration of one file).
    """
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    env = DuckDBConnectionManager._ENV
    if env is not None:
        env.close()
    DuckDBConnectionManager.close_all_connections()


def comparable(value: Any) -> Any:
    """A value in the form both engines agree on: instants in UTC (whatever the session zone)."""
    if isinstance(value, datetime):
        assert value.tzinfo is not None, "timestamptz columns must come back time-zone aware"
        return value.astimezone(UTC)
    return value


def table_rows(warehouse: Warehouse, relation: str, drop: Sequence[str] = ()) -> list[dict[str, Any]]:
    """All rows of a relation as dicts of comparable values, sorted in Python (collation-free)."""
    with warehouse.connect(read_only=True) as conn:
        rows = conn.fetch_dicts(f"select * from {relation}")
    out = [{k: comparable(v) for k, v in row.items() if k not in drop} for row in rows]
    return sorted(out, key=lambda row: [(v is None, str(v)) for v in row.values()])


def utc(text: str) -> datetime:
    """An aware UTC datetime from ISO text ending in Z."""
    return datetime.fromisoformat(text).astimezone(UTC)


def day(text: str) -> date:
    return date.fromisoformat(text)
