"""The pipeline on the embedded default: the same Definitions `dagster dev` loads, materialized in
process on a temporary DuckDB warehouse from a hand-written demo-shaped source."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import duckdb
import pipeline_dataset as ds
import pytest
from handmade_source import add_duckdb_rows, write_duckdb_source

from models.marts import MART_TABLES

MARTS = list(MART_TABLES)
# Keys that order each mart's rows so two builds compare row by row.
MART_ORDER = {
    "onboarding_pricing_experiment_segments": "event_id, slug",
    "experiment_variant_journeys": "slug, variant_key",
    "experiment_slug_summary": "slug",
    "experiment_daily_assignments": "slug, activity_date",
    "experiment_conversion_snapshot": "slug, order_currency",
    "experiment_conversion_snapshot_history": "snapshot_date, slug, order_currency",
    "provider_guardrail_status": "provider_id",
    "experiment_variant_metrics": "slug, variant_key, metric, currency",
}


def build_and_refresh(settings, as_of: str = ds.AS_OF) -> dg.ExecuteInProcessResult:
    return refresh_with_logs(settings, as_of)[0]


def refresh_with_logs(settings, as_of: str = ds.AS_OF) -> tuple[dg.ExecuteInProcessResult, list[str]]:
    """The refresh job's result and the messages its steps logged."""
    from orchestration.definitions import build_definitions

    defs = build_definitions(settings)
    job = defs.resolve_job_def("refresh")
    with data_folder_instance(settings) as instance:
        result = job.execute_in_process(
            instance=instance,
            run_config={"ops": {"pricing_dbt_models": {"config": {"as_of_date": as_of}}}},
        )
        logs = [e.user_message for e in instance.all_logs(result.run_id)]
    assert result.success
    return result, logs


def data_folder_instance(settings):
    """The Dagster instance of the data folder, as `pricing-ops` and `dg dev` share one: a skipped
    build carries the dbt tests' last results from it (a new instance has none, so dbt runs)."""
    home = settings.data_dir / "dagster_home"
    home.mkdir(parents=True, exist_ok=True)
    return dg.instance_for_test(temp_dir=str(home))


def dbt_started(logs: list[str]) -> bool:
    """Whether the run started dbt (its step logs `dbt build on ...` first), from the run's logs."""
    started = any(m.startswith("dbt build on") for m in logs)
    skipped = any(m.startswith("marts up to date: nothing new since") for m in logs)
    assert started != skipped
    return started


def mart_rows(warehouse_path: Path, mart: str, drop: tuple[str, ...] = ()) -> list[dict]:
    with duckdb.connect(str(warehouse_path), read_only=True) as conn:
        cur = conn.execute(f"select * from analytics.{mart} order by {MART_ORDER[mart]}")
        names = [d[0] for d in cur.description]
        return [{k: v for k, v in zip(names, row) if k not in drop} for row in cur.fetchall()]


@pytest.fixture
def embedded(make_settings, tmp_path, dbt_manifest):
    settings = make_settings()
    write_duckdb_source(settings.demo_source_path, ds.SOURCE)
    return settings


def test_definitions_load_as_one_connected_graph(make_settings, dbt_manifest):
    from orchestration.definitions import build_definitions

    defs = build_definitions(make_settings())
    graph = defs.resolve_asset_graph()
    keys = {key.to_user_string() for key in graph.get_all_asset_keys()}
    for table in ("onboarding_journey_events", "orders", "onboarding_journeys", "provider_guardrail_telemetry",
                  "fulfillment_providers"):
        assert f"raw/{table}" in keys
    for mart in MARTS:
        assert mart in keys
    # Every dbt source resolves to an extract asset: no dangling upstream keys outside the graph.
    materializable = {k for k in graph.get_all_asset_keys() if graph.get(k).is_materializable}
    for key in materializable:
        for parent in graph.get(key).parent_keys:
            assert parent in materializable, f"{key.to_user_string()} depends on unknown {parent.to_user_string()}"
    # Every asset sits in a named group and every asset check targets a real, materializable asset.
    assert {graph.get(k).group_name for k in graph.get_all_asset_keys()} <= {
        "extract", "staging", "marts", "guardrails", "export", "digests", "bi"}
    for check_key in graph.asset_check_keys:
        assert check_key.asset_key in materializable, check_key
    # The marts descend from the extracted events.
    ancestors = graph.upstream_key_iterator(dg.AssetKey("experiment_conversion_snapshot"))
    assert dg.AssetKey(["raw", "onboarding_journey_events"]) in set(ancestors)
    assert defs.resolve_job_def("refresh") is not None


def assert_marts_exact(wh: Path) -> None:
    """Every mart equals the answer worked out by hand in pipeline_dataset.py."""

    variants = {(r["slug"], r["variant_key"]): (r["variant_name"], r["is_control"], r["journey_count"],
                r["active_journeys"], r["stalled_journeys"], r["completed_journeys"])
                for r in mart_rows(wh, "experiment_variant_journeys")}
    assert variants == ds.VARIANT_JOURNEYS

    summary = {r["slug"]: (r["journey_count"], r["variant_count"], r["exposure_count"], r["first_exposure_at"],
               r["last_exposure_at"]) for r in mart_rows(wh, "experiment_slug_summary")}
    assert summary == ds.SLUG_SUMMARY

    daily = {(r["slug"], r["activity_date"].isoformat()): (r["exposure_count"], r["journey_count"])
             for r in mart_rows(wh, "experiment_daily_assignments")}
    assert daily == ds.DAILY

    conversion = {(r["slug"], r["order_currency"]): (r["order_total"], r["order_count"], r["journey_count"],
                  r["loyalty_points"], r["last_activity"]) for r in mart_rows(wh, "experiment_conversion_snapshot")}
    assert conversion == ds.CONVERSION
    assert all(isinstance(v[0], ds.D) for v in conversion.values())  # exact decimal, never float

    history = mart_rows(wh, "experiment_conversion_snapshot_history")
    assert {r["snapshot_date"].isoformat() for r in history} == {ds.AS_OF}
    assert {(r["slug"], r["order_currency"]): r["order_total"] for r in history} == {
        k: v[0] for k, v in ds.CONVERSION.items()
    }

    status = {r["provider_id"]: (r["provider_name"], r["guardrail_failures"], r["replay_failures"], r["severity"])
              for r in mart_rows(wh, "provider_guardrail_status")}
    assert status == ds.GUARDRAIL_STATUS

    segments = mart_rows(wh, "onboarding_pricing_experiment_segments")
    assert len(segments) == 12  # 11 spring-offer exposures + 1 winter
    e2 = next(r for r in segments if r["event_id"] == 2)
    assert (e2["journey_id"], e2["order_id"], e2["order_number"], e2["variant_key"], e2["variant_name"],
            e2["is_control"], e2["surface"], e2["journey_status"], e2["order_status"], str(e2["order_total"]),
            e2["order_currency"], e2["loyalty_projection_points"]) == (
        "j1", "o1", "N-o1", "b", "Spring 15% off", False, "checkout", "active", "paid", "100.00", "USD", 10)

    with duckdb.connect(str(wh), read_only=True) as conn:
        rejects = set(conn.execute(
            "select event_id, entry_index, reason from analytics_staging.pricing_experiment_payload_rejects"
        ).fetchall())
    assert rejects == ds.REJECTS


def test_marts_exact_then_rerun_changes_nothing_then_incremental_equals_full_rebuild(
    embedded, make_settings, tmp_path
):
    # One test, four refreshes (each a dbt build): the suite stays short.
    wh = embedded.data_dir / "warehouse.duckdb"
    result = build_and_refresh(embedded)
    assert_marts_exact(wh)
    # What a data engineer reads in the UI: row counts and a preview on each mart's materialization.
    snapshot = next(m for m in result.asset_materializations_for_node("pricing_dbt_models")
                    if m.asset_key == dg.AssetKey("experiment_conversion_snapshot"))
    assert snapshot.metadata["dagster/row_count"].value == len(ds.CONVERSION)
    assert "| spring-offer | USD | 150.50 |" in snapshot.metadata["preview"].value
    extract = {m.asset_key.path[-1]: m.metadata for m in result.asset_materializations_for_node("extract_source")}
    assert extract["onboarding_journey_events"]["rows_inserted"].value == len(ds.SOURCE["onboarding_journey_events"])
    # The experiment statistics are built by the same refresh, from the metrics mart (contract section 9).
    stats = {m.asset_key.path[-1] for m in result.asset_materializations_for_node("experiment_statistics")}
    assert stats == {"experiment_health", "experiment_results"}
    with duckdb.connect(str(wh), read_only=True) as conn:
        health = dict(conn.execute("select slug, status from analytics.experiment_health").fetchall())
    # A handful of journeys: spring-offer has its control (a) but too few journeys for the SRM test;
    # winter's only exposures say nothing about a control.
    assert health == {"spring-offer": "not_enough_data", "winter": "no_control"}
    first = {m: mart_rows(wh, m) for m in MARTS}

    # Nothing new in the source: no dbt process, the marts as they were, the marts still
    # materialized by the run (their freshness holds: they are current) with the reason.
    again, logs = refresh_with_logs(embedded)
    assert not dbt_started(logs)
    assert {m: mart_rows(wh, m) for m in MARTS} == first
    skipped = {m.asset_key.path[-1]: m.metadata for m in again.asset_materializations_for_node("pricing_dbt_models")}
    assert set(MARTS) <= set(skipped)
    assert skipped["experiment_conversion_snapshot"]["dbt"].value.startswith("skipped: nothing new since")
    assert skipped["experiment_conversion_snapshot"]["dagster/row_count"].value == len(ds.CONVERSION)
    stats = {m.asset_key.path[-1] for m in again.asset_materializations_for_node("experiment_statistics")}
    assert stats == {"experiment_health", "experiment_results"}  # downstream still runs
    # What the UI reads of that run is what it read before: every data version as the build left it
    # (nothing downstream turns stale), every check planned has a result (none Skipped): the dbt
    # tests' carried from the build that ran them, the others evaluated again.
    def versions(run):
        return {e.asset_key: e.materialization.tags["dagster/data_version"] for e in run.get_asset_materialization_events()}

    assert versions(again) == versions(result)
    planned = set(again.job_def.asset_layer.asset_graph.asset_check_keys)
    evaluations = {e.asset_check_key: e for e in again.get_asset_check_evaluations()}
    assert set(evaluations) == planned and len(planned) > 20
    from orchestration.definitions import build_definitions

    [dbt] = [a for a in build_definitions(embedded).assets
             if isinstance(a, dg.AssetsDefinition) and a.node_def.name == "pricing_dbt_models"]
    carried = {k for k, e in evaluations.items() if "carried_from_run" in e.metadata}
    assert carried == set(dbt.check_keys) & planned
    assert {evaluations[k].metadata["carried_from_run"].value for k in carried} == {result.run_id}
    first_results = {e.asset_check_key: e.passed for e in result.get_asset_check_evaluations()}
    assert {k: evaluations[k].passed for k in carried} == {k: first_results[k] for k in carried}
    # The guardrail run right after reads telemetry the refresh's build already read: its models
    # are up to date (recorded per model), so it leaves dbt alone too.
    guardrail = build_definitions(embedded).resolve_job_def("guardrail_evaluation")
    with data_folder_instance(embedded) as instance:
        run = guardrail.execute_in_process(
            instance=instance, run_config={"ops": {"pricing_dbt_models": {"config": {"as_of_date": ds.AS_OF}}}}
        )
        assert run.success and not dbt_started([e.user_message for e in instance.all_logs(run.run_id)])
    # One mart a person materializes from the UI (the implicit asset job, untagged) still runs dbt.
    adhoc = build_definitions(embedded).resolve_implicit_global_asset_job_def()
    with data_folder_instance(embedded) as instance:
        one = adhoc.execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey("experiment_slug_summary")],
            run_config={"ops": {"pricing_dbt_models": {"config": {"as_of_date": ds.AS_OF}}}},
        )
        assert one.success and dbt_started([e.user_message for e in instance.all_logs(one.run_id)])
    assert {m: mart_rows(wh, m) for m in MARTS} == first

    add_duckdb_rows(embedded.demo_source_path, ds.CHANGES)
    _, logs = refresh_with_logs(embedded)  # new rows: dbt runs
    assert dbt_started(logs)
    incremental = {m: mart_rows(wh, m, drop=("loaded_at",)) for m in MARTS}
    assert {m: mart_rows(wh, m) for m in MARTS} != first

    # Full rebuild: a fresh warehouse from the same (changed) source.
    fresh = make_settings(DATA_DIR=tmp_path / "fresh")
    fresh.data_dir.mkdir(parents=True)
    fresh.demo_source_path.write_bytes(embedded.demo_source_path.read_bytes())
    build_and_refresh(fresh)
    rebuilt = {m: mart_rows(fresh.data_dir / "warehouse.duckdb", m, drop=("loaded_at",)) for m in MARTS}
    assert incremental == rebuilt
    # Another as-of date is another build, even with nothing new.
    _, logs = refresh_with_logs(fresh, as_of="2030-01-01")
    assert dbt_started(logs)

    # And the changes landed: o3 is now booked, j3 moved to b, j5 completed, p1's latest window is ok.
    conversion = {(r["slug"], r["order_currency"]): (r["order_total"], r["order_count"])
                  for r in incremental["experiment_conversion_snapshot"]}
    assert conversion[("spring-offer", "USD")] == (ds.D("220.50"), 3)  # 150.50 + 70.00
    variants = {(r["slug"], r["variant_key"]): (r["journey_count"], r["completed_journeys"])
                for r in incremental["experiment_variant_journeys"]}
    assert variants[("spring-offer", "a")] == (1, 1)  # j6 only
    assert variants[("spring-offer", "b")] == (5, 2)  # j1 j2 j3 j4 j5; j3 and now j5 completed
    status = {r["provider_id"]: r["severity"] for r in incremental["provider_guardrail_status"]}
    assert status == {"p1": "ok", "p2": "warning"}
