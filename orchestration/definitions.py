"""The one `Definitions` object: `dagster dev` (via workspace.yaml), the CLI and the tests load it.

Each feature wires itself in `orchestration/<feature>.py` (assets, jobs, schedules, sensors and the
resources only it uses); shared resources are added once here.
"""

from __future__ import annotations

import dagster as dg

from orchestration import bi, digests, export, guardrails, pipeline
from orchestration.log_hygiene import install_log_hygiene
from orchestration.resources import shared_resources
from orchestration.settings import Settings, get_settings


def build_definitions(settings: Settings) -> dg.Definitions:
    dbt_models, dbt_project = pipeline.build_dbt_models(settings)
    return dg.Definitions.merge(
        pipeline.definitions(settings, dbt_models, dbt_project),
        guardrails.definitions(settings),
        export.definitions(settings, dbt_models),
        digests.definitions(settings, dbt_models),
        bi.definitions(settings, dbt_project),
        dg.Definitions(resources=shared_resources(settings)),
    )


def _load() -> dg.Definitions:
    settings = get_settings()
    # `dagster dev`'s code server and run workers import this module: their logs are redacted too.
    install_log_hygiene(settings)
    return build_definitions(settings)


defs = _load()
