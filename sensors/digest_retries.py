"""Re-sends a digest whose send failed: every few minutes, the current Slack and email periods whose
`digest_deliveries` row says `failed` (or a claim abandoned by a dead process) get one new run, up
to `MAX_SEND_ATTEMPTS` attempts. The run key names the attempt, so one failure starts one retry."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from assets.digests import (
    JOB_FOR_KIND,
    automation_slack_digest_job,
    digest_run_config,
    retryable_periods,
    weekly_digest_email_job,
)
from resources.warehouse import Warehouse

RETRY_INTERVAL_SECONDS = 300


@dg.sensor(
    name="digest_retry_sensor",
    jobs=[automation_slack_digest_job, weekly_digest_email_job],
    minimum_interval_seconds=RETRY_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Retries a digest of the current period whose send failed (digest_deliveries).",
)
def digest_retry_sensor(context: dg.SensorEvaluationContext, warehouse: Warehouse):
    now = datetime.now(UTC)
    with warehouse.state_connect() as conn:
        pending = retryable_periods(conn, warehouse.schema, now, JOB_FOR_KIND)
    if not pending:
        return dg.SkipReason("no failed digest send in the current periods")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"{kind}:{period}:after-attempt-{attempts}",
                job_name=JOB_FOR_KIND[kind],
                run_config=digest_run_config(kind, period),
                tags={"pricing_ops/digest_retry": f"{kind} {period}"},
            )
            for kind, period, attempts in pending
        ]
    )
