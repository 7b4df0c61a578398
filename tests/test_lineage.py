"""The asset graph a newcomer opens in the UI is one piece: source -> raw -> staging -> marts ->
guardrail actions / export / digests, every asset reachable from a raw source asset; readiness
judges those assets as checks on them."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from dagster_dbt import get_asset_key_for_model

from models.marts import PROVIDER_GUARDRAIL_STATUS, SEGMENTS_MART

# Sources that are not extracted: the dbt seed of intended traffic splits, edited by merchandising
# in the repository (contract section 9). Nothing else may join it.
SEED_SOURCES = {dg.AssetKey(["staging", "experiment_allocations"])}


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    from orchestration.definitions import build_definitions
    from orchestration.settings import Settings

    settings = Settings(_env_file=None, DATA_DIR=tmp_path_factory.mktemp("lineage") / "data")
    defs = build_definitions(settings)
    return defs, defs.resolve_asset_graph()


def _dbt_assets(defs: dg.Definitions) -> dg.AssetsDefinition:
    [dbt] = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.op.name == "pricing_dbt_models"]
    return dbt


def test_the_export_reads_the_segments_mart_and_guardrails_the_status_mart(graph):
    defs, asset_graph = graph
    dbt = _dbt_assets(defs)
    segments = get_asset_key_for_model([dbt], SEGMENTS_MART)
    status = get_asset_key_for_model([dbt], PROVIDER_GUARDRAIL_STATUS)
    assert asset_graph.get(dg.AssetKey("export_onboarding_segments")).parent_keys == {segments}
    assert asset_graph.get(dg.AssetKey("guardrail_actions")).parent_keys == {status}
    # The job, its name and its run-config path stay as the CLI and the launchpad know them; the
    # readiness check on the export is evaluated right after it.
    job = defs.resolve_job_def("onboarding_experiment_export")
    assert sorted(node.name for node in job.nodes) == ["export_onboarding_segments", "readiness_checks"]


def test_the_digests_read_the_conversion_marts_and_the_experiment_statistics(graph):
    from models.marts import CONVERSION_SNAPSHOT, CONVERSION_SNAPSHOT_HISTORY, DAILY_ASSIGNMENTS

    defs, asset_graph = graph
    dbt = _dbt_assets(defs)
    marts = {get_asset_key_for_model([dbt], m) for m in (CONVERSION_SNAPSHOT, CONVERSION_SNAPSHOT_HISTORY, DAILY_ASSIGNMENTS)}
    statistics = {dg.AssetKey("experiment_health"), dg.AssetKey("experiment_results")}
    for key, job_name, op_name in (
        ("automation_slack_digest", "automation_slack_digest", "send_automation_slack_digest"),
        ("weekly_digest_email", "weekly_digest_email", "send_weekly_digest_email"),
    ):
        parents = asset_graph.get(dg.AssetKey(key)).parent_keys
        assert marts | statistics <= parents, key
        # The automatic pauses and resumes the digest lists come from the guardrail actions.
        assert dg.AssetKey("guardrail_actions") in parents
        # Job name, run-config path and the warehouse-writer tag as before.
        job = defs.resolve_job_def(job_name)
        # With the readiness check on the digest (the email's weekly_digest), evaluated after it.
        assert {node.name for node in job.nodes} - {"readiness_checks"} == {op_name}
        assert job.tags["dagster/concurrency_key"] == "warehouse_writer"


def test_every_asset_is_reachable_from_a_raw_source_asset(graph):
    _, asset_graph = graph
    keys = asset_graph.get_all_asset_keys()
    raw = {k for k in keys if k.path[0] == "raw"}
    assert len(raw) == 5 and all(not asset_graph.get(k).parent_keys for k in raw)

    def ancestors(key: dg.AssetKey) -> set[dg.AssetKey]:
        seen: set[dg.AssetKey] = set()
        todo = [key]
        while todo:
            for parent in asset_graph.get(todo.pop()).parent_keys:
                if parent not in seen:
                    seen.add(parent)
                    todo.append(parent)
        return seen

    cut_off = sorted(
        k.to_user_string() for k in keys - raw - SEED_SOURCES if not ancestors(k) & raw
    )
    assert all(not asset_graph.get(k).parent_keys for k in SEED_SOURCES)
    assert cut_off == []


def test_marts_read_as_prose_keep_the_adapter_kind_and_carry_a_freshness_policy(graph):
    from models.marts import MART_TABLES

    _, asset_graph = graph
    for name in MART_TABLES:
        node = asset_graph.get(dg.AssetKey(name))
        assert node.kinds == {"dbt", "duckdb", "sql"}, name  # the default warehouse is DuckDB
        assert node.description and "Raw SQL" not in node.description and "select" not in node.description.lower()
        assert node.freshness_policy is not None, name


def test_raw_assets_carry_their_table_name_and_column_schema(graph):
    from models.source_tables import ORDERS, SOURCE_TABLES, raw_columns

    _, asset_graph = graph
    for table in SOURCE_TABLES:
        metadata = asset_graph.get(dg.AssetKey(["raw", table.name])).metadata
        assert metadata["dagster/table_name"] == f"analytics_raw.{table.name}"
        columns = metadata["dagster/column_schema"].columns
        assert [c.name for c in columns] == [c.name for c in raw_columns(table)]
    orders = {c.name: c for c in asset_graph.get(dg.AssetKey(["raw", ORDERS.name])).metadata["dagster/column_schema"].columns}
    assert (orders["total"].type, orders["total"].constraints.nullable) == ("decimal(12,2)", False)
    assert orders["provider_id"].constraints.nullable is True


def test_loading_the_definitions_warns_of_nothing_superseded_or_deprecated_in_our_code(tmp_path):
    # A fresh interpreter: import-time warnings fire once per process, the module fixture's came first.
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    script = (
        "import warnings, json, sys\n"
        "warnings.simplefilter('always')\n"
        "with warnings.catch_warnings(record=True) as caught:\n"
        "    warnings.simplefilter('always')\n"
        "    import orchestration.definitions\n"
        "print(json.dumps([[w.category.__name__, w.filename, str(w.message)] for w in caught]))\n"
    )
    env = {**os.environ, "DATA_DIR": str(tmp_path / "data")}
    out = subprocess.run([sys.executable, "-c", script], cwd=root, env=env, capture_output=True, text=True,
                         timeout=300, check=True)
    import json

    venv = str(root / ".venv")
    ours = [
        (category, filename, message)
        for category, filename, message in json.loads(out.stdout.strip().splitlines()[-1])
        if filename.startswith(str(root)) and not filename.startswith(venv)
        and (category.endswith("DeprecationWarning") or category == "SupersessionWarning")
    ]
    assert ours == []


def test_readiness_checks_sit_on_the_assets_they_judge(graph):
    _, asset_graph = graph
    judged = {(k.name, k.asset_key.to_user_string()) for k in asset_graph.asset_check_keys}
    for pair in [("weekly_digest", "weekly_digest_email"), ("export", "export_onboarding_segments"),
                 ("guardrails", "guardrail_actions"), ("experiments", "experiment_health"),
                 ("marts_freshness", "experiment_conversion_snapshot"), ("source", "raw/orders")]:
        assert pair in judged
    assert "readiness_report" not in {k.to_user_string() for k in asset_graph.get_all_asset_keys()}



def test_an_asset_materialized_alone_gets_only_its_own_readiness_checks(graph):
    # As from the UI's Materialize button: the checks on that asset come along, the others do not.
    defs, _ = graph
    job = defs.resolve_implicit_global_asset_job_def().get_subset(asset_selection={dg.AssetKey("guardrail_actions")})
    assert sorted(node.name for node in job.nodes) == ["guardrail_actions", "readiness_checks"]


def test_each_adapter_reads_its_own_parse(tmp_path):
    """A PostgreSQL process parsing first must not give a DuckDB process's assets the postgres kind."""
    from assets.dbt import dbt_vars
    from assets.dbt_project import prepared_project
    from orchestration.settings import Settings

    defaults = Settings(_env_file=None)
    variables = dbt_vars(defaults.GUARDRAIL_CRITICAL_GUARDRAIL_FAILURES, defaults.GUARDRAIL_CRITICAL_REPLAY_FAILURES)
    manifests = {}
    for target in ("postgres", "duckdb"):
        env = {"PRICING_OPS_DBT_TARGET": target, "PRICING_OPS_WAREHOUSE_SCHEMA": defaults.WAREHOUSE_SCHEMA}
        project = prepared_project(env, variables)
        manifests[target] = json.loads(project.manifest_path.read_text())["metadata"]["adapter_type"]
    assert manifests == {"postgres": "postgres", "duckdb": "duckdb"}
