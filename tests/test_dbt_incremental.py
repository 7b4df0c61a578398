"""Incremental dbt gives the marts a full rebuild gives.

The hand-written dataset of test_dbt_models arrives in three loads, as the extract would bring it:
new events, a late event (old recorded_at), a late-committed event (a smaller id than rows already
loaded, arriving after them), journeys and orders that arrive late, and status and currency changes
in place, and an as-of date that moves forward (bringing in exposures loaded long before). After
each incremental build the marts, and the experiment statistics computed from them, must equal what
`dbt build --full-refresh` and the statistics written into empty tables make of the same raw rows,
on DuckDB and on PostgreSQL.
"""

from __future__ import annotations

import dagster as dg
import pytest
from dbt_helpers import load_raw_tables, parse_manifest, replace_raw_rows, run_dbt, table_rows
from test_dbt_models import DBT_VARS, EVENTS, JOURNEYS, MARTS, ORDERS, PROVIDERS, SCHEMA, TELEMETRY

from assets.experiments import build_experiment_assets
from models.experiment_results import ExperimentSettings
from models.marts import EXPERIMENT_RESULT_TABLES
from resources.warehouse import Warehouse
from resources.warehouse_writer import writer_lock_of

pytestmark = pytest.mark.xdist_group("dbt_incremental")

LATE_COMMITTED = {3}  # a small id that becomes visible after larger ones were loaded
LOAD_1 = "2026-03-06T00:00:00Z"
LOAD_2 = "2026-03-06T01:00:00Z"
LOAD_3 = "2026-03-06T02:00:00Z"
COMPARED = [f"{SCHEMA}.{name}" for name in MARTS + list(EXPERIMENT_RESULT_TABLES)] + [
    f"{SCHEMA}_staging.stg_raw__pricing_experiment_exposures",
    f"{SCHEMA}_staging.pricing_experiment_payload_rejects",
    f"{SCHEMA}_staging.int_experiment_journey_arms",
]
# The as-of date of each step: it moves forward with the loads, then alone (step 4 brings in events
# 8 and 14, loaded in steps 1 and 2 but after the as-of date until then), then back (a re-run for a
# past date: they leave again, and future-slug with them).
AS_OF_DATES = ["2026-03-04", "2026-03-05", "2026-03-05", "2026-03-07", "2026-03-05"]
# spring-offer's control (ctl) is named by the late-committed event 3: no comparison before it.
EMPTY_UNTIL_CONTROL = {f"{SCHEMA}.experiment_results"}
AS_OF_FORWARD = "the as-of date moves forward, nothing new"
FINAL_STEP = "the as-of date moves back, nothing new"
# Comparisons computed even on a handful of journeys, so the statistics are numbers, not nulls.
STATS_SETTINGS = ExperimentSettings(min_journeys=1)
# The builds of these sequences leave out dbt's unit tests: they check the models' SQL on fixed
# fixtures, whatever the warehouse holds, and test_dbt_models runs them. The reference builds
# (--full-refresh) leave out the data tests too: what is checked is what the incremental builds wrote.
BUILD = ["build", "--exclude-resource-type", "unit_test"]
FULL_BUILD = ["build", "--full-refresh", "--exclude-resource-type", "unit_test", "--exclude-resource-type", "test"]


def _with(row: dict, **changes) -> dict:
    return {**row, **changes}


def _by_id(rows: list[dict], id_: str) -> dict:
    return next(row for row in rows if row["id"] == id_)


def _events(ids: set[int], loaded: str) -> list[dict]:
    return [_with(e, loaded_at=loaded) for e in EVENTS if e["id"] in ids]


def _replace(warehouse: Warehouse, table: str, rows: list[dict]) -> None:
    """An in-place change as the extract's upsert leaves it: the row's latest version."""
    replace_raw_rows(warehouse, table, rows)


def _loads(warehouse: Warehouse):
    """The three loads, applied one at a time (a generator: build between them)."""
    first = {e["id"] for e in EVENTS if e["id"] <= 8} - LATE_COMMITTED
    rest = {e["id"] for e in EVENTS} - first - LATE_COMMITTED
    # 1: history so far; o4, j5 and j8 have not reached the warehouse yet.
    load_raw_tables(warehouse, {
        "fulfillment_providers": PROVIDERS,
        "orders": [o for o in ORDERS if o["id"] != "o4"],
        "onboarding_journeys": [j for j in JOURNEYS if j["id"] not in ("j5", "j8")],
        "onboarding_journey_events": _events(first, LOAD_1),
        "provider_guardrail_telemetry": TELEMETRY,
    })
    yield "first load"
    # 2: new and late events; o4 and j5 arrive; j1 completes, the refunded o2 is paid again.
    load_raw_tables(warehouse, {
        "orders": [_by_id(ORDERS, "o4")],
        "onboarding_journeys": [_by_id(JOURNEYS, "j5")],
        "onboarding_journey_events": _events(rest, LOAD_2),
    })
    _replace(warehouse, "onboarding_journeys", [_with(_by_id(JOURNEYS, "j1"), status="completed")])
    _replace(warehouse, "orders", [_with(_by_id(ORDERS, "o2"), status="paid")])
    yield "new events, late events, late journey and order, status changes"
    # 3: the late-committed event; j8 arrives with an old updated_at; o3 changes currency, o1 is refunded.
    load_raw_tables(warehouse, {
        "onboarding_journeys": [_by_id(JOURNEYS, "j8")],
        "onboarding_journey_events": _events(LATE_COMMITTED, LOAD_3),
    })
    _replace(warehouse, "orders", [
        _with(_by_id(ORDERS, "o3"), currency="USD"),
        _with(_by_id(ORDERS, "o1"), status="refunded"),
    ])
    yield "late-committed event, late journey, currency and status change"
    yield AS_OF_FORWARD
    yield FINAL_STEP


def _snapshot(warehouse: Warehouse) -> dict[str, list[dict]]:
    # changed_at: the run that wrote an intermediate row (the incremental clock), not its content.
    return {relation: table_rows(warehouse, relation, drop=["changed_at"]) for relation in COMPARED}


def _statistics(warehouse: Warehouse, rebuild: bool) -> None:
    """The experiment_health / experiment_results assets; `rebuild` starts from empty tables."""
    if rebuild:
        with warehouse.connect() as conn:
            for table in EXPERIMENT_RESULT_TABLES:
                conn.execute(f"drop table if exists {warehouse.schema}.{table}")
    result = dg.materialize([build_experiment_assets(STATS_SETTINGS)], resources={"warehouse": warehouse, "warehouse_writer": writer_lock_of(warehouse)})
    assert result.success


# The models whose SQL calls as_of_date(): built whole when it moves (the history never is).
AS_OF_MODELS = {"int_experiment_journey_arms", "experiment_variant_metrics", "experiment_daily_assignments"}


def _rebuilt_at(warehouse: Warehouse) -> dict[str, object]:
    """When each incremental model was last built whole (the mechanism's state)."""
    with warehouse.connect(read_only=True) as conn:
        rows = conn.fetchall(f"select model_name, rebuilt_at from {SCHEMA}_staging.incremental_state "
                             "where rebuilt_at is not null")
    return dict(rows)


def _assert_incremental_equals_full_refresh(incremental: Warehouse, full: Warehouse, work) -> None:
    """The same loads on two warehouses: one built incrementally, one rebuilt in full each time.
    The incremental one really is: after its first build, no model is built whole again, except
    those whose SQL calls as_of_date() on the steps that move it."""
    manifests: dict[str, object] = {}
    built_whole: dict[str, object] = {}
    previous_as_of = None
    for step, _, as_of in zip(_loads(incremental), _loads(full), AS_OF_DATES, strict=True):
        if not manifests:
            # One per database on Postgres (the manifest names it); DuckDB's are the same file name.
            manifests["incremental"] = parse_manifest(incremental, work)
            manifests["full"] = manifests["incremental"] if full.kind == "duckdb" else parse_manifest(full, work)
        dbt_vars = {**DBT_VARS, "as_of_date": as_of}
        run_dbt(incremental, BUILD, work, dbt_vars, manifest=manifests["incremental"])
        run_dbt(full, FULL_BUILD, work, dbt_vars, manifest=manifests["full"])
        now = _rebuilt_at(incremental)
        if built_whole:
            moved = {name for name in now if now[name] != built_whole.get(name)}
            assert moved <= (AS_OF_MODELS if as_of != previous_as_of else set()), f"built whole after {step}"
            assert len(now) >= 15
        built_whole, previous_as_of = now, as_of
        _statistics(incremental, rebuild=False)
        _statistics(full, rebuild=True)
        built, rebuilt = _snapshot(incremental), _snapshot(full)
        for relation in COMPARED:
            assert built[relation] == rebuilt[relation], f"{relation} after {step}"
            if relation not in EMPTY_UNTIL_CONTROL or step in (AS_OF_FORWARD, FINAL_STEP):
                assert rebuilt[relation], f"{relation} is empty after {step}: the comparison would prove nothing"
        # The as-of steps did move something: event 14 (03-07) is future-slug's only exposure.
        healthy = {row["slug"] for row in built[f"{SCHEMA}.experiment_health"]}
        assert ("future-slug" in healthy) == (step == AS_OF_FORWARD), step


def test_incremental_equals_full_refresh_on_duckdb(tmp_path):
    # Same file name in both: DuckDB names the database after the file, and the manifest is shared.
    warehouses = []
    for name in ("incremental", "full"):
        (tmp_path / name).mkdir()
        warehouses.append(Warehouse(url=f"duckdb:///{tmp_path / name / 'warehouse.duckdb'}", schema_name=SCHEMA))
    _assert_incremental_equals_full_refresh(*warehouses, tmp_path)


@pytest.mark.postgres
def test_incremental_equals_full_refresh_on_postgres(make_pg_database, tmp_path):
    incremental = Warehouse(url=make_pg_database(), schema_name=SCHEMA)
    full = Warehouse(url=make_pg_database(), schema_name=SCHEMA)
    _assert_incremental_equals_full_refresh(incremental, full, tmp_path)


def test_models_left_out_of_a_build_catch_up_on_the_next_one(tmp_path):
    """A build that selects marts but not the intermediate models they count from (a person
    materializing marts alone from the UI) must not leave them believing they are current; builds
    that leave the marts out while their intermediate models move twice (the marts' changes pile
    up: a journey's row replaced twice) must not lose a change either. Each next build makes the
    marts what a full refresh makes of the same rows."""
    warehouses = []
    for name in ("incremental", "full"):
        (tmp_path / name).mkdir()
        warehouses.append(Warehouse(url=f"duckdb:///{tmp_path / name / 'warehouse.duckdb'}", schema_name=SCHEMA))
    incremental, full = warehouses
    loads = [_loads(incremental), _loads(full)]
    for load in loads:
        next(load)  # the first load
    manifest = parse_manifest(incremental, tmp_path)
    first, second = ({**DBT_VARS, "as_of_date": as_of} for as_of in AS_OF_DATES[:2])
    run_dbt(incremental, BUILD, tmp_path, first, manifest=manifest)
    run_dbt(full, FULL_BUILD, tmp_path, first, manifest=manifest)  # the same history dates
    for load in loads:
        next(load)  # new and late events, status changes
    intermediates = ["int_experiment_journey_exposures", "int_experiment_journey_arms", "int_experiment_variants",
                     "int_experiment_slug_orders", "int_experiment_journey_days"]
    run_dbt(incremental, [*BUILD, "--exclude", *intermediates], tmp_path, second, manifest=manifest)
    run_dbt(incremental, BUILD, tmp_path, second, manifest=manifest)
    run_dbt(full, FULL_BUILD, tmp_path, second, manifest=manifest)
    for name in MARTS:
        relation = f"{SCHEMA}.{name}"
        assert table_rows(incremental, relation) == table_rows(full, relation), relation

    # The marts left out twice: once before the third load (nothing new for them), once after it.
    marts = ["--exclude", "path:models/marts"]
    run_dbt(incremental, [*BUILD, *marts], tmp_path, second, manifest=manifest)
    for load in loads:
        next(load)  # the late-committed event, a late journey, currency and status changes
    run_dbt(incremental, [*BUILD, *marts], tmp_path, second, manifest=manifest)
    with incremental.connect(read_only=True) as conn:
        replaced = conn.fetchone(
            f"select count(*) from {SCHEMA}_staging.int_experiment_journey_exposures__changes where change_sign = -1")
    assert replaced[0] > 0, "the marts had no change waiting: the catch-up would prove nothing"
    run_dbt(incremental, BUILD, tmp_path, second, manifest=manifest)
    run_dbt(full, FULL_BUILD, tmp_path, second, manifest=manifest)
    for name in MARTS:
        relation = f"{SCHEMA}.{name}"
        assert table_rows(incremental, relation) == table_rows(full, relation), relation
