"""BI in the asset graph (contract section 11): the dashboards downstream of the marts they read,
the read-only copy of the marts BI reads on DuckDB, and the column schemas of the tables dbt does
not build.

The dashboards are declared once, as dbt exposures (`dbt_project/models/marts/_exposures.yml`):
dbt docs list them with what they read, and here each becomes an asset (kind from
`meta.dagster.kind`, e.g. superset) whose deps are the assets of the nodes it depends on.
dagster-dbt 0.29 makes assets of models, seeds and snapshots only, not of exposures.
"""

# No `from __future__ import annotations`: Dagster reads the asset context annotation at runtime.
import warnings
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import dagster as dg

from assets.dbt_project import DBT_PROJECT_DIR
from resources.bi_copy import copy_path, publish_bi_copy
from resources.warehouse import Warehouse

BI_GROUP = "bi"
BI_COPY_KEY = dg.AssetKey("bi_marts_copy")


def dashboard_specs(
    manifest: Mapping[str, Any],
    key_of: Callable[[str], dg.AssetKey],
    extra_deps: Sequence[dg.AssetKey] = (),
) -> list[dg.AssetSpec]:
    """An asset per dbt exposure: `key_of(unique_id)` names the asset of each node it depends on
    (the dbt translator's keys, so the edges meet the dbt assets)."""
    specs = []
    for exposure in manifest.get("exposures", {}).values():
        meta = (exposure.get("config", {}).get("meta") or exposure.get("meta") or {}).get("dagster", {})
        kind = meta.get("kind", exposure.get("type", "dashboard"))
        deps = [key_of(unique_id) for unique_id in exposure["depends_on"]["nodes"]]
        metadata: dict[str, Any] = {"dbt_exposure": exposure["unique_id"]}
        if exposure.get("url"):
            metadata["url"] = dg.MetadataValue.url(exposure["url"])
        if exposure.get("original_file_path"):
            # The exposure's yml: where the dashboard is declared (code reference in the UI).
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", dg.BetaWarning)
                metadata["dagster/code_references"] = dg.CodeReferencesMetadataValue(code_references=[
                    dg.LocalFileCodeReference(file_path=str(DBT_PROJECT_DIR / exposure["original_file_path"]),
                                              label="dbt exposure")])
        specs.append(dg.AssetSpec(
            dg.AssetKey([kind, exposure["name"]]),
            deps=[*deps, *extra_deps],
            description=exposure.get("description") or exposure.get("label"),
            group_name=BI_GROUP,
            kinds={kind},
            metadata=metadata,
        ))
    return specs


def source_column_schemas(manifest: Mapping[str, Any], source_name: str) -> dict[dg.AssetKey, dg.TableSchema]:
    """The column schema (names, types, descriptions) of each table of a dbt source, keyed by the
    asset key its `meta.dagster.asset_key` names: tables written outside dbt, documented there."""
    out: dict[dg.AssetKey, dg.TableSchema] = {}
    for source in manifest.get("sources", {}).values():
        if source.get("source_name") != source_name:
            continue
        key = (source.get("meta") or source.get("config", {}).get("meta") or {}).get("dagster", {}).get("asset_key")
        out[dg.AssetKey(key or [source["name"]])] = dg.TableSchema(columns=[
            dg.TableColumn(name=name, type=column.get("data_type") or "?", description=column.get("description"))
            for name, column in source.get("columns", {}).items()
        ])
    return out


def build_bi_copy_asset(data_dir: Path, tables: Sequence[str], deps: Sequence[dg.AssetKey]) -> dg.AssetsDefinition:
    """`DATA_DIR/bi/marts.duckdb`, republished after each refresh that changed what BI reads
    (DuckDB warehouse only: on PostgreSQL BI reads the marts as bi_reader)."""
    target = copy_path(data_dir)

    @dg.asset(
        key=BI_COPY_KEY,
        deps=list(deps),
        group_name="marts",  # built by the refresh job with the marts it copies
        kinds={"duckdb"},
        description=f"Read-only copy of the marts and experiment tables for BI ({target}): Superset "
        "never opens the warehouse file, so a dashboard never blocks a refresh. Replaced atomically "
        "when their contents changed.",
        pool="warehouse_writer",
        # With a code version, Dagster versions the copy by its inputs' data versions: a refresh
        # that changes no mart leaves it, and the dashboards after it, as they were.
        code_version="bi-copy-1",
    )
    def bi_marts_copy(context: dg.AssetExecutionContext, warehouse: Warehouse) -> dg.MaterializeResult:
        result = publish_bi_copy(warehouse, target, tables, log=context.log.info)
        if not result.published:
            context.log.info(f"BI copy up to date: {target} (no mart or experiment table changed)")
        return dg.MaterializeResult(metadata={
            "path": dg.MetadataValue.path(str(target)),
            "published": dg.MetadataValue.bool(result.published),
            "rows": dg.MetadataValue.json(result.rows),
            "not_built_yet": dg.MetadataValue.json(list(result.missing)),
        })

    return bi_marts_copy
