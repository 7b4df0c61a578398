"""The allocations seed (intended traffic split, used by the SRM test) is checked before it is used:
weights numbers >= 0, one row per (slug, variant_key), a listed slug's weights adding up to more than
0. A bad file is refused before dbt loads it, naming the file and line; a bad table already loaded
stops the statistics (the last good ones stay) instead of an SRM p-value NaN reported as `ok`; a slug
no exposure has is named in a warning."""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

import dagster as dg
import pytest
from test_experiment_assets import CONTROLS, SETTINGS, write_inputs

from assets.dbt import DbtBuildConfig, build_dbt_assets
from assets.dbt_project import DBT_EXECUTABLE, DBT_PROJECT_DIR, PROJECT_SKIP
from assets.experiments import HEALTH_KEY, build_experiment_assets
from models.experiment_allocations import AllocationError, parse_allocations_csv, validated_allocations
from resources.warehouse import Warehouse
from resources.warehouse_writer import writer_lock_of

FILE = "dbt_project/seeds/experiment_allocations.csv"
RULES = "weights are numbers >= 0, one row per (slug, variant_key)"
HEADER = "slug,variant_key,weight\n"


def _check(text: str) -> dict[str, dict[str, float]]:
    return validated_allocations(parse_allocations_csv(text, FILE), FILE)


BAD_FILES = [
    ("spring-offer,a,1\nspring-offer,b,abc\n", f"line 3: weight 'abc' of spring-offer/b is not a number; {RULES}"),
    ("spring-offer,a,2\nspring-offer,b,-1\n", f"line 3: weight '-1' of spring-offer/b is negative; {RULES}"),
    ("spring-offer,a,1\nwinter,x,1\nspring-offer,a,3\n", f"line 4: spring-offer/a is listed twice (also line 2); {RULES}"),
    ("spring-offer,a,NaN\n", f"line 2: weight 'NaN' of spring-offer/a is not a number; {RULES}"),
    ("spring-offer,a,inf\n", f"line 2: weight 'inf' of spring-offer/a is not a number; {RULES}"),
    ("spring-offer,a,\n", f"line 2: weight '' of spring-offer/a is not a number; {RULES}"),
    (",a,1\n", f"line 2: slug is empty; {RULES}"),
    ("spring-offer,a,1,extra\n", "line 2: 4 fields, expected 3 (slug,variant_key,weight)"),
    ("spring-offer,a,0\nspring-offer,b,0\n", ("line 2: every weight of slug spring-offer is 0 (no arm expected to get a "
     "journey); give the arms their shares, or remove the slug for an equal split")),
]


@pytest.mark.parametrize(("rows", "problem"), BAD_FILES, ids=[p.split(":")[1].strip()[:30] for _, p in BAD_FILES])
def test_a_bad_row_is_refused_naming_the_file_and_line(rows, problem):
    with pytest.raises(AllocationError) as refused:
        _check(HEADER + rows)
    assert str(refused.value) == f"{FILE} {problem}"


def test_a_good_file_gives_the_weights_zero_included_and_a_bad_header_is_refused():
    assert _check(HEADER + "spring-offer,a,1\nspring-offer,b,3\nspring-offer,c,0\n\nwinter,x,0.5\n") == {
        "spring-offer": {"a": 1.0, "b": 3.0, "c": 0.0}, "winter": {"x": 0.5}}
    assert _check(HEADER) == {}
    with pytest.raises(AllocationError, match=rf"^{FILE} line 1: the header must be slug,variant_key,weight"):
        _check("slug;variant_key;weight\n")


def test_the_dbt_build_refuses_a_bad_seed_before_loading_anything(tmp_path, dbt_manifest):
    """The dbt asset as the refresh runs it, on a copy of the project whose seed has a negative
    weight: the step fails naming the file and line, and dbt never ran (no seed table)."""
    from assets.dbt import PricingDbtCli

    project = tmp_path / "dbt_project"
    shutil.copytree(DBT_PROJECT_DIR, project, ignore=shutil.ignore_patterns(*PROJECT_SKIP))
    (project / "seeds" / "experiment_allocations.csv").write_text(HEADER + "spring-offer,a,1\nspring-offer,b,-2\n")
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    dbt_models, _ = build_dbt_assets(2, 4, parse_env=warehouse.dbt_env(), data_dir=tmp_path / "data")
    seed = dg.AssetKey(["staging", "experiment_allocations"])
    result = dg.materialize(
        [dbt_models], selection=[seed], raise_on_error=False,
        resources={"dbt": PricingDbtCli(project_dir=str(project), dbt_executable=DBT_EXECUTABLE),
                   "warehouse": warehouse, "warehouse_writer": writer_lock_of(warehouse)},
        run_config={"ops": {"pricing_dbt_models": {"config": DbtBuildConfig(force=True).model_dump()}}},
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failure.step_failure_data.user_failure_data.description == (
        f"{FILE} line 3: weight '-2' of spring-offer/b is negative; {RULES}. Nothing was built: fix the row and "
        "run the refresh again")
    assert not (tmp_path / "wh.duckdb").exists()  # not a statement ran on the warehouse


def _seed_table(warehouse: Warehouse, rows: list[tuple[str, str, object]], weight_type: str = "numeric(18,6)") -> None:
    """The seed table as dbt loads it (or, with `weight_type` double, as one loaded by hand)."""
    with warehouse.connect() as conn:
        conn.execute(f"create or replace table {warehouse.staging_schema}.experiment_allocations "
                     f"(slug text, variant_key text, weight {weight_type})")
        for slug, key, weight in rows:
            conn.execute(f"insert into {warehouse.staging_schema}.experiment_allocations values "
                         f"(:s, :k, cast(:w as {weight_type}))", {"s": slug, "k": key, "w": weight})


def _health(warehouse: Warehouse) -> list[tuple]:
    with warehouse.connect(read_only=True) as conn:
        return conn.fetchall(f"select slug, status, srm_p_value from {warehouse.schema}.experiment_health order by slug")


LOADED_BAD = [
    ([("spring-offer", "a", "2"), ("spring-offer", "b", "-1")],
     "row (slug 'spring-offer', variant_key 'b'): weight -1.000000 of spring-offer/b is negative"),
    ([("spring-offer", "a", "1"), ("spring-offer", "a", "3")],
     ("row (slug 'spring-offer', variant_key 'a'): spring-offer/a is listed twice (also row (slug 'spring-offer', "
     "variant_key 'a'))")),
]


@pytest.mark.parametrize(("rows", "problem"), LOADED_BAD, ids=["negative", "duplicate"])
def test_experiment_health_by_hand_on_a_bad_loaded_seed_fails_and_keeps_the_last_good_statistics(tmp_path, rows, problem):
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    # 10000 / 10100 journeys on a 1:1 split: no mismatch (p 0.48).
    write_inputs(warehouse, {"spring-offer": {"a": (10000, 520), "b": (10100, 580)}}, CONTROLS, {})
    _seed_table(warehouse, [("spring-offer", "a", "1"), ("spring-offer", "b", "1")])
    experiments = build_experiment_assets(SETTINGS)
    assert dg.materialize([experiments], resources={"warehouse": warehouse, "warehouse_writer": writer_lock_of(warehouse)}).success
    before = _health(warehouse)
    assert [(slug, status) for slug, status, _ in before] == [("spring-offer", "ok")]

    _seed_table(warehouse, rows)
    result = dg.materialize([experiments], resources={"warehouse": warehouse, "warehouse_writer": writer_lock_of(warehouse)}, raise_on_error=False)
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_FAILURE]
    assert failure.step_failure_data.user_failure_data.description == (
        f"experiment statistics not computed: analytics_staging.experiment_allocations {problem}; {RULES}; "
        f"fix {FILE} and run `pricing-ops refresh`")
    assert _health(warehouse) == before  # no NaN p-value reported as ok: the last good rows stay


def test_a_nan_weight_loaded_by_hand_is_refused_too_and_an_unknown_slug_is_named(tmp_path):
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    write_inputs(warehouse, {"spring-offer": {"a": (10000, 520), "b": (10100, 580)}}, CONTROLS, {})
    experiments = build_experiment_assets(SETTINGS)

    _seed_table(warehouse, [("spring-offer", "a", "1"), ("spring-offer", "b", "nan")], weight_type="double")
    result = dg.materialize([experiments], resources={"warehouse": warehouse, "warehouse_writer": writer_lock_of(warehouse)}, raise_on_error=False)
    assert not result.success
    with warehouse.connect(read_only=True) as conn:
        assert not conn.table_exists(warehouse.schema, "experiment_health")

    # A typo'd slug: a warning naming it, the weights of the real one apply (3:1 against 1:1 counts: SRM).
    _seed_table(warehouse, [("spring-offer", "a", "3"), ("spring-offer", "b", "1"), ("sprng-offer", "a", "1")])
    with dg.instance_for_test() as instance:
        result = dg.materialize([experiments], resources={"warehouse": warehouse, "warehouse_writer": writer_lock_of(warehouse)}, instance=instance)
        warnings = [r.user_message for r in instance.all_logs(result.run_id) if r.level == logging.WARNING]
    assert warnings == [(f"{FILE} names slug(s) no exposure has: 'sprng-offer'; their weights are unused (a typo, "
                        "or an experiment not started yet?)")]
    [materialization] = result.asset_materializations_for_node("experiment_statistics")[:1]
    assert materialization.asset_key == HEALTH_KEY
    assert materialization.metadata["unknown_allocation_slugs"].value == ["sprng-offer"]
    assert [(slug, status) for slug, status, _ in _health(warehouse)] == [("spring-offer", "srm")]


def test_the_seed_in_the_repository_is_valid():
    path = DBT_PROJECT_DIR / "seeds" / "experiment_allocations.csv"
    _check(path.read_text())
    assert Path(FILE).name == path.name
