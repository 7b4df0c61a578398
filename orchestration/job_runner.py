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


def failure_reason(result: dg.ExecuteInProcessResult) -> str:
    """The user-facing reason of a failed run, in one line: a `Failure`'s description, else the
    root cause of the step's error (not Dagster's "Error occurred while executing op" wrapper)."""
    for event in result.all_events:
        data = event.event_specific_data if event.is_failure else None
        if data is None:
            continue
        user = getattr(data, "user_failure_data", None)
        if user is not None and user.description:
            return _one_line(user.description)
        error = getattr(data, "error", None)
        if error is not None:
            # Dagster wraps the user's exception: the first error of the chain that is not
            # Dagster's is what went wrong (ours may carry its own cause: its message is the fix).
            while error.cause is not None and error.cls_name.startswith("Dagster"):
                error = error.cause
            where = f"step {event.step_key}: " if event.step_key else ""
            return where + _one_line(error.message)
    return "see the run's logs in the Dagster UI"


def _one_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[0] if lines else "(no message)"


def run_job(
    job_name: str,
    run_config: dict[str, Any] | None = None,
    defs: dg.Definitions | None = None,
    settings: Settings | None = None,
) -> dg.ExecuteInProcessResult:
    """Execute `job_name` (from `defs`, default the Definitions of `settings`, default the process's
    settings); a failed run raises a `CommandError` with its reason."""
    from orchestration.instance import prepare_dagster_home

    prepare_dagster_home(settings or get_settings())
    if defs is None and settings is not None:
        from orchestration.definitions import build_definitions

        defs = build_definitions(settings)
    if defs is None:
        from orchestration.definitions import defs
    job = defs.resolve_job_def(job_name)
    # The run's event log at INFO on the console (step starts and ends, asset logs); DEBUG in the UI.
    config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}, **(run_config or {})}
    with stdout_to_stderr(), dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(run_config=config, instance=instance, raise_on_error=False)
    if not result.success:
        raise CommandError(f"job {job_name} failed (run {result.run_id}): {failure_reason(result)}")
    return result
