"""The record of the last successful dbt build: the raw tables' fingerprint moves with any insert
or in-place update (whoever wrote it), and dbt itself records what each invocation read (in the
state table of its incremental models) on the models it built, only when all of it succeeded; the
refresh's skip reads that record back, on both warehouses."""

from __future__ import annotations

import json

import pipeline_dataset as ds
import pytest
from dbt_helpers import load_raw_tables, parse_manifest, run_dbt

from assets.dbt_project import environment
from resources.stores.dbt_build_state import (
    BUILD_INPUTS_ENV,
    build_inputs,
    inputs_of_model,
    last_builds,
    raw_fingerprint,
)
from resources.warehouse import Warehouse

TABLES = ["orders", "onboarding_journeys", "onboarding_journey_events", "fulfillment_providers", "nope"]


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request, tmp_path):
    if request.param == "duckdb":
        url = f"duckdb:///{tmp_path / 'wh.duckdb'}"
    else:
        url = request.getfixturevalue("make_pg_database")()
    warehouse = Warehouse(url=url)
    events = [_event(e, "2026-11-20T10:00:00+00:00") for e in ds.SOURCE["onboarding_journey_events"]]
    kept = {name: ds.SOURCE[name] for name in ("orders", "onboarding_journeys", "fulfillment_providers")}
    load_raw_tables(warehouse, {**kept, "onboarding_journey_events": events})
    return warehouse


def test_fingerprint_moves_with_every_change_and_dbt_records_what_it_read(warehouse, tmp_path):
    first = raw_fingerprint(warehouse, TABLES)
    assert first["nope"] is None  # not a raw table of this project
    assert first["orders"][0] == len(ds.SOURCE["orders"])
    assert raw_fingerprint(warehouse, TABLES) == first  # nothing written: nothing moves

    # An in-place update (same row count, no loaded_at on the table) moves the orders entry only.
    with warehouse.connect() as conn:
        conn.execute(f"update {warehouse.raw_schema}.orders set status = 'refunded' where id = 'o1'")
    updated = raw_fingerprint(warehouse, TABLES)
    assert updated["orders"] != first["orders"]
    assert {k: v for k, v in updated.items() if k != "orders"} == {k: v for k, v in first.items() if k != "orders"}

    # A new event: a new loaded_at and one more row.
    event = {**_event(ds.SOURCE["onboarding_journey_events"][0], "2026-11-21T10:00:00+00:00"), "id": 999}
    load_raw_tables(warehouse, {"onboarding_journey_events": [event]})
    appended = raw_fingerprint(warehouse, TABLES)
    assert appended["onboarding_journey_events"][0] == first["onboarding_journey_events"][0] + 1
    assert appended["onboarding_journey_events"] != updated["onboarding_journey_events"]

    # What an invocation read, recorded by dbt on each model it built, read back by another process.
    inputs = build_inputs(appended, ds.AS_OF, "v1", {"x": 1})
    assert inputs_of_model(inputs, ["orders"]) == build_inputs({"orders": appended["orders"]}, ds.AS_OF, "v1", {"x": 1})
    assert inputs_of_model(inputs, ["orders", "not_read"]) is None
    assert build_inputs(appended, "2026-11-21", "v1", {"x": 1}) != inputs  # the as-of date counts
    manifest = parse_manifest(warehouse, tmp_path)
    assert last_builds(warehouse, ["stg_raw__orders"]) == {}
    models = ["--select", "stg_raw__orders", "stg_raw__onboarding_journeys"]
    with environment({BUILD_INPUTS_ENV: inputs}):
        run_dbt(warehouse, ["run", *models], tmp_path, manifest=manifest)
    first = last_builds(warehouse, ["stg_raw__orders", "stg_raw__onboarding_journeys", "stg_raw__orders_x"])
    assert sorted(first) == ["stg_raw__onboarding_journeys", "stg_raw__orders"]
    assert first["stg_raw__orders"][0] == inputs and first["stg_raw__orders"][1].endswith("Z")
    # An invocation that fails records nothing: the next refresh runs dbt again.
    later = build_inputs(updated, ds.AS_OF, "v2", {"x": 1})
    with environment({BUILD_INPUTS_ENV: later}), pytest.raises(AssertionError, match="as_of_date"):
        run_dbt(warehouse, ["run", *models, "experiment_conversion_snapshot_history"], tmp_path,
                {"as_of_date": "not a date"}, manifest=manifest)
    assert last_builds(warehouse, ["stg_raw__orders"]) == {"stg_raw__orders": first["stg_raw__orders"]}
    # A later successful build replaces the record of the models it built, and only theirs.
    with environment({BUILD_INPUTS_ENV: later}):
        run_dbt(warehouse, ["run", "--select", "stg_raw__orders"], tmp_path, manifest=manifest)
    again = last_builds(warehouse, ["stg_raw__orders", "stg_raw__onboarding_journeys"])
    assert again["stg_raw__orders"][0] == later and again["stg_raw__orders"][2] != first["stg_raw__orders"][2]
    assert again["stg_raw__onboarding_journeys"] == first["stg_raw__onboarding_journeys"]


def _event(row: dict, loaded_at: str) -> dict:
    payload = row["payload"]
    return {**row, "loaded_at": loaded_at, "payload": payload if isinstance(payload, str) else json.dumps(payload)}
