"""Assembles the `Definitions` from each feature's wiring (`orchestration/<feature>.py`).

`orchestration/definitions.py` builds the whole of it once for `dg dev` and the tests. A command
that runs a job building nothing from dbt (an export, a digest, an operator follow-up) assembles it
without the pipeline (`with_dbt=False`): no dbt import, no dbt project, the same jobs of the same
code location; the marts it reads are only asset keys then (`assets/dbt_keys.py`).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import dagster as dg
from dagster._record import copy

from orchestration import digests, export, guardrails
from orchestration.resources import shared_resources
from orchestration.settings import Settings

# Jobs whose runs build nothing from dbt: `pricing-ops` runs them on the Definitions without it.
JOBS_WITHOUT_DBT = frozenset(
    {"onboarding_experiment_export", "automation_slack_digest", "weekly_digest_email", "guardrail_operator_followup"}
)

# Who answers for the assets written in Python, by asset group (the dbt models' owners come from
# their dbt groups, dbt_project/models/groups.yml, the same teams).
OWNERS_BY_GROUP = {
    "extract": ["data-platform@smplat.local"],
    "export": ["data-platform@smplat.local"],
    "marts": ["analytics@smplat.local"],  # experiment_health / experiment_results beside the dbt marts
    "guardrails": ["concierge-ops@smplat.local"],
    "digests": ["concierge-ops@smplat.local"],
    "bi": ["analytics@smplat.local"],  # the dashboards and the copy Superset reads
}


def _with_owner(spec: dg.AssetSpec) -> dg.AssetSpec:
    if spec.owners or spec.group_name not in OWNERS_BY_GROUP:
        return spec
    return spec.replace_attributes(owners=OWNERS_BY_GROUP[spec.group_name])


def with_code_references(defs: dg.Definitions, settings: Settings) -> dg.Definitions:
    """Every asset links to the Python function that computes it (dbt models to their SQL too): in
    the editor from `dg dev`, or on the repository's web page when CODE_REFERENCES_GIT_URL is set."""
    assets = dg.with_source_code_references(list(defs.assets or []))
    if settings.CODE_REFERENCES_GIT_URL:
        assets = dg.link_code_references_to_git(
            assets,
            git_url=settings.CODE_REFERENCES_GIT_URL,
            git_branch=settings.CODE_REFERENCES_GIT_BRANCH,
            file_path_mapping=dg.AnchorBasedFilePathMapping(
                local_file_anchor=Path(__file__), file_anchor_path_in_repository="orchestration/assembly.py"
            ),
        )
    # Definitions is a record: the same object with its assets swapped (as its own map_asset_specs does).
    return copy(defs, assets=assets)


def build_definitions(settings: Settings, with_dbt: bool = True) -> dg.Definitions:
    with warnings.catch_warnings():
        # Code references are a beta API of Dagster 1.13: a notice per asset at every load otherwise.
        warnings.simplefilter("ignore", dg.BetaWarning)
        parts = [
            guardrails.definitions(settings),
            export.definitions(settings),
            digests.definitions(settings),
            dg.Definitions(resources=shared_resources(settings)),
        ]
        if with_dbt:
            from orchestration import bi, pipeline, run_alerts

            dbt_models, dbt_project = pipeline.build_dbt_models(settings)
            parts += [
                pipeline.definitions(settings, dbt_models, dbt_project),
                bi.definitions(settings, dbt_project),
                run_alerts.definitions(settings),
            ]
        return with_code_references(dg.Definitions.merge(*parts).map_asset_specs(func=_with_owner), settings)
