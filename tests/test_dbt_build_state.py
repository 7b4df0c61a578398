"""The record of the last successful dbt build: the raw tables' fingerprint moves with any insert
or in-place update (whoever wrote it), and the record survives the process, on both warehouses."""

from __future__ import annotations

import json

import pipeline_dataset as ds
import pytest
from dbt_helpers import load_raw_tables

from resources.stores.dbt_build_state import (
    build_inputs,
    last_builds,
    raw_fingerprint,
    record_builds,
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


def test_fingerprint_moves_with_every_change_and_the_record_survives(warehouse):
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

    # The record of a build, per model, read back by another connection.
    inputs = build_inputs(appended, ds.AS_OF, "v1", {"x": 1})
    assert last_builds(warehouse, ["a", "b"]) == {}
    record_builds(warehouse, {"a": inputs, "staging/b": "older"}, "run-1-abcdef")
    record_builds(warehouse, {"staging/b": inputs}, "run-2-abcdef")  # a later build replaces its record
    last = last_builds(warehouse, ["a", "staging/b", "c"])
    assert sorted(last) == ["a", "staging/b"]
    assert (last["a"][0], last["a"][2]) == (inputs, "run-1-abcdef") and last["a"][1].endswith("Z")
    assert (last["staging/b"][0], last["staging/b"][2]) == (inputs, "run-2-abcdef")
    assert build_inputs(appended, "2026-11-21", "v1", {"x": 1}) != inputs  # the as-of date counts


def _event(row: dict, loaded_at: str) -> dict:
    payload = row["payload"]
    return {**row, "loaded_at": loaded_at, "payload": payload if isinstance(payload, str) else json.dumps(payload)}
