"""The one `Definitions` object: `dg dev` (pyproject.toml's `[tool.dg.project]`), `dagster dev`
(workspace.yaml, `[tool.dagster]`) and the tests load it.

Each feature wires itself in `orchestration/<feature>.py` (assets, jobs, schedules, sensors and the
resources only it uses); `orchestration/assembly.py` puts them together with the shared resources.
"""

from __future__ import annotations

import dagster as dg

from orchestration.assembly import build_definitions
from orchestration.log_hygiene import install_log_hygiene
from orchestration.settings import get_settings
from resources.interrupts import install_signal_watcher

__all__ = ["build_definitions", "defs"]


def _load() -> dg.Definitions:
    settings = get_settings()
    # `dg dev`'s code server and run workers import this module: their logs are redacted too.
    install_log_hygiene(settings)
    # A run worker told to stop (terminated from the UI, its pod stopped) stops within seconds even
    # while a driver blocks (resources/interrupts.py); a no-op off the main thread.
    install_signal_watcher()
    return build_definitions(settings)


defs = _load()
