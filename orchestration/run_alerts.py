"""Wiring of the run-failure alerts (contract section 8): the sensor for runs the daemon or the UI
starts, and the same message sent by `pricing-ops` for the runs it executes itself."""

from __future__ import annotations

import dagster as dg

from orchestration.log_hygiene import redact
from orchestration.resources import build_slack
from orchestration.settings import Settings
from sensors.run_failures import build_run_failure_sensor, send_run_failure_alert

# The jobs whose failures reach a person (by name, so a command can tell without loading them).
ALERTED_JOBS = (
    "refresh", "guardrail_evaluation", "onboarding_experiment_export", "automation_slack_digest", "weekly_digest_email",
)


def definitions(settings: Settings) -> dg.Definitions:
    """The run-failure sensor on the alerted jobs (the pipeline's included: load with dbt)."""
    from assets.digests import automation_slack_digest_job, weekly_digest_email_job
    from assets.export import onboarding_experiment_export
    from orchestration.guardrails import guardrail_evaluation_job
    from orchestration.pipeline import refresh_job

    jobs = [refresh_job, guardrail_evaluation_job, onboarding_experiment_export, automation_slack_digest_job,
            weekly_digest_email_job]
    assert sorted(job.name for job in jobs) == sorted(ALERTED_JOBS)
    return dg.Definitions(sensors=[build_run_failure_sensor(jobs, settings.DAGSTER_UI_URL, redact)])


def alert_failed_run(settings: Settings, job_name: str, run_id: str, reason: str) -> str | None:
    """Send the message for a failed run `pricing-ops` executed (its runs are not the sensor's);
    returns where it went, None for a job that is not alerted."""
    if job_name not in ALERTED_JOBS:
        return None
    slack = build_slack(settings, resolved=True)
    return send_run_failure_alert(slack, job_name, run_id, reason, settings.DAGSTER_UI_URL, redact)
