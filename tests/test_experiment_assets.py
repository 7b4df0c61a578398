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
from resources.warehouse_writer import writer_lock_of

SETTINGS = ExperimentSettings(srm_p_threshold=0.001, sequential_tuning=5000, min_journeys=100)


def write_tables(warehouse: Warehouse, metrics: list[tuple], controls: dict[str, str], multiple: dict[str, int],
                 daily: dict[str, dict[str, int]] | None = None) -> None:
    """The dbt tables the statistics read, by hand. metrics: (slug, variant, metric, currency,
    journeys, booked_journeys, total, total_squares); daily: slug -> {UTC date: journey_count}."""
    s, st = warehouse.schema, warehouse.staging_schema
    with warehouse.connect() as conn:
        for schema in (s, st):
            conn.execute(f"create schema if not exists {schema}")
        for table in (f"{s}.experiment_variant_metrics", f"{s}.experiment_variant_journeys",
                      f"{s}.experiment_daily_assignments", f"{st}.int_experiment_journey_arms"):
            conn.execute(f"drop table if exists {table}")
        conn.execute(f"create table {s}.experiment_variant_metrics (slug text, variant_key text, metric text, "
                     "currency text, journeys bigint, booked_journeys bigint, total numeric(38,2), "
                     "total_squares numeric(38,4), as_of_date date)")
        conn.execute(f"create table {s}.experiment_variant_journeys (slug text, variant_key text, is_control boolean)")
        conn.execute(f"create table {s}.experiment_daily_assignments (slug text, activity_date date, "
                     "exposure_count bigint, journey_count bigint)")
        conn.execute(f"create table {st}.int_experiment_journey_arms (slug text, journey_id text, is_multiple_exposure boolean)")
        for slug, key, metric, currency, n, booked, total, squares in metrics:
            conn.execute(f"insert into {s}.experiment_variant_metrics values (:s, :v, :m, :c, :n, :b, :t, :q, "
                         "cast('2026-03-05' as date))",
                         {"s": slug, "v": key, "m": metric, "c": currency, "n": n, "b": booked, "t": total, "q": squares})
        for slug, key in sorted({(m[0], m[1]) for m in metrics}):
            conn.execute(f"insert into {s}.experiment_variant_journeys values (:s, :v, :c)",
                         {"s": slug, "v": key, "c": controls.get(slug) == key})
        for slug, days in (daily or {}).items():
            for day, n in days.items():
                conn.execute(f"insert into {s}.experiment_daily_assignments values (:s, cast(:d as date), :n, :n)",
                             {"s": slug, "d": day, "n": n})
        for slug, n in multiple.items():
            for i in range(n):
                conn.execute(f"insert into {st}.int_experiment_journey_arms values (:s, :j, true)",
                             {"s": slug, "j": f"m{i}"})


def write_inputs(warehouse: Warehouse, arms: dict[str, dict[str, tuple[int, int]]], controls: dict[str, str],
                 multiple: dict[str, int]) -> None:
    """arms: slug -> variant -> (journeys, conversions); only the conversion metric (enough here)."""
    metrics = [(slug, key, "conversion", None, n, c, c, c) for slug, variants in arms.items()
               for key, (n, c) in variants.items()]
    write_tables(warehouse, metrics, controls, multiple)


SRM_ARMS = {
    # 10000 vs 9000 journeys at equal weights: chi-square 52.6, p ~ 4e-13.
    "spring-offer": {"a": (10000, 500), "b": (9000, 630)},
    "neutral": {"a": (10000, 520), "b": (10100, 580)},
}
BALANCED_ARMS = {"spring-offer": {"a": (10000, 500), "b": (10050, 700)}, "neutral": SRM_ARMS["neutral"]}
CONTROLS = {"spring-offer": "a", "neutral": "a"}


def _materialize(warehouse: Warehouse, settings: ExperimentSettings = SETTINGS) -> dg.ExecuteInProcessResult:
    result = dg.materialize([build_experiment_assets(settings)], resources={"warehouse": warehouse, "warehouse_writer": writer_lock_of(warehouse)},
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


# --- section 9.1: known sums in, every new column out of the warehouse table --------------------

NEW_COLUMNS = ("chance_to_win", "credible_low", "credible_high", "risk_challenger", "risk_control",
               "adjusted_p_value", "power", "journeys_needed", "days_needed")
CONVERSION_REF = [(10000, 520), (10100, 580)]  # section 9.1's proportion reference
E2E_METRICS = [
    *[("spring", key, "conversion", None, n, c, c, c) for key, (n, c) in zip("ab", CONVERSION_REF)],
    # Section 9.1's ratio reference: journeys, booked, revenue, sum of revenue squared.
    ("spring", "a", "revenue", "USD", 1000, 52, "5200.00", "560000.0000"),
    ("spring", "b", "revenue", "USD", 1020, 60, "5700.00", "590000.0000"),
    *[("quiet", key, "conversion", None, n, c, c, c) for key, (n, c) in zip("ab", CONVERSION_REF)],
    ("big", "a", "conversion", None, 100000, 5000, 5000, 5000),
    ("big", "b", "conversion", None, 100000, 5600, 5600, 5600),
    ("tiny", "a", "conversion", None, 50, 5, 5, 5),
    ("tiny", "b", "conversion", None, 50, 6, 6, 6),
]
# The as-of date is 2026-03-05: the rate is the mean over 02-26 .. 03-04 (a date without a row counts
# 0); 02-25 and the as-of date itself are left out whatever they hold.
SPRING_DAYS = {"2026-02-25": 9999, "2026-02-26": 1500, "2026-02-28": 1000, "2026-03-01": 1000, "2026-03-02": 1000,
               "2026-03-03": 1000, "2026-03-04": 1500, "2026-03-05": 99999}  # 7,000 in the window: 1,000 a day
E2E_DAILY = {"spring": SPRING_DAYS, "big": dict.fromkeys(list(SPRING_DAYS)[1:7], 1000),
             "quiet": {"2026-02-25": 5000, "2026-03-05": 5000}}
# Expected values from the formulas of section 9.1 worked with scipy.stats outside this code, at
# EXPERIMENT_TARGET_MDE 0.10 and Holm across spring's three comparisons (p 0.107632, 0.717734, 0.334688).
EXPECTED_NEW = {
    ("spring", "conversion"): {
        "chance_to_win": 0.946192, "credible_low": -0.022759, "credible_high": 0.231442, "risk_challenger": 0.001476,
        "risk_control": 0.105817, "adjusted_p_value": 3 * 0.107632, "power": 0.338238, "journeys_needed": 46245,
        "days_needed": 47},  # 46,245 at 1,000 a day (the pair is all 20,100 journeys of the slug)
    ("spring", "revenue"): {
        "chance_to_win": 0.641152, "credible_low": -0.330086, "credible_high": 0.479408, "risk_challenger": 0.050381,
        "risk_control": 0.125041, "adjusted_p_value": 0.717734, "power": 0.077268, "journeys_needed": 65594,
        "days_needed": 653},  # the pair holds 2,020 of 20,100 journeys: 100.5 a day
    ("spring", "average_order_value"): {
        "chance_to_win": 0.167286, "credible_low": -0.151558, "credible_high": 0.051558, "risk_challenger": 0.054613,
        "risk_control": 0.004613, "adjusted_p_value": 2 * 0.334688, "power": 0.488054, "journeys_needed": 2237,
        "days_needed": 23},
}


def _exercise_new_columns(warehouse: Warehouse) -> None:
    write_tables(warehouse, E2E_METRICS, {slug: "a" for slug in ("spring", "quiet", "big", "tiny")}, {}, E2E_DAILY)
    result = _materialize(warehouse, ExperimentSettings(target_mde=0.10))
    with warehouse.connect(read_only=True) as conn:
        rows = {(r["slug"], r["metric"]): r for r in conn.fetch_dicts(f"select * from {warehouse.schema}.experiment_results")}
    assert set(rows) == {("spring", "conversion"), ("spring", "revenue"), ("spring", "average_order_value"),
                         ("quiet", "conversion"), ("big", "conversion"), ("tiny", "conversion")}
    for key, expected in EXPECTED_NEW.items():
        got = {name: rows[key][name] for name in NEW_COLUMNS}
        assert got == {name: pytest.approx(value, abs=2e-6) for name, value in expected.items()}, key
        assert all(isinstance(got[n], int) for n in ("journeys_needed", "days_needed"))
    aov = rows[("spring", "average_order_value")]
    assert (aov["currency"], aov["journeys"], aov["control_journeys"], aov["mean"], aov["control_mean"]) == (
        "USD", 1020, 1000, 95.0, 100.0)
    assert aov["relative_lift"] == pytest.approx(-0.05, abs=1e-6) and aov["p_value"] == pytest.approx(0.334688, abs=1e-6)
    quiet = rows[("quiet", "conversion")]  # no journeys in the window: needed, but no date to give
    assert (quiet["journeys_needed"], quiet["days_needed"]) == (46245, None)
    big = rows[("big", "conversion")]  # already powered for a 10% lift: nothing more needed
    assert (big["journeys_needed"], big["days_needed"]) == (0, 0) and big["power"] == pytest.approx(0.997067, abs=1e-6)
    tiny = rows[("tiny", "conversion")]
    assert tiny["decision"] == "not_enough_data" and all(tiny[name] is None for name in NEW_COLUMNS)
    # The metadata's markdown table reads the same columns.
    metadata = {m.asset_key: m.metadata for m in result.asset_materializations_for_node("experiment_statistics")}
    table = metadata[dg.AssetKey("experiment_results")]["decisions"].value
    assert "| spring | ok | b | conversion | +10.4% | -9.8% … +30.7% | 94.6% | 0.323 | 34% | 47 | inconclusive |" in table
    # A second run with nothing new rewrites nothing: what was stored compares equal to what is computed.
    again = _materialize(warehouse, ExperimentSettings(target_mde=0.10))
    [health] = [m for m in again.asset_materializations_for_node("experiment_statistics") if m.asset_key == HEALTH_KEY]
    assert health.metadata["rewritten_slugs"].value == 0


def test_new_columns_on_duckdb(tmp_path):
    _exercise_new_columns(Warehouse(url=f"duckdb:///{tmp_path / 'w.duckdb'}", schema_name="analytics"))


@pytest.mark.postgres
def test_new_columns_on_postgres(make_pg_database):
    _exercise_new_columns(Warehouse(url=make_pg_database(), schema_name="analytics"))


def test_a_table_from_before_section_9_1_gets_the_new_columns(tmp_path):
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'w.duckdb'}", schema_name="analytics")
    old_columns = ("slug text, variant_key text, metric text, currency text, control_variant_key text, "
                   "control_journeys bigint, control_mean double, journeys bigint, mean double, relative_lift double, "
                   "ci_low double, ci_high double, p_value double, sequential_ci_low double, sequential_ci_high double, "
                   "sequential_p_value double, decision text, as_of_date date")
    write_inputs(warehouse, {"neutral": SRM_ARMS["neutral"]}, CONTROLS, {})
    with warehouse.connect() as conn:
        conn.execute(f"create table analytics.experiment_results ({old_columns})")
        conn.execute("insert into analytics.experiment_results (slug, variant_key, metric, control_variant_key, "
                     "control_journeys, journeys, decision, as_of_date) values ('neutral', 'b', 'conversion', 'a', "
                     "1, 1, 'inconclusive', cast('2026-03-04' as date))")
    _materialize(warehouse)
    with warehouse.connect(read_only=True) as conn:
        [row] = conn.fetch_dicts("select * from analytics.experiment_results")
    assert row["chance_to_win"] == pytest.approx(0.946192, abs=1e-6) and row["journeys_needed"] > 0


def test_both_tables_describe_every_column_in_the_asset_catalog():
    from models.experiment_results import HEALTH_COLUMNS, RESULT_COLUMNS

    specs = {spec.key: spec for spec in build_experiment_assets(SETTINGS).specs}
    for key, columns in ((HEALTH_KEY, HEALTH_COLUMNS), (dg.AssetKey("experiment_results"), RESULT_COLUMNS)):
        schema = specs[key].metadata["dagster/column_schema"]
        assert [c.name for c in schema.columns] == list(columns)
        assert all(c.description and c.type for c in schema.columns)
    results = {c.name: c for c in specs[dg.AssetKey("experiment_results")].metadata["dagster/column_schema"].columns}
    assert (results["days_needed"].type, results["chance_to_win"].type) == ("bigint", "double precision")
