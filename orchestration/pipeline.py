"""Dagster wiring of the pipeline: extract assets, dbt assets, the refresh job and schedule, and
the asset checks a data engineer looks at (marts freshness, payload rejects rate)."""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from assets.dbt import build_dbt_assets, dbt_cli_resource
from assets.experiments import build_experiment_assets
from assets.extract import build_extract_assets
from assets.pipeline_checks import payload_rejects_rate_check
from models.experiment_results import ExperimentSettings
from models.marts import MART_TABLES
from orchestration.settings import Settings

MART_KEYS = [dg.AssetKey(name) for name in MART_TABLES]

refresh_job = dg.define_asset_job(
    "refresh",
    selection=dg.AssetSelection.groups("extract", "staging", "marts"),
    # The marts group holds the experiment statistics too (computed from the metrics mart).
    description="Extract the source into the warehouse, dbt build every model, then the experiment statistics.",
    # One writer on the warehouse at a time (DuckDB allows one process on the file).
    executor_def=dg.in_process_executor,
    tags={"dagster/concurrency_key": "warehouse_writer"},
)


def definitions(settings: Settings) -> dg.Definitions:
    extract_assets = build_extract_assets(settings.EXTRACT_LOOKBACK)
    dbt_models = build_dbt_assets(
        settings.GUARDRAIL_CRITICAL_GUARDRAIL_FAILURES, settings.GUARDRAIL_CRITICAL_REPLAY_FAILURES
    )
    experiments = build_experiment_assets(ExperimentSettings(
        srm_p_threshold=settings.EXPERIMENT_SRM_P_THRESHOLD,
        sequential_tuning=settings.EXPERIMENT_SEQUENTIAL_TUNING,
        min_journeys=settings.EXPERIMENT_MIN_JOURNEYS,
    ))
    freshness_checks = dg.build_last_update_freshness_checks(
        assets=MART_KEYS, lower_bound_delta=timedelta(minutes=settings.MARTS_FRESHNESS_MINUTES)
    )
    return dg.Definitions(
        assets=[extract_assets, dbt_models, experiments],
        asset_checks=[*freshness_checks, payload_rejects_rate_check],
        jobs=[refresh_job],
        schedules=[
            dg.ScheduleDefinition(
                name="refresh_every_15_minutes",
                job=refresh_job,
                cron_schedule=settings.REFRESH_CRON,
                execution_timezone="UTC",
                default_status=dg.DefaultScheduleStatus.RUNNING,
            )
        ],
        sensors=[dg.build_sensor_for_freshness_checks(freshness_checks=freshness_checks)],
        resources={"dbt": dbt_cli_resource()},
    )
