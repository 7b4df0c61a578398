"""Run a job of the definitions in this process, as the CLI does, recorded in the same Dagster
instance the UI shows (`DAGSTER_HOME`, prepared from the settings)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg

from orchestration.cli import CommandError
from orchestration.settings import Settings, get_settings


@contextmanager
def stdout_to_stderr() -> Iterator[None]:
    """Send everything written to stdout (dbt's subprocess output included) to stderr meanwhile, so
    a command's stdout carries only its result."""
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def run_job(
    job_name: str,
    run_config: dict[str, Any] | None = None,
    defs: dg.Definitions | None = None,
    settings: Settings | None = None,
) -> dg.ExecuteInProcessResult:
    """Execute `job_name` (from `defs`, default the Definitions of `settings`, default the process's
    settings) in this process, as a run of the code location the UI loads. A failed run sends its
    alert (refresh, guardrail, export and digest jobs) and raises a `CommandError` with its reason."""
    from orchestration.assembly import JOBS_WITHOUT_DBT, build_definitions
    from orchestration.code_location import execute_in_location
    from orchestration.dead_runs import this_process_tags
    from orchestration.instance import open_instance, prepare_dagster_home
    from resources.interrupts import received_signal
    from sensors.run_failures import REPORTED_BY_LAUNCHER_TAG, failure_reason

    settings = settings or get_settings()
    home = prepare_dagster_home(settings)
    if defs is None:
        # A job that builds nothing from dbt runs without loading it (`pricing-ops export`, `digest`).
        defs = build_definitions(settings, with_dbt=job_name not in JOBS_WITHOUT_DBT)
    job = defs.resolve_job_def(job_name)
    # The run's event log at INFO on the console (step starts and ends, asset logs); DEBUG in the UI.
    config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}, **(run_config or {})}
    with stdout_to_stderr(), open_instance(home) as instance:
        end_dead_runs(settings, instance)
        # The run names this process, so that a later command or the daemon can tell it died.
        tags = {**REPORTED_BY_LAUNCHER_TAG, **this_process_tags()}
        result = execute_in_location(job, config, instance, tags=tags)
    if not result.success:
        stop = received_signal()
        if stop:
            reason = interrupted_reason(stop, result.all_events)
            _alert(settings, job_name, result.run_id, reason)
            raise CommandError(f"job {job_name} interrupted (run {result.run_id}): {reason}")
        reason = failure_reason(result.all_events)
        _alert(settings, job_name, result.run_id, reason)
        raise CommandError(f"job {job_name} failed (run {result.run_id}): {reason}")
    return result


def interrupted_reason(signal_name: str, events: list[dg.DagsterEvent]) -> str:
    """The reason of a run a stop signal ended: which signal, in which step, and what became of
    its writes (the statement in flight was cancelled and its transaction rolled back)."""
    steps = [e.step_key for e in events if e.is_failure and e.step_key]
    where = f" in step {steps[0]}" if steps else ""
    return (f"interrupted by {signal_name}{where}; the write in flight was rolled back, no table is "
            "half-written: run it again to finish")


def end_dead_runs(settings: Settings, instance: dg.DagsterInstance) -> None:
    """Mark failed the runs whose `pricing-ops` process died on this host (each said, and alerted
    as a failed run: the dead process never could)."""
    from orchestration.cli import progress
    from orchestration.dead_runs import fail_dead_runs

    for run, message in fail_dead_runs(instance):
        progress(f"run {run.run_id} ({run.job_name}) marked failed: {message}")
        _alert(settings, run.job_name, run.run_id, message)


def _alert(settings: Settings, job_name: str, run_id: str, reason: str) -> None:
    """The run-failure message for a run this command executed; a failed send is said, not raised
    (the run's own failure is what the command reports)."""
    from orchestration.cli import progress
    from orchestration.run_alerts import alert_failed_run

    try:
        where = alert_failed_run(settings, job_name, run_id, reason)
    except Exception as exc:  # noqa: BLE001 - the Slack error says where and why, never a secret
        progress(f"run failure alert not sent: {type(exc).__name__}: {exc}")
        return
    if where:
        progress(f"run failure alert sent ({where})")
