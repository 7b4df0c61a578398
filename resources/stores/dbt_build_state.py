"""`<schema>_staging.dbt_builds`: what the last successful dbt build of a selection read, so a
refresh with nothing new can leave dbt alone.

A build's inputs are its raw tables' contents, the as-of date, the dbt code version and the vars.
The raw tables are summarised by a fingerprint that any writer moves (the extract, the API extract,
a fetch by key, a hand-made repair): append-only tables by `count(*)` and `max(loaded_at)` (a batch
is stamped with one instant after every earlier one), the tables updated in place by `count(*)` and
the sum of a hash of every row. Equal inputs give equal marts, so the build can be skipped.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

from models.instants import format_instant
from models.source_tables import LOADED_AT, SOURCE_TABLES_BY_NAME
from resources.stores.tables import TableSpec, ensure_tables
from resources.warehouse import Warehouse, WarehouseConnection

DBT_BUILDS = TableSpec(
    "dbt_builds",
    (
        ("selection", "text", False),  # hash of the selected dbt asset keys
        ("inputs", "text", False),  # JSON of what the build read (see `build_inputs`)
        ("built_at", "ts", False),
        ("run_id", "text", False),
    ),
    ("selection",),
)


def selection_key(asset_keys: Iterable[Any]) -> str:
    """A stable name of a set of selected assets (the refresh's and the guardrail run's differ)."""
    names = sorted("/".join(key.path) for key in asset_keys)
    return hashlib.sha256("\n".join(names).encode()).hexdigest()[:16]


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


def last_build(warehouse: Warehouse, selection: str) -> tuple[str, str, str] | None:
    """(inputs, built_at ISO Z, run id) of the last successful build of `selection`, if any."""
    with warehouse.connect(read_only=True) as conn:
        if not conn.table_exists(warehouse.staging_schema, DBT_BUILDS.name):
            return None
        row = conn.fetchone(
            f"select inputs, built_at, run_id from {warehouse.staging_schema}.{DBT_BUILDS.name} where selection = :s",
            {"s": selection},
        )
    if row is None:
        return None
    built_at = row[1] if row[1].tzinfo else row[1].replace(tzinfo=UTC)
    return row[0], format_instant(built_at), row[2]


def record_build(warehouse: Warehouse, selection: str, inputs: str, run_id: str) -> None:
    """Remember a successful build (after dbt exited: DuckDB allows one process on the file)."""
    with warehouse.connect() as conn:
        ensure_tables(conn, warehouse.staging_schema, [DBT_BUILDS])
        conn.execute(
            f"insert into {warehouse.staging_schema}.{DBT_BUILDS.name} (selection, inputs, built_at, run_id) "
            "values (:s, :i, :b, :r) on conflict (selection) do update set inputs = excluded.inputs, "
            "built_at = excluded.built_at, run_id = excluded.run_id",
            {"s": selection, "i": inputs, "b": datetime.now(UTC), "r": run_id},
        )
