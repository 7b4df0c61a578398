"""The `experiment_health` / `experiment_results` assets through `materialize` of the real asset
definition, on DuckDB and on Postgres: inputs (the dbt tables it reads) written by hand, the tables
it writes read back, and the SRM asset check failing on a slug in SRM and passing otherwise."""

from __future__ import annotations

import dagster as dg
import psycopg
import pytest

from assets.experiments import HEALTH_KEY, SRM_CHECK, build_experiment_assets
from models.experiment_results import ExperimentSettings
from resources.warehouse import Warehouse

SETTINGS = ExperimentSettings(srm_p_threshold=0.001, sequential_tuning=5000, min_journeys=100)


def write_inputs(warehouse: Warehouse, arms: dict[str, dict[str, tuple[int, int]]], controls: dict[str, str],
                 multiple: dict[str, int]) -> None:
    """arms: slug -> variant -> (journeys, conversions); only the conversion metric (enough here)."""
    s, st = warehouse.schema, warehouse.staging_schema
    with warehouse.connect() as conn:
        for schema in (s, st):
            conn.execute(f"create schema if not exists {schema}")
        for table in (f"{s}.experiment_variant_metrics", f"{s}.experiment_variant_journeys",
                      f"{st}.int_experiment_journey_arms"):
            conn.execute(f"drop table if exists {table}")
        conn.execute(f"create table {s}.experiment_variant_metrics (slug text, variant_key text, metric text, "
                     "currency text, journeys bigint, total numeric(38,2), total_squares numeric(38,4), as_of_date date)")
        conn.execute(f"create table {s}.experiment_variant_journeys (slug text, variant_key text, is_control boolean)")
        conn.execute(f"create table {st}.int_experiment_journey_arms (slug text, journey_id text, is_multiple_exposure boolean)")
        for slug, variants in arms.items():
            for key, (n, conversions) in variants.items():
                conn.execute(f"insert into {s}.experiment_variant_metrics values (:s, :v, 'conversion', null, :n, :t, :t, "
                             "cast('2026-03-05' as date))", {"s": slug, "v": key, "n": n, "t": conversions})
                conn.execute(f"insert into {s}.experiment_variant_journeys values (:s, :v, :c)",
                             {"s": slug, "v": key, "c": controls.get(slug) == key})
        for slug, n in multiple.items():
            for i in range(n):
                conn.execute(f"insert into {st}.int_experiment_journey_arms values (:s, :j, true)",
                             {"s": slug, "j": f"m{i}"})


SRM_ARMS = {
    # 10000 vs 9000 journeys at equal weights: chi-square 52.6, p ~ 4e-13.
    "spring-offer": {"a": (10000, 500), "b": (9000, 630)},
    "neutral": {"a": (10000, 520), "b": (10100, 580)},
}
BALANCED_ARMS = {"spring-offer": {"a": (10000, 500), "b": (10050, 700)}, "neutral": SRM_ARMS["neutral"]}
CONTROLS = {"spring-offer": "a", "neutral": "a"}


def _materialize(warehouse: Warehouse) -> dg.ExecuteInProcessResult:
    result = dg.materialize([build_experiment_assets(SETTINGS)], resources={"warehouse": warehouse},
                            raise_on_error=True)
    assert result.success
    return result


def _check(result):
    [evaluation] = result.get_asset_check_evaluations()
    assert (evaluation.asset_key, evaluation.check_name) == (HEALTH_KEY, SRM_CHECK)
    return evaluation


def _tables(warehouse: Warehouse):
    with warehouse.connect(read_only=True) as conn:
        health = {r["slug"]: r for r in conn.fetch_dicts(f"select * from {warehouse.schema}.experiment_health")}
        results = {r["slug"]: r for r in conn.fetch_dicts(f"select * from {warehouse.schema}.experiment_results")}
    return health, results


def _exercise(warehouse: Warehouse) -> None:
    write_inputs(warehouse, SRM_ARMS, CONTROLS, {"spring-offer": 7})
    result = _materialize(warehouse)
    check = _check(result)
    assert not check.passed
    assert check.description.startswith("spring-offer: sample ratio mismatch (arms a=10000, b=9000; p=")
    assert "neutral" not in check.description
    health, results = _tables(warehouse)
    assert health["spring-offer"]["status"] == "srm" and health["neutral"]["status"] == "ok"
    assert health["spring-offer"]["multiple_exposure_journeys"] == 7
    # 10000 vs 10100: chi-square 2 * 50^2 / 10050 = 0.497512, 1 df.
    assert health["neutral"]["srm_p_value"] == pytest.approx(0.480595, abs=1e-6)
    assert str(health["neutral"]["as_of_date"]) == "2026-03-05"
    assert results["spring-offer"]["decision"] == "srm"
    neutral = results["neutral"]
    assert (neutral["decision"], neutral["control_variant_key"], neutral["variant_key"]) == ("inconclusive", "a", "b")
    assert neutral["relative_lift"] == pytest.approx(0.104341, abs=1e-6)
    assert neutral["sequential_ci_low"] == pytest.approx(-0.098484, abs=1e-6)
    metadata = {m.asset_key: m.metadata for m in result.asset_materializations_for_node("experiment_statistics")}
    assert "| spring-offer | srm | b | conversion |" in metadata[HEALTH_KEY]["decisions"].value

    # The split is repaired: the check passes and the tables are replaced, not appended to.
    write_inputs(warehouse, BALANCED_ARMS, CONTROLS, {})
    check = _check(_materialize(warehouse))
    assert check.passed and check.description == "no slug in SRM"
    health, results = _tables(warehouse)
    assert len(health) == 2 and len(results) == 2
    assert (health["spring-offer"]["status"], results["spring-offer"]["decision"]) == ("ok", "winning")


def test_srm_check_on_duckdb(tmp_path):
    _exercise(Warehouse(url=f"duckdb:///{tmp_path / 'w.duckdb'}", schema_name="analytics"))


@pytest.mark.postgres
def test_srm_check_on_postgres_and_bi_reader_reads_both_tables(make_pg_database):
    from conftest import PG_ADMIN_DSN

    url = make_pg_database()
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute("do $$ begin if not exists (select 1 from pg_roles where rolname = 'bi_reader') "
                      "then create role bi_reader nologin; end if; end $$")
    warehouse = Warehouse(url=url, schema_name="analytics")
    _exercise(warehouse)
    with psycopg.connect(url) as conn:
        granted = conn.execute(
            "select has_table_privilege('bi_reader', 'analytics.experiment_health', 'select'), "
            "has_table_privilege('bi_reader', 'analytics.experiment_results', 'select')").fetchone()
    assert granted == (True, True)
