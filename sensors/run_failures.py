"""A failed run of the refresh, guardrail, export or digest jobs reaches a person: one Slack message
(contract section 8) through the `slack` resource (the outbox on the embedded default).

Runs started by the daemon (schedules, sensors) or from the UI are reported by
`build_run_failure_sensor`. A run launched by `pricing-ops` carries `REPORTED_BY_LAUNCHER_TAG`: the
command reports its own failure the moment the run ends (cron has no daemon), and the sensor leaves
those runs alone, so each failure is sent once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

import dagster as dg

from models.run_alerts import run_failure_message
from resources.slack import SlackNotifier

# Set on the runs `pricing-ops` executes: their failure is reported by the command itself.
REPORTED_BY_LAUNCHER_TAG = {"pricing_ops/failure_alert": "launcher"}
RUN_FAILURE_SENSOR = "run_failure_alerts"
_UNKNOWN = "see the run's logs in the Dagster UI"


def failure_reason(events: Iterable[dg.DagsterEvent]) -> str:
    """The user-facing reason of a failed run, in one line: a `Failure`'s description, else the
    root cause of the step's error (not Dagster's "Error occurred while executing op" wrapper),
    else the run's own failure message."""
    run_message = None
    for event in events:
        if not event.is_failure:
            continue
        data = event.event_specific_data
        user = getattr(data, "user_failure_data", None)
        if user is not None and user.description:
            return _one_line(user.description)
        error = getattr(data, "error", None)
        if error is not None and event.step_key:
            # Dagster wraps the user's exception: the first error of the chain that is not
            # Dagster's is what went wrong (ours may carry its own cause: its message is the fix).
            while error.cause is not None and error.cls_name.startswith("Dagster"):
                error = error.cause
            return f"step {event.step_key}: " + _one_line(error.message)
        if event.event_type == dg.DagsterEventType.RUN_FAILURE and error is not None:
            # A run that failed before any step (a resource, e.g. the warehouse writer lock, could
            # not start): its own error's root cause, not "An exception was thrown during execution".
            while error.cause is not None and error.cls_name.startswith("Dagster"):
                error = error.cause
            run_message = _error_line(error)
        elif event.event_type == dg.DagsterEventType.RUN_FAILURE and event.message:
            run_message = _one_line(event.message)
    return run_message or _UNKNOWN


def _error_line(error) -> str:
    """`Class: message` of a serialized error, its class unqualified (`WarehouseBusy`, not
    `resources.warehouse_writer.WarehouseBusy`)."""
    line = _one_line(error.message)
    qualified, colon, rest = line.partition(":")
    if colon and qualified.endswith("." + error.cls_name):
        return error.cls_name + colon + rest
    return line


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"


def run_failure_events(instance: dg.DagsterInstance, run_id: str) -> list[dg.DagsterEvent]:
    """The step and run failure events of a run, from the instance's event log."""
    records = instance.get_records_for_run(
        run_id, of_type={dg.DagsterEventType.STEP_FAILURE, dg.DagsterEventType.RUN_FAILURE}
    ).records
    return [r.event_log_entry.dagster_event for r in records if r.event_log_entry.dagster_event is not None]


def send_run_failure_alert(
    slack: SlackNotifier, job_name: str, run_id: str, reason: str, ui_url: str | None,
    redact: Callable[[str], str] = lambda text: text,
) -> str:
    """Post the message for one failed run; returns where it went (Slack ts, `webhook` or a file)."""
    message = run_failure_message(job_name, redact(reason), run_id, ui_url)
    return slack.post_message(message["text"], message["blocks"])


def build_run_failure_sensor(
    jobs: Sequence[dg.JobDefinition | dg.UnresolvedAssetJobDefinition],
    ui_url: str | None,
    redact: Callable[[str], str],
) -> dg.SensorDefinition:
    """The sensor that reports failed runs of `jobs` that no command line reports; `redact` takes
    the process's secrets out of the reason (the wiring knows them)."""

    @dg.run_failure_sensor(
        name=RUN_FAILURE_SENSOR,
        monitored_jobs=list(jobs),
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Sends one Slack message (or outbox file) per failed refresh, guardrail, export or digest "
        "run started by a schedule, a sensor or the UI, with its root cause and a link to the run.",
    )
    def run_failure_alerts(context: dg.RunFailureSensorContext, slack: SlackNotifier):
        run = context.dagster_run
        tag, value = next(iter(REPORTED_BY_LAUNCHER_TAG.items()))
        if run.tags.get(tag) == value:
            return dg.SkipReason(f"run {run.run_id[:8]} was launched by pricing-ops, which reported it")
        reason = failure_reason(run_failure_events(context.instance, run.run_id))
        where = send_run_failure_alert(slack, run.job_name, run.run_id, reason, ui_url, redact)
        context.log.info(f"run {run.run_id[:8]} of {run.job_name} failed: alert sent ({where})")
        return None

    return run_failure_alerts
