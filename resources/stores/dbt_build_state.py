"""What the last successful dbt build of each model read, so a refresh with nothing new can leave dbt
alone, read from the state dbt keeps itself: `<schema>_staging.incremental_state`, the table the
incremental models record their watermarks in (dbt_project/macros/materializations/). There is no
second record here: the dbt asset hands dbt what an invocation reads (env `BUILD_INPUTS_ENV`), and
dbt's on-run-end hook stores it on the row of every model the invocation built, once all of it
succeeded.

A build's inputs are its raw tables' contents, the as-of date, the dbt code version and the vars.
The raw tables are summarised by a fingerprint that any writer moves (the extract, the API extract,
a fetch by key, a hand-made repair): append-only tables by `count(*)` and `max(loaded_at)` (a batch
is stamped with one instant after every earlier one), the tables updated in place by `count(*)` and
the sum of a hash of every row. Equal inputs give equal marts, so the build can be skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from models.instants import as_utc, format_instant
from models.source_tables import LOADED_AT, SOURCE_TABLES_BY_NAME
from resources.warehouse import Warehouse, WarehouseConnection

# The table dbt writes (macros/materializations/incremental_state.sql) and the variable it reads.
STATE_TABLE = "incremental_state"
BUILD_INPUTS_ENV = "PRICING_OPS_BUILD_INPUTS"


def asset_name(key: Any) -> str:
    """The name of a dbt asset key in build inputs ("staging/int_journey_order_state")."""
    return "/".join(key.path)


def _table_fingerprint_sql(conn: WarehouseConnection, qualified: str, table_name: str) -> str:
    table = SOURCE_TABLES_BY_NAME[table_name]
    if table.merge == "insert_new":
        return f"select count(*), cast(max({LOADED_AT.name}) as {conn.engine.text_type()}) from {qualified}"
    row_hash = conn.engine.row_checksum_sql(table.column_names)
    return f"select count(*), cast(sum({row_hash}) as {conn.engine.text_type()}) from {qualified}"


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


def inputs_of_model(invocation_inputs: str, tables: Iterable[str]) -> str | None:
    """The inputs of one model (its own raw tables) within what an invocation read (`build_inputs`
    of every raw table it read); None when the invocation did not read one of them."""
    try:
        read = json.loads(invocation_inputs)
        raw = read["raw"]
        own = {name: raw[name] for name in sorted(set(tables))}
        return build_inputs(own, read["as_of_date"], read["code_version"], read["vars"])
    except (ValueError, KeyError, TypeError):
        return None


def last_builds(warehouse: Warehouse, model_names: Iterable[str]) -> dict[str, tuple[str, str, str]]:
    """(inputs of the invocation, built_at ISO Z, invocation id) of the last successful build of each
    named dbt model that has one with known inputs.

    Per model, not per job: the guardrail run's few models, built by the refresh just before from the
    same telemetry, are up to date for it too."""
    wanted = sorted(set(model_names))
    with warehouse.connect(read_only=True) as conn:
        if not wanted or not conn.table_exists(warehouse.staging_schema, STATE_TABLE):
            return {}
        rows = conn.fetch_dicts(
            f"select model_name, inputs, built_at, invocation_id from {warehouse.staging_schema}.{STATE_TABLE} "
            "where inputs is not null and built_at is not null"
        )
    return {
        row["model_name"]: (row["inputs"], format_instant(as_utc(row["built_at"])), row["invocation_id"] or "")
        for row in rows
        if row["model_name"] in wanted
    }
