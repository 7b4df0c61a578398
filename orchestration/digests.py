"""Dagster wiring of the digests feature: the Slack and email digest assets, their jobs on their schedules, the
retry sensor, the readiness checks, and the resources only this feature uses
(`mailer`, `digest_options`). `warehouse`, `source` and `slack` are shared (orchestration/resources.py).
"""

from __future__ import annotations

import dagster as dg

from assets.digests import (
    DigestOptions,
    automation_slack_digest_job,
    build_digest_assets,
    digest_run_config,
    weekly_digest_email_job,
)
from assets.readiness import build_readiness_checks
from models.digests.periods import period_containing
from orchestration.resources import env_or_value
from orchestration.settings import Settings, secret
from resources.mail import Mailer
from sensors.digest_retries import digest_retry_sensor

READINESS_JOB = "readiness"


def build_mailer(settings: Settings) -> Mailer:
    return Mailer(
        smtp_host=settings.SMTP_HOST,
        smtp_port=settings.SMTP_PORT,
        smtp_username=settings.SMTP_USERNAME,
        smtp_password=env_or_value("SMTP_PASSWORD", secret(settings.SMTP_PASSWORD)),
        smtp_starttls=settings.SMTP_STARTTLS,
        allow_plaintext_auth=settings.SMTP_ALLOW_PLAINTEXT_AUTH,
        outbox_dir=str(settings.outbox_dir),
    )


def build_digest_options(settings: Settings) -> DigestOptions:
    return DigestOptions(
        app_base_url=settings.APP_BASE_URL,
        weekly_digest_enabled=settings.WEEKLY_DIGEST_ENABLED,
        email_from=settings.DIGEST_EMAIL_FROM,
        email_to=settings.DIGEST_EMAIL_TO,
        marts_freshness_minutes=settings.MARTS_FRESHNESS_MINUTES,
    )


def _digest_schedule(name: str, cron: str, job: dg.JobDefinition, kind: str) -> dg.ScheduleDefinition:
    def run_request(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        # The period is the tick's, not the clock's: a tick evaluated late still sends its own period.
        period = period_containing(kind, context.scheduled_execution_time).label  # type: ignore[arg-type]
        return dg.RunRequest(run_key=f"{kind}:{period}", run_config=digest_run_config(kind, period))

    return dg.ScheduleDefinition(
        name=name,
        job=job,
        cron_schedule=cron,
        execution_timezone="UTC",
        execution_fn=run_request,
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )


def definitions(settings: Settings) -> dg.Definitions:
    """The digest assets (downstream of the marts they read), jobs and schedules, and the readiness
    checks on the assets they judge."""
    readiness = build_readiness_checks()
    readiness_job = dg.define_asset_job(
        READINESS_JOB,
        selection=dg.AssetSelection.checks(readiness),
        # No schedule: every job evaluates the readiness checks on the assets it builds, right after
        # building them (refresh, guardrail run, export, digests); this job re-evaluates all of them now.
        description="Re-evaluate every readiness check now (`pricing-ops readyz` as asset checks). Each refresh, "
        "guardrail run, export and digest already evaluates the checks on the assets it builds.",
    )
    return dg.Definitions(
        assets=build_digest_assets(),
        asset_checks=[readiness],
        jobs=[automation_slack_digest_job, weekly_digest_email_job, readiness_job],
        schedules=[
            _digest_schedule(
                "automation_slack_digest_schedule", settings.AUTOMATION_DIGEST_CRON, automation_slack_digest_job, "slack"
            ),
            _digest_schedule("weekly_digest_email_schedule", settings.WEEKLY_DIGEST_CRON, weekly_digest_email_job, "email"),
        ],
        sensors=[digest_retry_sensor],
        resources={"mailer": build_mailer(settings), "digest_options": build_digest_options(settings)},
    )
