"""The Dagster instance the CLI and `dg dev` share: `DAGSTER_HOME` (default under `DATA_DIR`)
with a `dagster.yaml` written from the settings. SQLite storage by default; dagster-postgres for
runs, event logs and schedules when `DAGSTER_POSTGRES_URL` is set (read from the environment at
run time, so the URL never lands in the file)."""

from __future__ import annotations

import os
from pathlib import Path

from orchestration.settings import Settings

_POSTGRES_STORAGE = """\
storage:
  postgres:
    postgres_url:
      env: DAGSTER_POSTGRES_URL
"""

_COMMON = """\
run_queue:
  # One run at a time writes the warehouse (a DuckDB file takes one writer process).
  tag_concurrency_limits:
    - key: dagster/concurrency_key
      value: warehouse_writer
      limit: 1
    # One export at a time (its own lock refuses a second one; this queues it instead).
    - key: dagster/concurrency_key
      value: onboarding_experiment_export
      limit: 1
telemetry:
  enabled: false
"""


def instance_yaml(settings: Settings) -> str:
    header = "# Written by pricing-ops from the settings (orchestration/instance.py); edits are overwritten.\n"
    storage = _POSTGRES_STORAGE if settings.DAGSTER_POSTGRES_URL else ""
    return header + storage + _COMMON


def prepare_dagster_home(settings: Settings) -> Path:
    """Set `DAGSTER_HOME` (unless already set) and write its `dagster.yaml` from the settings."""
    home = Path(os.environ.get("DAGSTER_HOME") or settings.dagster_home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    os.environ["DAGSTER_HOME"] = str(home)
    if settings.DAGSTER_POSTGRES_URL is not None:
        # The URL resolved as every other client resolves it (socket directory, PG* variables,
        # driver suffix): SQLAlchemy's psycopg2 would otherwise fill the gaps its own way.
        from resources.postgres_url import resolve_postgres_url

        url = resolve_postgres_url(settings.DAGSTER_POSTGRES_URL.get_secret_value()).sqlalchemy_url()
        os.environ["DAGSTER_POSTGRES_URL"] = url
    config = home / "dagster.yaml"
    wanted = instance_yaml(settings)
    if not config.exists() or config.read_text() != wanted:
        config.write_text(wanted)
    return home
