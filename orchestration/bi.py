"""Dagster wiring of BI (contract section 11): the dashboard assets from the dbt exposures, and on a
DuckDB warehouse the BI copy of the marts that the refresh job publishes."""

from __future__ import annotations

import json

import dagster as dg
from dagster_dbt import DbtProject

from assets.bi import BI_COPY_KEY, build_bi_copy_asset, dashboard_specs
from assets.dbt import TRANSLATOR
from models.marts import BI_TABLES
from orchestration.settings import Settings
from resources.engines import engine_for_url


def definitions(settings: Settings, dbt_project: DbtProject) -> dg.Definitions:
    manifest = json.loads(dbt_project.manifest_path.read_text())

    def key_of(unique_id: str) -> dg.AssetKey:
        return TRANSLATOR.get_asset_spec(manifest, unique_id, dbt_project).key

    assets: list = []
    extra_deps: list[dg.AssetKey] = []
    if engine_for_url(settings.warehouse_url).embedded_file is not None:
        # Superset reads the copy, never the warehouse file: the copy sits between marts and dashboard.
        assets.append(build_bi_copy_asset(settings.data_dir, BI_TABLES, [dg.AssetKey(name) for name in BI_TABLES]))
        extra_deps.append(BI_COPY_KEY)
    return dg.Definitions(assets=[*assets, *dashboard_specs(manifest, key_of, extra_deps)])
