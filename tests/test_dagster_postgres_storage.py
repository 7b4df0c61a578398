"""`DAGSTER_POSTGRES_URL` puts Dagster's runs, event logs and schedules in PostgreSQL: the instance
the CLI and `dagster dev` share (orchestration/instance.py) records a run there, not in SQLite."""

from __future__ import annotations

import dagster as dg
import psycopg
import pytest
from conftest import socket_url

from orchestration.instance import prepare_dagster_home

pytestmark = pytest.mark.postgres


@dg.op
def count_to_three() -> int:
    return 3


@dg.job
def storage_probe():
    count_to_three()


@pytest.mark.parametrize("connection", ["tcp", "socket"])
def test_a_run_is_recorded_in_postgres_storage(pg_url, make_settings, tmp_path, monkeypatch, connection):
    home = tmp_path / "dagster_home"
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    # The socket form leaves host and port to libpq's defaults, and the driver to SQLAlchemy.
    storage_url = (socket_url(pg_url, "bare").replace("postgresql:///", "postgresql+psycopg://postgres@/")
                   if connection == "socket" else pg_url)
    monkeypatch.setenv("DAGSTER_POSTGRES_URL", storage_url)  # dagster.yaml reads it from the environment
    settings = make_settings(DAGSTER_POSTGRES_URL=storage_url)

    assert prepare_dagster_home(settings) == home.resolve()
    config = (home / "dagster.yaml").read_text()
    assert "postgres_url:\n      env: DAGSTER_POSTGRES_URL" in config
    assert pg_url not in config  # the URL (a secret) is never written down

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PostgresEventLogStorage"
        assert type(instance.schedule_storage).__name__ == "PostgresScheduleStorage"
        result = storage_probe.execute_in_process(instance=instance, tags={"pricing_ops/test": "storage"})
        assert result.success and result.output_for_node("count_to_three") == 3

    with psycopg.connect(pg_url) as conn:
        runs = conn.execute("select run_id, pipeline_name, status from runs").fetchall()
        assert runs == [(result.run_id, "storage_probe", "SUCCESS")]
        events = dict(conn.execute(
            "select dagster_event_type, count(*) from event_logs where run_id = %s "
            "and dagster_event_type is not null group by 1", (result.run_id,),
        ).fetchall())
        assert events["PIPELINE_SUCCESS"] == 1 and events["STEP_OUTPUT"] == 1
        tags = conn.execute("select key, value from run_tags where run_id = %s and key = 'pricing_ops/test'",
                            (result.run_id,)).fetchall()
        assert tags == [("pricing_ops/test", "storage")]
        schedule_tables = {name for (name,) in conn.execute(
            "select table_name from information_schema.tables where table_schema = 'public'").fetchall()}
        assert {"instigators", "jobs", "job_ticks"} <= schedule_tables
    # Nothing went to the SQLite default under DAGSTER_HOME (only compute logs are files there).
    assert not (home / "history").exists() and not (home / "schedules").exists()
    assert not list(home.rglob("*.db"))
