"""dbt models as Dagster assets: staging views and the marts BI reads.

The `DbtProject` is built once here. Lineage starts at the extract assets: the dbt sources carry
`meta.dagster.asset_key` = ["raw", <table>]. dbt runs against the warehouse the `Warehouse`
resource names (its environment is passed to the dbt process), with the as-of date fixed at the
start of the run (UTC) and the guardrail thresholds from the settings.
"""


import json
import os
import shutil
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import (
    DagsterDbtTranslator,
    DagsterDbtTranslatorSettings,
    DbtCliResource,
    DbtProject,
    dbt_assets,
)

from resources.warehouse import Warehouse

DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"

dbt_project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)

# The dbt installed beside this interpreter (the venv's), whether or not the venv is on PATH.
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt") if (Path(sys.executable).parent / "dbt").exists() else (
    shutil.which("dbt") or "dbt"
)


def dbt_cli_resource() -> DbtCliResource:
    return DbtCliResource(project_dir=dbt_project, dbt_executable=DBT_EXECUTABLE)


# Marts previewed in the UI (markdown table of their first rows).
PREVIEW_ROWS = 10


class PricingDbtTranslator(DagsterDbtTranslator):
    """Groups by folder (staging with intermediate and seeds, marts) and tags the kind of warehouse."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id) or manifest["sources"].get(unique_id) or {}
        fqn = node.get("fqn", [])
        # Intermediate models and seeds sit with staging: inputs of the marts, built by the same refresh.
        upstream = "staging" in fqn or "intermediate" in fqn or node.get("resource_type") == "seed"
        group = "marts" if "marts" in fqn else "staging" if upstream else spec.group_name
        return spec.replace_attributes(group_name=group, kinds={"dbt", "sql"})


TRANSLATOR = PricingDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


class DbtBuildConfig(dg.Config):
    as_of_date: str | None = None  # YYYY-MM-DD; default: the UTC date at the start of the run
    full_refresh: bool = False


def dbt_environment(warehouse: Warehouse):
    """The dbt process reads its connection from the environment (secrets never on the command line)."""
    return environment(warehouse.dbt_env())


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Environment variables set for the duration of a block, then put back as they were."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run_start_date(context: dg.AssetExecutionContext) -> date:
    """The UTC date at the start of the run (contract: the as-of date)."""
    stats = context.instance.get_run_stats(context.run.run_id)
    started = stats.start_time if stats and stats.start_time else datetime.now(UTC).timestamp()
    return datetime.fromtimestamp(started, UTC).date()


def dbt_vars(as_of: date, critical_guardrail_failures: int, critical_replay_failures: int) -> dict[str, Any]:
    return {
        "as_of_date": as_of.isoformat(),
        "guardrail_critical_guardrail_failures": critical_guardrail_failures,
        "guardrail_critical_replay_failures": critical_replay_failures,
    }


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


def markdown_table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_no rows_"
    names = list(rows[0])
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    for row in rows:
        cells = [("" if v is None else str(v)).replace("|", "\\|").replace("\n", " ") for v in row.values()]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def ensure_manifest() -> Path:
    """Parse the dbt project when its manifest is missing or older than a project file.

    The Dagster definitions read the manifest at load; `dagster dev`, the CLI and the tests all come
    through here, so none of them can run on a stale graph.
    """
    manifest = dbt_project.manifest_path
    if manifest_is_stale(DBT_PROJECT_DIR, manifest):
        dbt_cli_resource().cli(["parse", "--quiet"], target_path=dbt_project.target_path).wait()
    return manifest


# Seeds count: a seed the manifest does not know makes dbt build emit a node dagster-dbt cannot map
# (KeyError), so adding or editing experiment_allocations.csv must re-parse before the next refresh.
_PROJECT_FOLDERS = ("models", "macros", "tests", "seeds")
_PROJECT_SUFFIXES = (".sql", ".yml", ".yaml", ".csv")


def manifest_is_stale(project_dir: Path, manifest: Path) -> bool:
    """True when `manifest` is missing or older than a model, macro, test, seed or yml file, or than
    a project folder (a file added or removed changes its folder's time)."""
    if not manifest.exists():
        return True
    paths = [project_dir / "dbt_project.yml"]
    for folder in _PROJECT_FOLDERS:
        root = project_dir / folder
        if root.exists():
            paths.append(root)
            paths += [p for p in root.rglob("*") if p.is_dir() or p.suffix in _PROJECT_SUFFIXES]
    return manifest.stat().st_mtime < max(p.stat().st_mtime for p in paths if p.exists())


def build_dbt_assets(critical_guardrail_failures: int, critical_replay_failures: int) -> dg.AssetsDefinition:
    ensure_manifest()

    @dbt_assets(
        manifest=dbt_project.manifest_path,
        project=dbt_project,
        dagster_dbt_translator=TRANSLATOR,
        pool="warehouse_writer",
    )
    def pricing_dbt_models(
        context: dg.AssetExecutionContext, config: DbtBuildConfig, dbt: DbtCliResource, warehouse: Warehouse
    ):
        as_of = date.fromisoformat(config.as_of_date) if config.as_of_date else run_start_date(context)
        variables = dbt_vars(as_of, critical_guardrail_failures, critical_replay_failures)
        args = ["build", "--vars", json.dumps(variables)]
        if config.full_refresh:
            args.append("--full-refresh")
        context.log.info(f"dbt build on {warehouse.describe()} as of {as_of.isoformat()}")
        with dbt_environment(warehouse):
            events = list(dbt.cli(args, context=context).stream())
        # Enrich materializations once dbt has exited (DuckDB allows one process on the file).
        relations = _relations_of(context, events, warehouse)
        extra = preview_metadata(warehouse, relations) if relations else {}
        for event in events:
            if isinstance(event, dg.Output) and extra.get(_key_of(context, event)):
                yield event.with_metadata({**event.metadata, **extra[_key_of(context, event)]})
            else:
                yield event

    return pricing_dbt_models


def _key_of(context: dg.AssetExecutionContext, event: dg.Output) -> dg.AssetKey:
    return context.asset_key_for_output(event.output_name)


def _relations_of(context: dg.AssetExecutionContext, events: list, warehouse: Warehouse) -> dict[dg.AssetKey, str]:
    """`schema.table` of every table (or incremental) model that this invocation materialized."""
    nodes = json.loads(dbt_project.manifest_path.read_text())["nodes"]
    relations: dict[dg.AssetKey, str] = {}
    for event in events:
        if not isinstance(event, dg.Output):
            continue
        unique_id = getattr(event.metadata.get("unique_id"), "value", event.metadata.get("unique_id"))
        node = nodes.get(str(unique_id), {})
        if node.get("config", {}).get("materialized") in ("table", "incremental"):
            # The schema as this run's warehouse names it (the manifest's was fixed at parse time).
            schema = warehouse.staging_schema if node["config"].get("schema") == "staging" else warehouse.schema
            relations[_key_of(context, event)] = f"{schema}.{node.get('alias') or node['name']}"
    return relations
