"""`<schema>_staging.dbt_model_builds`: what the last successful dbt build of each model read, so a
refresh with nothing new can leave dbt alone.

A build's inputs are its raw tables' contents, the as-of date, the dbt code version and the vars.
The raw tables are summarised by a fingerprint that any writer moves (the extract, the API extract,
a fetch by key, a hand-made repair): append-only tables by `count(*)` and `max(loaded_at)` (a batch
is stamped with one instant after every earlier one), the tables updated in place by `count(*)` and
the sum of a hash of every row. Equal inputs give equal marts, so the build can be skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from models.instants import format_instant
from models.source_tables import LOADED_AT, SOURCE_TABLES_BY_NAME
from resources.stores.tables import TableSpec, ensure_tables
from resources.warehouse import Warehouse, WarehouseConnection

DBT_BUILDS = TableSpec(
    "dbt_model_builds",
    (
        ("asset_key", "text", False),  # the dbt asset ("staging/int_journey_order_state", "experiment_slug_summary")
        ("inputs", "text", False),  # JSON of what its build read (see `build_inputs`)
        ("built_at", "ts", False),
        ("run_id", "text", False),
    ),
    ("asset_key",),
)


_PER_SELECTION_TABLE = "dbt_builds"


def asset_name(key: Any) -> str:
    """The record's name of a dbt asset key."""
    return "/".join(key.path)


def _table_fingerprint_sql(conn: WarehouseConnection, qualified: str, table_name: str) -> str:
    table = SOURCE_TABLES_BY_NAME[table_name]
    if table.merge == "insert_new":
        return f"select count(*), cast(max({LOADED_AT.name}) as varchar) from {qualified}"
    cols = ", ".join(table.column_names)
    if conn.kind == "duckdb":
        row_hash = f"hash({cols})"
    else:
        row_hash = f"hashtextextended(cast(row({cols}) as text), 0)"
    return f"select count(*), cast(sum({row_hash}) as varchar) from {qualified}"


def raw_fingerprint(warehouse: Warehouse, tables: Iterable[str]) -> dict[str, list]:
    """(row count, clock or checksum) of each raw table; a missing table is `None`."""
    out: dict[str, list] = {}
    with warehouse.connect(read_only=True) as conn:
        for name in sorted(set(tables)):
            if name not in SOURCE_TABLES_BY_NAME or not conn.table_exists(warehouse.raw_schema, name):
                out[name] = None
                continue
            row = conn.fetchone(_table_fingerprint_sql(conn, f"{warehouse.raw_schema}.{name}", name))
            out[name] = [int(row[0]), None if row[1] is None else str(row[1])]
    return out


def build_inputs(
    fingerprint: Mapping[str, Any], as_of_date: str, code_version: str, variables: Mapping[str, Any]
) -> str:
    """Everything a build's result depends on, as one comparable string."""
    return json.dumps(
        {"raw": fingerprint, "as_of_date": as_of_date, "code_version": code_version, "vars": dict(variables)},
        sort_keys=True,
    )


def last_builds(warehouse: Warehouse, names: Iterable[str]) -> dict[str, tuple[str, str, str]]:
    """(inputs, built_at ISO Z, run id) of the last successful build of each named asset that has one.

    Per asset, not per job: the guardrail run's few models, built by the refresh just before from the
    same telemetry, are up to date for it too."""
    wanted = sorted(set(names))
    with warehouse.connect(read_only=True) as conn:
        if not wanted or not conn.table_exists(warehouse.staging_schema, DBT_BUILDS.name):
            return {}
        rows = conn.fetch_dicts(
            f"select asset_key, inputs, built_at, run_id from {warehouse.staging_schema}.{DBT_BUILDS.name}"
        )
    out = {}
    for row in rows:
        if row["asset_key"] in wanted:
            built_at = row["built_at"] if row["built_at"].tzinfo else row["built_at"].replace(tzinfo=UTC)
            out[row["asset_key"]] = (row["inputs"], format_instant(built_at), row["run_id"])
    return out


def record_builds(warehouse: Warehouse, inputs_by_name: Mapping[str, str], run_id: str) -> None:
    """Remember a successful build of these assets (after dbt exited: DuckDB allows one process on
    the file), each with the inputs it read."""
    if not inputs_by_name:
        return
    built_at = datetime.now(UTC)
    with warehouse.connect() as conn:
        ensure_tables(conn, warehouse.staging_schema, [DBT_BUILDS])
        # Its predecessor kept one record per job selection; nothing reads it any more.
        conn.execute(f"drop table if exists {warehouse.staging_schema}.{_PER_SELECTION_TABLE}")
        for name, inputs in sorted(inputs_by_name.items()):
            conn.execute(
                f"insert into {warehouse.staging_schema}.{DBT_BUILDS.name} (asset_key, inputs, built_at, run_id) "
                "values (:k, :i, :b, :r) on conflict (asset_key) do update set inputs = excluded.inputs, "
                "built_at = excluded.built_at, run_id = excluded.run_id",
                {"k": name, "i": inputs, "b": built_at, "r": run_id},
            )
