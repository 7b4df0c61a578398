"""Runs the CLI executes in its own process, recorded as runs of the code location the UI loads.

`dg dev` / `dagster dev` load `orchestration.definitions` as the code location `pricing_ops`
(pyproject.toml: `[tool.dg.project]` and `[tool.dagster]`, workspace.yaml). A run made by
`job.execute_in_process` carries no job origin, so the UI cannot place it: no history on the job's
page, no place on the timeline, a warning on Re-execute. `execute_in_location` creates the run as
the webserver would (remote job origin `<job>` in `__repository__@pricing_ops`, and the Python
origin a run worker would load) and then executes it in this process, as `execute_in_process` does.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg

# The code location's name, as pyproject.toml gives it to `dg dev` and `dagster dev` (a test keeps
# them equal).
CODE_LOCATION_NAME = "pricing_ops"
DEFINITIONS_MODULE = "orchestration.definitions"
DEFINITIONS_ATTRIBUTE = "defs"
# The folder the code location is loaded from (the module's package root).
WORKING_DIRECTORY = str(Path(__file__).resolve().parent.parent)


def remote_job_origin(job_name: str):
    """The origin the webserver gives a run of `job_name` launched from the UI."""
    from dagster._core.definitions.repository_definition.valid_definitions import SINGLETON_REPOSITORY_NAME
    from dagster._core.remote_origin import RemoteJobOrigin, RemoteRepositoryOrigin
    from dagster._core.workspace.load import location_origin_from_module_name

    location = location_origin_from_module_name(
        DEFINITIONS_MODULE, None, WORKING_DIRECTORY, location_name=CODE_LOCATION_NAME,
        executable_path=sys.executable,
    )
    return RemoteJobOrigin(RemoteRepositoryOrigin(location, SINGLETON_REPOSITORY_NAME), job_name)


def job_python_origin(job_name: str):
    """Where a run worker would load `job_name` from (the Definitions of `orchestration.definitions`)."""
    from dagster._core.definitions.reconstruct import ReconstructableRepository
    from dagster._core.origin import JobPythonOrigin

    repository = ReconstructableRepository.for_module(DEFINITIONS_MODULE, DEFINITIONS_ATTRIBUTE, WORKING_DIRECTORY)
    return JobPythonOrigin(job_name, repository.get_python_origin())


def create_location_run(
    job: dg.JobDefinition,
    run_config: Mapping[str, Any],
    instance: dg.DagsterInstance,
    tags: Mapping[str, str] | None = None,
    ephemeral: dg.JobDefinition | None = None,
    plan=None,
):
    """A NOT_STARTED run of `job` as the webserver creates one: under the code location's job
    origin, so the UI places it and the daemon's queue can launch it (`instance.submit_run`)."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.api import create_execution_plan
    from dagster._core.execution.execute_in_process import merge_run_tags

    ephemeral = ephemeral or job.as_ephemeral_job(resource_defs={}, input_values={})
    if plan is None:
        plan = create_execution_plan(InMemoryJob(job_def=ephemeral), run_config=run_config,
                                     instance_ref=instance.get_ref())
    run_tags = merge_run_tags(job, None, tags, None, instance, run_config)
    return instance.create_run_for_job(
        job_def=ephemeral,
        run_config=run_config,
        tags={**ephemeral.run_tags, **run_tags},
        execution_plan=plan,
        remote_job_origin=remote_job_origin(job.name),
        job_code_origin=job_python_origin(job.name),
    )


def execute_in_location(
    job: dg.JobDefinition,
    run_config: Mapping[str, Any],
    instance: dg.DagsterInstance,
    tags: Mapping[str, str] | None = None,
) -> dg.ExecuteInProcessResult:
    """`job.execute_in_process(run_config, instance, raise_on_error=False)`, with the run recorded
    under the code location's job origin.

    The steps mirror Dagster 1.13's `core_execute_in_process` (pinned with the Dagster family); the
    only difference is the two origins handed to `create_run_for_job`."""
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.api import (
        ExecuteRunWithPlanIterable,
        create_execution_plan,
        job_execution_iterator,
    )
    from dagster._core.execution.context_creation_job import (
        PlanOrchestrationContextManager,
        orchestration_context_event_generator,
    )

    # In-process executor and an in-memory IO manager for undeclared outputs, as execute_in_process.
    ephemeral = job.as_ephemeral_job(resource_defs={}, input_values={})
    wrapped = InMemoryJob(job_def=ephemeral)
    plan = create_execution_plan(wrapped, run_config=run_config, instance_ref=instance.get_ref())
    run = create_location_run(job, run_config, instance, tags, ephemeral, plan)
    output_capture: dict = {}
    events = list(
        ExecuteRunWithPlanIterable(
            execution_plan=plan,
            iterator=job_execution_iterator,
            execution_context_manager=PlanOrchestrationContextManager(
                context_event_generator=orchestration_context_event_generator,
                job=wrapped,
                execution_plan=plan,
                dagster_run=run,
                instance=instance,
                run_config=run_config,
                executor_defs=None,
                output_capture=output_capture,
                raise_on_error=False,
            ),
        )
    )
    return dg.ExecuteInProcessResult(
        job_def=ephemeral,
        event_list=events,
        dagster_run=instance.get_run_by_id(run.run_id),
        output_capture=output_capture,
    )
