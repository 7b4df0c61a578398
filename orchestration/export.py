"""Dagster wiring of the export feature."""

from __future__ import annotations

import dagster as dg

from orchestration.settings import Settings


def definitions(settings: Settings) -> dg.Definitions:
    return dg.Definitions()
