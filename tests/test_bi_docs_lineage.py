"""Docs and lineage for BI (contract section 11): every column of every mart and experiment table is
described (once, in the dbt doc blocks), dbt docs list the experiment tables as sources and the
dashboard as an exposure, the Dagster assets carry those columns, and the dashboard asset sits
downstream of exactly the marts its charts read."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest
import yaml
from bi_support import ROOT, cli_env, run_cli

from models.experiment_results import HEALTH_COLUMNS, RESULT_COLUMNS
from models.marts import BI_TABLES, EXPERIMENT_RESULT_TABLES, MART_TABLES
from resources.experiment_tables import column_type

DASHBOARD = dg.AssetKey(["superset", "pricing_experiments"])
BUNDLE = ROOT / "bi" / "superset" / "dashboard"


@pytest.fixture(scope="module")
def manifest(dbt_manifest: Path) -> dict:
    return json.loads(dbt_manifest.read_text())


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    from orchestration.definitions import build_definitions
    from orchestration.settings import Settings

    settings = Settings(_env_file=None, DATA_DIR=tmp_path_factory.mktemp("bi-lineage") / "data")
    return build_definitions(settings).resolve_asset_graph()


def _node(manifest: dict, table: str) -> dict:
    if table in EXPERIMENT_RESULT_TABLES:
        return manifest["sources"][f"source.pricing_ops.experiments.{table}"]
    return manifest["nodes"][f"model.pricing_ops.{table}"]


def test_every_column_of_every_mart_and_experiment_table_is_described(manifest):
    undescribed = [f"{table}.{name}" for table in BI_TABLES
                   for name, column in _node(manifest, table)["columns"].items()
                   if len(column.get("description", "").strip()) < 10]
    assert undescribed == []
    for table in MART_TABLES:  # contracts enforced: the yml's columns are the table's columns
        assert _node(manifest, table)["config"]["contract"]["enforced"], table
    # The experiment tables are written by Python: their sources list exactly the columns it writes.
    assert tuple(_node(manifest, "experiment_health")["columns"]) == HEALTH_COLUMNS
    assert tuple(_node(manifest, "experiment_results")["columns"]) == RESULT_COLUMNS
    for table in EXPERIMENT_RESULT_TABLES:  # and with the types it creates them with
        for name, column in _node(manifest, table)["columns"].items():
            assert column["data_type"] == column_type(name), f"{table}.{name}"


def test_descriptions_have_one_home_the_doc_blocks(manifest):
    """A description is written once (dbt_project/models/marts/_columns.md), never copied into a yml."""
    for table in BI_TABLES:
        for name, column in _node(manifest, table)["columns"].items():
            assert column["doc_blocks"], f"{table}.{name} has its own text instead of a doc block"
    # Same column, same meaning, same words across tables (a mart and the table written by Python).
    slug = {_node(manifest, t)["columns"]["slug"]["description"] for t in BI_TABLES if "slug" in _node(manifest, t)["columns"]}
    assert len(slug) == 1


def test_the_dagster_assets_carry_the_described_columns(manifest, graph):
    for table in BI_TABLES:
        schema = graph.get(dg.AssetKey(table)).metadata["dagster/column_schema"]
        columns = {c.name: c for c in schema.columns}
        described = _node(manifest, table)["columns"]
        assert list(columns) == list(described), table
        for name, column in columns.items():
            assert column.description == described[name]["description"], f"{table}.{name}"
            assert column.type == described[name]["data_type"], f"{table}.{name}"


def _bundle_tables() -> set[str]:
    datasets = {yaml.safe_load(p.read_text())["uuid"]: yaml.safe_load(p.read_text())["table_name"]
                for p in (BUNDLE / "datasets").rglob("*.yaml")}
    return {datasets[yaml.safe_load(p.read_text())["dataset_uuid"]] for p in (BUNDLE / "charts").glob("*.yaml")}


def test_the_dashboard_asset_is_downstream_of_the_marts_its_charts_read(manifest, graph):
    node = graph.get(DASHBOARD)
    assert node.kinds == {"superset"} and node.group_name == "bi"
    read = _bundle_tables()
    assert read == {"experiment_daily_assignments", "experiment_variant_journeys", "experiment_conversion_snapshot",
                    "experiment_results", "provider_guardrail_status"}
    # On DuckDB (the default) through the BI copy, which copies every mart and experiment table.
    assert node.parent_keys == {dg.AssetKey(t) for t in read} | {dg.AssetKey("bi_marts_copy")}
    assert graph.get(dg.AssetKey("bi_marts_copy")).parent_keys == {dg.AssetKey(t) for t in BI_TABLES}
    # The exposure dbt docs show names the same tables.
    exposure = manifest["exposures"]["exposure.pricing_ops.pricing_experiments"]
    assert {uid.rsplit(".", 1)[1] for uid in exposure["depends_on"]["nodes"]} == read
    # The refresh job publishes the copy after the tables it copies.
    assert dg.AssetKey("bi_marts_copy") in graph.get(dg.AssetKey("experiment_results")).child_keys


def test_pricing_ops_docs_writes_the_static_site(tmp_path):
    done = run_cli(["docs"], cli_env(tmp_path / "data"), timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    page = tmp_path / "data" / "docs" / "static_index.html"
    assert f"docs: {page}" in done.stderr
    html = page.read_text()
    # The site embeds the manifest: the experiment sources, their column docs and the exposure.
    for text in ("source.pricing_ops.experiments.experiment_results", "exposure.pricing_ops.pricing_experiments",
                 "Relative lift L = (m_B - m_A) / m_A", "greatest `recorded_at`, then greatest event id"):
        assert text in html, text
