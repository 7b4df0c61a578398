"""Dagster wiring of the pipeline: extract assets, dbt assets, the refresh job and schedule, and
the asset checks a data engineer looks at (payload rejects rate) and the marts' freshness policy."""

from __future__ import annotations

import json
from datetime import timedelta

import dagster as dg
from dagster_dbt import DbtProject

from assets.bi import source_column_schemas
from assets.dbt import build_dbt_assets, dbt_cli_resource
from assets.dbt_keys import FULL_DATA_TESTS_RUN_CONFIG, SKIP_WHEN_UNCHANGED_TAG, mart_key
from assets.experiments import build_experiment_assets
from assets.extract import RESYNC_RUN_CONFIG, build_extract_assets
from assets.pipeline_checks import payload_rejects_rate_check, source_row_rejects_check
from models.experiment_results import ExperimentSettings
from models.marts import BI_TABLES
from orchestration.settings import Settings, secret
from resources.warehouse import Warehouse

FRESH_KEYS = {mart_key(name) for name in BI_TABLES}

refresh_job = dg.define_asset_job(
    "refresh",
    # The readiness checks on these assets come along: evaluated right after the build.
    selection=dg.AssetSelection.groups("extract", "staging", "marts"),
    # The marts group holds the experiment statistics too (computed from the metrics mart).
    description="Extract the source into the warehouse, dbt build every model, then the experiment statistics.",
    # One writer on the warehouse at a time (DuckDB allows one process on the file).
    executor_def=dg.in_process_executor,
    # Nothing new since the last build: no dbt (DbtBuildConfig.force runs it anyway).
    tags={"dagster/concurrency_key": "warehouse_writer", **SKIP_WHEN_UNCHANGED_TAG},
)


def build_dbt_models(settings: Settings) -> tuple[dg.AssetsDefinition, DbtProject]:
    """The dbt assets and their project, built once per Definitions: the export keys its upstream
    mart on the assets, the `dbt` resource runs the project."""
    return build_dbt_assets(
        settings.GUARDRAIL_CRITICAL_GUARDRAIL_FAILURES,
        settings.GUARDRAIL_CRITICAL_REPLAY_FAILURES,
        parse_env=Warehouse(url=settings.warehouse_url, schema_name=settings.WAREHOUSE_SCHEMA,
                          state_url=secret(settings.STATE_DATABASE_URL)).dbt_env(),
        data_dir=settings.data_dir,
    )


def definitions(settings: Settings, dbt_models: dg.AssetsDefinition, dbt_project: DbtProject) -> dg.Definitions:
    warehouse = Warehouse(url=settings.warehouse_url, schema_name=settings.WAREHOUSE_SCHEMA,
                          state_url=secret(settings.STATE_DATABASE_URL))
    extract_assets = build_extract_assets(settings.EXTRACT_LOOKBACK, warehouse.raw_schema, warehouse.engine)
    experiments = build_experiment_assets(ExperimentSettings(
        srm_p_threshold=settings.EXPERIMENT_SRM_P_THRESHOLD,
        sequential_tuning=settings.EXPERIMENT_SEQUENTIAL_TUNING,
        min_journeys=settings.EXPERIMENT_MIN_JOURNEYS,
        correction=settings.EXPERIMENT_CORRECTION,
        target_mde=settings.EXPERIMENT_TARGET_MDE,
    ), schema=warehouse.schema)
    # Their columns are documented once, as the dbt source `experiments` (dbt docs show them too).
    schemas = source_column_schemas(json.loads(dbt_project.manifest_path.read_text()), "experiments")
    experiments = experiments.map_asset_specs(
        lambda spec: spec.merge_attributes(metadata={"dagster/column_schema": schemas[spec.key]})
        if spec.key in schemas else spec
    )
    # Freshness through the current API: a policy on each mart and on the experiment tables BI reads
    # beside them (no check asset, no sensor to run it).
    marts_fresh = dg.FreshnessPolicy.time_window(fail_window=timedelta(minutes=settings.MARTS_FRESHNESS_MINUTES))

    def fresh(spec: dg.AssetSpec) -> dg.AssetSpec:
        return spec.replace_attributes(freshness_policy=marts_fresh) if spec.key in FRESH_KEYS else spec

    dbt_models = dbt_models.map_asset_specs(fresh)
    experiments = experiments.map_asset_specs(fresh)
    return dg.Definitions(
        assets=[extract_assets, dbt_models, experiments],
        asset_checks=[payload_rejects_rate_check, source_row_rejects_check],
        jobs=[refresh_job],
        schedules=[
            dg.ScheduleDefinition(
                name="refresh_every_15_minutes",
                job=refresh_job,
                cron_schedule=settings.REFRESH_CRON,
                execution_timezone="UTC",
                default_status=dg.DefaultScheduleStatus.RUNNING,
            ),
            # The refresh with orders and journeys re-read whole: repairs a change that committed
            # later than EXTRACT_LOOKBACK (run metadata: full_resync, rows_updated); its dbt build
            # runs every data test on every row (other builds check what they wrote).
            dg.ScheduleDefinition(
                name="extract_resync_daily",
                job=refresh_job,
                cron_schedule=settings.EXTRACT_RESYNC_CRON,
                execution_timezone="UTC",
                run_config={"ops": {**RESYNC_RUN_CONFIG["ops"], **FULL_DATA_TESTS_RUN_CONFIG["ops"]}},
                tags={"pricing_ops/extract": "full_resync"},
                default_status=dg.DefaultScheduleStatus.RUNNING,
            ),
        ],
        resources={"dbt": dbt_cli_resource(dbt_project)},
        # Warehouse jobs have one writer anyway: the UI's ad-hoc materializations run in one
        # process too, instead of a process per step that each start Python, Dagster and dbt.
        executor=dg.in_process_executor,
    )
