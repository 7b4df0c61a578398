"""The metadata a mart's page shows after a build: its row count and a preview of its first rows
(read after dbt released the warehouse file)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from models.markdown import markdown_table
from resources.warehouse import Warehouse

PREVIEW_ROWS = 10


def preview_metadata(warehouse: Warehouse, relations: Mapping[dg.AssetKey, str]) -> dict[dg.AssetKey, dict]:
    """Row count and a markdown preview of each built relation (read after dbt released the file)."""
    out: dict[dg.AssetKey, dict] = {}
    with warehouse.connect(read_only=True) as conn:
        for key, relation in relations.items():
            count = conn.fetchone(f"select count(*) from {relation}")[0]
            rows = conn.fetch_dicts(f"select * from {relation} limit {PREVIEW_ROWS}")
            out[key] = {
                "dagster/row_count": dg.MetadataValue.int(int(count)),
                "preview": dg.MetadataValue.md(markdown_table(rows)),
            }
    return out


def relations_of(
    context: dg.AssetExecutionContext, events: list, warehouse: Warehouse, nodes: Mapping[str, Any]
) -> dict[dg.AssetKey, str]:
    """`schema.table` of every mart this invocation materialized (the previews BI users look at;
    staging and intermediate tables are large and nobody reads them row by row)."""
    relations: dict[dg.AssetKey, str] = {}
    for event in events:
        if not isinstance(event, dg.Output):
            continue
        unique_id = getattr(event.metadata.get("unique_id"), "value", event.metadata.get("unique_id"))
        relation = mart_relation(nodes.get(str(unique_id), {}), warehouse)
        if relation:
            relations[context.asset_key_for_output(event.output_name)] = relation
    return relations


def mart_relation(node: Mapping[str, Any], warehouse: Warehouse) -> str | None:
    if "marts" in node.get("fqn", []) and node.get("config", {}).get("materialized") in ("table", "incremental", "incremental_by_key"):
        # The schema as this run's warehouse names it (the manifest's was fixed at parse time).
        schema = warehouse.staging_schema if node["config"].get("schema") == "staging" else warehouse.schema
        return f"{schema}.{node.get('alias') or node['name']}"
    return None
