"""Dagster wiring of the guardrails feature: the `guardrail_actions` asset, the `guardrail_evaluation`
job (it and everything upstream: telemetry and providers extract, staging, provider_guardrail_status),
the operator follow-up job, the telemetry sensor and the app API resource. Slack is a shared resource
(the digests post through it too)."""

from __future__ import annotations

import dagster as dg

from assets.dbt_keys import SKIP_WHEN_UNCHANGED_TAG
from assets.guardrails import GUARDRAIL_ACTIONS_KEY, build_guardrail_definitions
from orchestration.resources import env_or_value
from orchestration.settings import Settings, secret
from resources.app_api import AppApi
from sensors.guardrail_telemetry import build_guardrail_telemetry_sensor

GUARDRAIL_EVALUATION_JOB = "guardrail_evaluation"

guardrail_evaluation_job = dg.define_asset_job(
    GUARDRAIL_EVALUATION_JOB,
    selection=dg.AssetSelection.assets(GUARDRAIL_ACTIONS_KEY).upstream(),
    description=(
        "Refresh provider_guardrail_status from the source, then evaluate every provider's latest window "
        "and act: pause, resume, warn, notify."
    ),
    # One writer on the warehouse at a time (DuckDB allows one process on the file).
    executor_def=dg.in_process_executor,
    # Nothing new since the last build: no dbt (DbtBuildConfig.force runs it anyway).
    tags={"dagster/concurrency_key": "warehouse_writer", **SKIP_WHEN_UNCHANGED_TAG},
)


def build_app_api(settings: Settings) -> AppApi:
    return AppApi(
        base_url=settings.APP_API_BASE_URL,
        api_key=env_or_value("CHECKOUT_API_KEY", secret(settings.CHECKOUT_API_KEY)),
    )


def definitions(settings: Settings) -> dg.Definitions:
    guardrail_actions, operator_job = build_guardrail_definitions(settings.APP_BASE_URL, settings.EXTRACT_LOOKBACK)
    return dg.Definitions(
        assets=[guardrail_actions],
        jobs=[guardrail_evaluation_job, operator_job],
        sensors=[build_guardrail_telemetry_sensor(guardrail_evaluation_job, settings.EXTRACT_LOOKBACK)],
        resources={"app_api": build_app_api(settings)},
    )
