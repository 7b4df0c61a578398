"""The Dagster instance the CLI and `dg dev` share: `DAGSTER_HOME` (default under `DATA_DIR`)
with a `dagster.yaml` written from the settings. SQLite storage by default; dagster-postgres for
runs, event logs and schedules when `DAGSTER_POSTGRES_URL` is set (read from the environment at
run time, so the URL never lands in the file).

Run monitoring is on, with a launcher that can tell when a run `pricing-ops` executed has lost its
process (orchestration/dead_runs.py): the daemon marks such a run failed, so it does not hold the
run queue's `warehouse_writer` slot forever.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from orchestration.settings import Settings

if TYPE_CHECKING:
    import dagster as dg

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
# Dagster's launcher (runs in a process of the code server), which can also tell run monitoring
# that a run `pricing-ops` executed lost its process (killed): the daemon then marks it failed.
run_launcher:
  module: orchestration.dead_runs
  class: PricingOpsRunLauncher
run_monitoring:
  enabled: true
  poll_interval_seconds: 15
  # Pool slots still claimed by a run that ended (a killed run's step never released its own).
  free_slots_after_run_end_seconds: 60
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
        # Written beside it and renamed over it: a full disk leaves the old file whole, never half of one.
        partial = config.with_name(f".dagster.yaml.{os.getpid()}")
        try:
            partial.write_text(wanted)
            partial.replace(config)
        finally:
            partial.unlink(missing_ok=True)
    return home


def new_instance(home: Path) -> dg.DagsterInstance:
    """`DagsterInstance.get()` for the prepared `home`, created under a file lock: two commands
    starting at once on a new DAGSTER_HOME would otherwise both create its SQLite tables, and one
    would fail (`table ... already exists`). The caller disposes of it."""
    import fcntl

    import dagster as dg

    with open(home / ".instance-init.lock", "a+") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            return dg.DagsterInstance.get()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


@contextmanager
def open_instance(home: Path) -> Iterator[dg.DagsterInstance]:
    """`new_instance(home)` for the block, disposed of after it."""
    with new_instance(home) as instance:
        yield instance
