"""Shared resources, built from the settings once. Secrets reach resources as `EnvVar` so the UI
never shows them; a value with a computed default (the DuckDB path) is passed as a plain string.

Feature wiring modules (`orchestration/<feature>.py`) add resources only they use; the ones here
are used by several features and are added to the `Definitions` once, in `definitions.py`.
"""

from __future__ import annotations

import os
from typing import Any

from dagster import EnvVar

from orchestration.settings import Settings, secret
from resources.slack import SlackNotifier
from resources.source import SourceDatabase
from resources.warehouse import Warehouse
from resources.warehouse_writer import WarehouseWriter


def env_or_value(name: str, value: Any, resolved: bool = False) -> Any:
    """`EnvVar(name)` when the variable is set in the environment (the UI shows the name, not the
    value), else the value the settings hold (a computed default, or one given in code by tests).
    `resolved`: the value itself, for a resource used outside a run (no Dagster instance to resolve
    an `EnvVar` with; the settings read the same variable)."""
    return EnvVar(name) if os.environ.get(name) and not resolved else value


def build_warehouse(settings: Settings, resolved: bool = False) -> Warehouse:
    return Warehouse(
        url=env_or_value("WAREHOUSE_URL", settings.warehouse_url, resolved),
        schema_name=settings.WAREHOUSE_SCHEMA,
        state_url=env_or_value("STATE_DATABASE_URL", secret(settings.STATE_DATABASE_URL), resolved),
    )


def build_warehouse_writer(settings: Settings, resolved: bool = False) -> WarehouseWriter:
    return WarehouseWriter(
        url=env_or_value("WAREHOUSE_URL", settings.warehouse_url, resolved),
        schema_name=settings.WAREHOUSE_SCHEMA,
        state_url=env_or_value("STATE_DATABASE_URL", secret(settings.STATE_DATABASE_URL), resolved),
        wait_seconds=settings.WAREHOUSE_WRITER_WAIT.total_seconds(),
    )


def build_source(settings: Settings, resolved: bool = False) -> SourceDatabase:
    return SourceDatabase(
        database_url=env_or_value(
            "ONBOARDING_EXPORT_DATABASE_URL", secret(settings.ONBOARDING_EXPORT_DATABASE_URL), resolved
        ),
        demo_path=str(settings.demo_source_path),
        api_base_url=settings.ONBOARDING_EXPORT_API_BASE_URL,
        api_key=env_or_value("CHECKOUT_API_KEY", secret(settings.CHECKOUT_API_KEY), resolved),
        schema_name=settings.SOURCE_SCHEMA,
        statement_timeout_seconds=settings.SOURCE_STATEMENT_TIMEOUT.total_seconds(),
    )


def build_slack(settings: Settings, resolved: bool = False) -> SlackNotifier:
    return SlackNotifier(
        bot_token=env_or_value("SLACK_BOT_TOKEN", secret(settings.SLACK_BOT_TOKEN), resolved),
        channel=settings.SLACK_CHANNEL,
        api_base_url=settings.SLACK_API_BASE_URL,
        webhook_url=env_or_value("SLACK_WEBHOOK_URL", secret(settings.SLACK_WEBHOOK_URL), resolved),
        outbox_dir=str(settings.outbox_dir),
    )


def shared_resources(settings: Settings) -> dict[str, Any]:
    """Resources several features use, keyed by the name assets and sensors ask for."""
    return {
        "warehouse": build_warehouse(settings),
        # Held for the whole run by every run that builds warehouse tables (one writer at a time).
        "warehouse_writer": build_warehouse_writer(settings),
        "source": build_source(settings),
        "slack": build_slack(settings),
    }
