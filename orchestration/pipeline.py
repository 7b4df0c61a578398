"""Dagster wiring of the pipeline: extract assets, dbt assets, refresh schedule, asset checks."""

from __future__ import annotations

import dagster as dg

from orchestration.settings import Settings


def definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions()
