"""dbt models as Dagster assets: staging views and the marts BI reads.

The `DbtProject` is built once here. Lineage starts at the extract assets: the dbt sources carry
`meta.dagster.asset_key` = ["raw", <table>]. dbt runs against the warehouse the `Warehouse`
resource names (its environment is passed to the dbt process), with the as-of date fixed at the
start of the run (UTC) and the guardrail thresholds from the settings.
"""


import json
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, date, datetime
from functools import cached_property
from graphlib import TopologicalSorter
from importlib import metadata
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
from dagster_dbt.asset_utils import default_description_fn
from packaging import version
from pydantic import Field

from assets.dbt_console import dbt_console
from assets.dbt_failures import dbt_failure_line, read_run_results
from assets.dbt_keys import SKIP_WHEN_UNCHANGED_TAG
from assets.dbt_preview import mart_relation, preview_metadata, relations_of
from assets.dbt_project import (
    DBT_EXECUTABLE,
    DBT_PROJECT_DIR,
    code_version,
    environment,
    prepared_project,
    run_folder,
    vars_args,
)
from assets.dbt_skip_report import data_version_of, last_check_results, skipped_build_events
from models.experiment_allocations import AllocationError, parse_allocations_csv, validated_allocations
from resources.stores.dbt_build_state import (
    BUILD_INPUTS_ENV,
    asset_name,
    build_inputs,
    inputs_of_model,
    last_builds,
    raw_fingerprint,
)
from resources.warehouse import Warehouse
from resources.warehouse_writer import WarehouseWriter


class PricingDbtCli(DbtCliResource):
    """Runs `dbt build` on the project in `dbt_project/` against the warehouse the `warehouse`
    resource names (DuckDB file or PostgreSQL), for the dbt models of the refresh, the guardrail run
    and materializations launched from the UI."""

    # Two costs of each invocation this project does not pay (as dagster-dbt's resource would): a
    # `dbt --version` subprocess (the version is the installed dbt-core's) and an in-process dbt
    # adapter, which only serves `fetch_row_counts` / `fetch_column_metadata` (row counts come from
    # `preview_metadata`).

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(metadata.version("dbt-core"))

    def _initialize_dbt_core_adapter(self, args):
        return None


def dbt_cli_resource(project: DbtProject | None = None) -> DbtCliResource:
    return PricingDbtCli(project_dir=project or DbtProject(DBT_PROJECT_DIR), dbt_executable=DBT_EXECUTABLE)


# Marts previewed in the UI (markdown table of their first rows).
# The intended traffic split merchandising edits, checked before each build that loads it.
ALLOCATIONS_SEED = Path("seeds") / "experiment_allocations.csv"
ALLOCATIONS_SEED_KEY = dg.AssetKey(["staging", "experiment_allocations"])


class PricingDbtTranslator(DagsterDbtTranslator):
    """Groups by folder (staging with intermediate and seeds, marts), keeps the warehouse kind, prose
    descriptions, owners from the dbt groups (dbt_project/models/groups.yml), the model's SQL file as
    code reference."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        node = manifest["nodes"].get(unique_id) or manifest["sources"].get(unique_id) or {}
        fqn = node.get("fqn", [])
        # Intermediate models and seeds sit with staging: inputs of the marts, built by the same refresh.
        upstream = "staging" in fqn or "intermediate" in fqn or node.get("resource_type") == "seed"
        group = "marts" if "marts" in fqn else "staging" if upstream else spec.group_name
        metadata = dict(spec.metadata)
        if node.get("original_file_path"):
            # dagster-dbt's `enable_code_references` would need the DbtProject in every asset's
            # metadata, where the UI shows it as "[DbtProject] (unserializable)": the same reference here.
            sql = DBT_PROJECT_DIR / node["original_file_path"]
            with warnings.catch_warnings():  # a beta API of Dagster 1.13: no notice per model
                warnings.simplefilter("ignore", dg.BetaWarning)
                metadata["dagster/code_references"] = dg.CodeReferencesMetadataValue(code_references=[
                    dg.LocalFileCodeReference(file_path=str(sql), label=f"dbt {node.get('resource_type', 'model')}")
                ])
        # Keep dagster-dbt's kinds (dbt and the adapter: duckdb or postgres), add sql.
        return spec.replace_attributes(group_name=group, kinds={*spec.kinds, "sql"}, metadata=metadata)

    def get_description(self, dbt_resource_props: Mapping[str, Any]) -> str:
        # The model's yml description as prose; the SQL is one click away in the code link.
        return default_description_fn(dbt_resource_props, display_raw_sql=False)


TRANSLATOR = PricingDbtTranslator(settings=DagsterDbtTranslatorSettings(enable_asset_checks=True))


class DbtBuildConfig(dg.Config):
    """Options of one dbt build (launchpad: `ops.pricing_dbt_models.config`)."""

    as_of_date: str | None = Field(
        default=None,
        description="The date the marts are computed as of, YYYY-MM-DD (UTC): exposures after it are left out. "
        "Empty: the UTC date the run started.",
    )
    full_refresh: bool = Field(
        default=False,
        description="Rebuild every incremental table from all rows instead of adding what is new (slower; "
        "use after changing a model's logic).",
    )
    # Run dbt even when a job tagged SKIP_WHEN_UNCHANGED_TAG finds nothing new since the last build.
    force: bool = Field(
        default=False,
        description="Run dbt even when nothing is new since the last build (a scheduled refresh otherwise "
        "reports the marts as up to date without starting dbt).",
    )
    full_data_tests: bool = Field(
        default=False,
        description="Run every dbt data test on every row (the daily resync does); otherwise the tests of the "
        "large tables check the rows the build may have written. Runs dbt even when nothing is new.",
    )


# Read by dbt_project/macros/materializations/incremental_state.sql (get_where_subquery).
FULL_DATA_TESTS_ENV = "PRICING_OPS_FULL_DATA_TESTS"


def run_start_date(context: dg.AssetExecutionContext) -> date:
    """The UTC date at the start of the run (contract: the as-of date)."""
    stats = context.instance.get_run_stats(context.run.run_id)
    started = stats.start_time if stats and stats.start_time else datetime.now(UTC).timestamp()
    return datetime.fromtimestamp(started, UTC).date()


def dbt_vars(critical_guardrail_failures: int, critical_replay_failures: int) -> dict[str, Any]:
    """The `--vars` of every invocation: values fixed by the settings, so the partial parse holds.
    The as-of date, which changes, goes by environment (`PRICING_OPS_AS_OF_DATE`)."""
    return {
        "guardrail_critical_guardrail_failures": critical_guardrail_failures,
        "guardrail_critical_replay_failures": critical_replay_failures,
    }


def build_dbt_assets(
    critical_guardrail_failures: int,
    critical_replay_failures: int,
    parse_env: Mapping[str, str],
    data_dir: Path,
) -> tuple[dg.AssetsDefinition, DbtProject]:
    """The dbt models as one multi-asset, on a manifest parsed once per code version.

    `parse_env` is the dbt environment of the settings' warehouse (a parse made with it seeds that
    warehouse's partial parse); `data_dir` holds the partial parse and each run's scratch folder."""
    variables = dbt_vars(critical_guardrail_failures, critical_replay_failures)
    cache_dir, runs_root = data_dir / "dbt", data_dir / "dbt_runs"
    project = prepared_project(parse_env, variables, cache_dir)
    loaded_version = code_version()
    nodes = json.loads(project.manifest_path.read_text())["nodes"]

    # No `project=`: dagster-dbt would put the DbtProject in every asset's metadata (shown as
    # unserializable); the translator attaches the code references, the `dbt` resource has the path.
    @dbt_assets(manifest=project.manifest_path, dagster_dbt_translator=TRANSLATOR)
    def pricing_dbt_models(
        context: dg.AssetExecutionContext, config: DbtBuildConfig, dbt: DbtCliResource, warehouse: Warehouse,
        warehouse_writer: WarehouseWriter,  # held for the whole run: one writer on the warehouse
    ):
        if ALLOCATIONS_SEED_KEY in context.selected_asset_keys:
            # The file of the project this resource runs (the one dbt would load).
            check_allocations_seed(Path(dbt.project_dir) / ALLOCATIONS_SEED)
        as_of = date.fromisoformat(config.as_of_date) if config.as_of_date else run_start_date(context)
        invocation, inputs = _build_inputs(context, warehouse, as_of, variables)
        unchanged = _unchanged_since(context, config, warehouse, nodes, inputs)
        # A skip carries every planned check's last result forward; a check with none to carry (a
        # new Dagster instance on an old warehouse) has dbt run to evaluate it.
        last = last_check_results(context.instance, context.selected_asset_check_keys) if unchanged else {}
        if unchanged is not None and set(context.selected_asset_check_keys) <= set(last):
            # The marts are what a build would make now (same raw rows, as-of date, code and vars):
            # reported as such (assets/dbt_skip_report.py), so the UI reads as before the run.
            context.log.info(f"marts up to date: nothing new since {unchanged}; dbt not started")
            yield from _skipped_outputs(context, warehouse, nodes, unchanged, inputs, last)
            return
        # dbt's unit tests check the SQL against fixtures, not the data: they run with the test
        # suite (tests/test_dbt_models.py), not on every refresh (as dbt advises for production).
        args = ["build", *vars_args(variables), "--exclude-resource-type", "unit_test"]
        if config.full_refresh:
            args.append("--full-refresh")
        context.log.info(
            f"dbt build on {warehouse.describe()} as of {as_of.isoformat()}"
            + (" (full refresh)" if config.full_refresh else "")
        )
        # What this invocation reads: dbt records it on every model it builds, once all of it succeeded.
        env = {
            **warehouse.dbt_env(),
            "PRICING_OPS_AS_OF_DATE": as_of.isoformat(),
            BUILD_INPUTS_ENV: invocation,
            FULL_DATA_TESTS_ENV: "1" if config.full_data_tests else "",
        }
        started = time.monotonic()
        with (
            environment(env),
            run_folder(cache_dir, runs_root, context.run.run_id) as target,
            dbt_console(context) as console,
        ):
            if code_version() != loaded_version:
                args += added_nodes_excluded(context, dbt, target, variables, nodes)
            # Not raised by dagster-dbt: its error names the command, not the cause (assets/dbt_failures.py);
            # raised after the events are reported, so a failing test's result is recorded (readiness reads it).
            cli = dbt.cli(args, context=context, target_path=target, raise_on_error=False)
            events = list(cli.stream())
            failure = None
            if not cli.is_successful():
                failure = dbt_failure_line(
                    read_run_results(target), getattr(cli, "_error_messages", []), nodes,
                    warehouse.describe(), cli.process.returncode,
                )
        context.log.info(f"dbt build: {console.summary()} in {time.monotonic() - started:.1f} s")
        # Enrich materializations once dbt has exited (DuckDB allows one process on the file); after a
        # failure the warehouse may be what failed: the cause is reported, not a second error.
        relations = relations_of(context, events, warehouse, nodes) if failure is None else {}
        extra = preview_metadata(warehouse, relations) if relations else {}
        for event in events:
            if isinstance(event, dg.Output):
                # Versioned by what the build read: a later skip reports the very same version.
                key = _key_of(context, event)
                yield dg.Output(
                    event.value, output_name=event.output_name, metadata={**event.metadata, **extra.get(key, {})},
                    data_version=data_version_of(inputs[asset_name(key)]), tags=event.tags,
                )
            else:
                yield event
        if failure is not None:
            # What did build is reported above (and each test's result, failing ones included).
            raise dg.Failure(description=failure)

    return pricing_dbt_models, project


def check_allocations_seed(path: Path) -> None:
    """Refuse a bad allocations seed file before dbt loads it (models/experiment_allocations.py:
    the rules); the `dg.Failure` names the file (from the project folder on) and the line."""
    name = f"{path.parent.parent.name}/{ALLOCATIONS_SEED.as_posix()}"
    try:
        validated_allocations(parse_allocations_csv(path.read_text(encoding="utf-8"), name), name)
    except AllocationError as exc:
        raise dg.Failure(description=f"{exc}. Nothing was built: fix the row and run the refresh again") from None


def upstream_raw_tables(assets_def: dg.AssetsDefinition, keys: Iterable[dg.AssetKey]) -> set[str]:
    """Names of the raw tables (`raw/<table>` keys) the selected dbt models read, transitively."""
    deps = assets_def.asset_deps
    seen: set[dg.AssetKey] = set()
    todo = list(keys)
    while todo:
        key = todo.pop()
        if key in seen:
            continue
        seen.add(key)
        todo.extend(deps.get(key, ()))
    return {key.path[-1] for key in seen if len(key.path) == 2 and key.path[0] == "raw"}


def _build_inputs(
    context: dg.AssetExecutionContext, warehouse: Warehouse, as_of: date, variables: Mapping[str, Any]
) -> tuple[str, dict[str, str]]:
    """What this build reads: the invocation's inputs (every raw table the selection reads, the
    as-of date, the code version, the vars) and, per selected model, its own share of them (its
    raw tables only: the data version of its output)."""
    fingerprint = raw_fingerprint(warehouse, upstream_raw_tables(context.assets_def, context.selected_asset_keys))
    invocation = build_inputs(fingerprint, as_of.isoformat(), code_version(), variables)
    per_model = {
        asset_name(key): inputs_of_model(invocation, upstream_raw_tables(context.assets_def, [key]))
        for key in context.selected_asset_keys
    }
    return invocation, per_model


def _unchanged_since(
    context: dg.AssetExecutionContext,
    config: DbtBuildConfig,
    warehouse: Warehouse,
    nodes: Mapping[str, Any],
    inputs: Mapping[str, str],
) -> str | None:
    """"<instant> (dbt invocation <id>)" of the latest of the last successful builds of the selected
    models, when each of them was built from these very inputs (dbt's own record, `last_builds`)
    and this run may skip dbt (a tagged job, no full refresh, no `force`, no full data tests); else
    None."""
    tag, value = next(iter(SKIP_WHEN_UNCHANGED_TAG.items()))
    if context.run.tags.get(tag) != value or config.full_refresh or config.force or config.full_data_tests:
        return None
    model_of = {key: _node_name(context, nodes, key) for key in context.selected_asset_keys}
    last = last_builds(warehouse, [name for name in model_of.values() if name])
    built = []
    for key, model in model_of.items():
        if model not in last:
            return None
        read, built_at, invocation_id = last[model]
        if inputs_of_model(read, upstream_raw_tables(context.assets_def, [key])) != inputs[asset_name(key)]:
            return None
        built.append((built_at, invocation_id))
    built_at, invocation_id = max(built)
    return f"{built_at} (dbt invocation {invocation_id[:8]})"


def _node_name(context: dg.AssetExecutionContext, nodes: Mapping[str, Any], key: dg.AssetKey) -> str | None:
    """The dbt node (model, seed) name of a selected dbt asset."""
    unique_id = str(context.assets_def.specs_by_key[key].metadata.get("dagster_dbt/unique_id", ""))
    return nodes.get(unique_id, {}).get("name")


def _skipped_outputs(
    context: dg.AssetExecutionContext,
    warehouse: Warehouse,
    nodes: Mapping[str, Any],
    since: str,
    inputs: Mapping[str, str],
    last: Mapping[dg.AssetCheckKey, Any],
) -> Iterator[dg.Output | dg.AssetCheckResult]:
    """An output per selected model, marked skipped, with the marts' row counts and previews, then
    the dbt tests' last results (assets/dbt_skip_report.py)."""
    relations: dict[dg.AssetKey, str] = {}
    unique_ids: dict[dg.AssetKey, str] = {}
    for key in context.selected_asset_keys:
        spec = context.assets_def.specs_by_key[key]
        unique_id = str(spec.metadata.get("dagster_dbt/unique_id", ""))
        unique_ids[key] = unique_id
        relation = mart_relation(nodes.get(unique_id, {}), warehouse)
        if relation:
            relations[key] = relation
    extra = _last_previews(context.instance, relations)
    missing = {key: relation for key, relation in relations.items() if key not in extra}
    extra.update(preview_metadata(warehouse, missing) if missing else {})
    # Dagster wants a multi-asset's outputs in dependency order.
    selected = context.selected_asset_keys
    deps = context.assets_def.asset_deps
    order = TopologicalSorter({key: {dep for dep in deps.get(key, ()) if dep in selected} for key in selected})
    metadata = {key: {"unique_id": dg.MetadataValue.text(unique_ids[key]), **extra.get(key, {})} for key in selected}
    yield from skipped_build_events(context, order.static_order(), metadata, inputs, last, since)


def _last_previews(instance: dg.DagsterInstance, relations: Mapping[dg.AssetKey, str]) -> dict[dg.AssetKey, dict]:
    """The row count and preview of each mart's last materialization: a skipped build left the
    tables as that build (or skip) did, so they still hold, without counting every row again."""
    out: dict[dg.AssetKey, dict] = {}
    for key in relations:
        event = instance.get_latest_materialization_event(key)
        metadata = event.asset_materialization.metadata if event and event.asset_materialization else {}
        if "dagster/row_count" in metadata and "preview" in metadata:
            out[key] = {name: metadata[name] for name in ("dagster/row_count", "preview")}
    return out


def added_nodes_excluded(
    context: dg.AssetExecutionContext,
    dbt: DbtCliResource,
    target: Path,
    variables: Mapping[str, Any],
    loaded_nodes: Mapping[str, Any],
) -> list[str]:
    """`--exclude` of the nodes added to the project since the definitions loaded (a seed, a model,
    a test): dbt would build them and dagster-dbt, whose manifest lacks them, would fail on their
    results. They run once the code location reloads. The parse seeds this run's partial parse."""
    dbt.cli(["parse", "--quiet", *vars_args(variables)], target_path=target).wait()
    current = json.loads((target / "manifest.json").read_text())["nodes"]
    added = sorted(node["name"] for unique_id, node in current.items() if unique_id not in loaded_nodes)
    if not added:
        return []
    context.log.warning(
        f"the dbt project changed since the definitions loaded: {len(added)} new node(s) not built "
        f"in this run ({', '.join(added)}); reload the code location to include them"
    )
    return ["--exclude", *added]


def _key_of(context: dg.AssetExecutionContext, event: dg.Output) -> dg.AssetKey:
    return context.asset_key_for_output(event.output_name)
