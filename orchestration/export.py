"""Dagster wiring of the export: the `export_onboarding_segments` asset (downstream of the segments
mart), the `onboarding_experiment_export` job that materializes it, its schedule
(ONBOARDING_EXPORT_CRON, UTC) and the resources only it uses (sinks, cursor store, notifier)."""

from __future__ import annotations

from typing import Any

import dagster as dg

from assets.export import build_export_asset, onboarding_experiment_export
from orchestration.resources import env_or_value
from orchestration.settings import Settings, secret
from resources.export_cursor import ExportCursorStore
from resources.export_notifier import ExportNotifier
from resources.export_sinks import ExportSinks


def export_resources(settings: Settings) -> dict[str, Any]:
    """Sinks, cursor store and notifier from the settings; webhook URLs reach them as `EnvVar`."""
    return {
        "export_sinks": ExportSinks(
            sink=settings.ONBOARDING_EXPORT_SINK,
            format=settings.ONBOARDING_EXPORT_FORMAT,
            batch_size=settings.ONBOARDING_EXPORT_BATCH_SIZE,
            webhook_url=env_or_value("ANALYTICS_SEGMENTS_WEBHOOK", secret(settings.ANALYTICS_SEGMENTS_WEBHOOK)),
            export_dir=str(settings.export_dir),
            s3_uri=settings.ONBOARDING_EXPORT_S3_URI,
            s3_endpoint_url=settings.S3_ENDPOINT_URL,
        ),
        "export_cursor": ExportCursorStore(
            store=settings.ONBOARDING_EXPORT_CURSOR_STORE,
            file_path=str(settings.export_cursor_path),
            s3_uri=settings.ONBOARDING_EXPORT_CURSOR_S3_URI,
            s3_endpoint_url=settings.S3_ENDPOINT_URL,
            lock_path=str(settings.data_dir / "onboarding_export.lock"),
        ),
        "export_notifier": ExportNotifier(
            webhook_url=env_or_value(
                "ONBOARDING_EXPORT_SLACK_WEBHOOK", secret(settings.ONBOARDING_EXPORT_SLACK_WEBHOOK)
            ),
            dagster_ui_url=settings.DAGSTER_UI_URL,
        ),
    }


def definitions(settings: Settings) -> dg.Definitions:
    schedule = dg.ScheduleDefinition(
        name="onboarding_experiment_export_schedule",
        job=onboarding_experiment_export,
        cron_schedule=settings.ONBOARDING_EXPORT_CRON,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Export new segment rows on ONBOARDING_EXPORT_CRON (default hourly).",
    )
    return dg.Definitions(
        assets=[build_export_asset()],
        jobs=[onboarding_experiment_export],
        schedules=[schedule],
        resources=export_resources(settings),
    )
