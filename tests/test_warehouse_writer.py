"""One writer per warehouse: refreshes started together take turns (real `pricing-ops refresh`
processes on a real PostgreSQL warehouse) and leave the marts a full rebuild makes; a writer that
waits too long gives up in one line naming the run that holds the warehouse; two dbt builds of an
incremental model that do overlap add nothing twice; a warehouse corrupted anyway is reported by
readyz and repaired by `refresh --full-refresh`."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pipeline_dataset as ds
import psycopg
import pytest
from handmade_source import insert_rows
from test_pipeline_embedded import MARTS
from test_pipeline_postgres import pg_mart_rows, write_pg_source

from resources.warehouse import Warehouse, WarehouseLocation
from resources.warehouse_writer import WarehouseBusy, hold_writer_lock

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
ENTRIES = "analytics_staging.stg_raw__pricing_experiment_entries"


def cli_env(data: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DAGSTER_", "PRICING_OPS_", "WAREHOUSE_", "ONBOARDING_EXPORT_"))}
    env.update(DATA_DIR=str(data), **settings)
    return env


def entries(url: str) -> tuple[int, int]:
    """Rows of the payload parser's table, and distinct (event_id, entry_index) among them."""
    with psycopg.connect(url) as conn:
        return conn.execute(
            f"select count(*), count(distinct (event_id, coalesce(entry_index, -1))) from {ENTRIES}"
        ).fetchone()


@pytest.mark.postgres
def test_refreshes_started_together_take_turns_and_leave_the_marts_of_a_full_rebuild(
    make_pg_database, tmp_path, monkeypatch, capfd, dbt_manifest
):
    source_url, warehouse_url = make_pg_database(), make_pg_database()
    write_pg_source(source_url, ds.SOURCE)
    data = tmp_path / "data"
    env = cli_env(data, ONBOARDING_EXPORT_DATABASE_URL=source_url, WAREHOUSE_URL=warehouse_url,
                  WAREHOUSE_WRITER_WAIT="600")
    refresh = [str(BIN / "pricing-ops"), "refresh", "--as-of-date", ds.AS_OF]

    # Two at once, a third one second later: before this, one failed with `relation ... already
    # exists` and two appended the same rows to the payload parser's table.
    procs = [subprocess.Popen(refresh, cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE) for _ in range(2)]
    time.sleep(1)
    procs.append(subprocess.Popen(refresh, cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE))
    outcomes = [(proc.wait(600), proc.stderr.read()) for proc in procs]
    for code, err in outcomes:
        assert code == 0, err[-3000:]
    runs = [re.search(r"refresh done \(run ([0-9a-f-]{36})\)", err).group(1) for _, err in outcomes]
    waited = [err for _, err in outcomes if "is being written by" in err]
    [first] = [run for run, (_, err) in zip(runs, outcomes) if "is being written by" not in err]
    assert len(waited) == 2
    for err in waited:  # each waiter named the run it waited for, and the warehouse (no password)
        assert re.search(
            r"the warehouse postgresql://postgres@127\.0\.0\.1:5432/\w+ \(schema analytics\) is being written by run "
            + first + r" \(job refresh, started \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\); waiting up to 600 s "
            r"\(WAREHOUSE_WRITER_WAIT\) for it to end", err), err[-3000:]
        # After the first, nothing was new: the later runs did not rebuild what it had built.
        assert "marts up to date: nothing new since" in err

    count, distinct = entries(warehouse_url)
    assert count == distinct > 0
    after_together = {mart: pg_mart_rows(warehouse_url, mart) for mart in MARTS}
    conversion = {(r["slug"], r["order_currency"]): (r["order_total"], r["order_count"], r["journey_count"])
                  for r in after_together["experiment_conversion_snapshot"]}
    assert conversion == {k: v[:3] for k, v in ds.CONVERSION.items()}

    # Two dbt builds of the payload parser that do overlap (past the writer lock: a killed run's
    # dbt going on, a build by hand) take turns on its table, and add a new event's entry once. The
    # event's only entry is a reject: the marts do not change.
    _overlapping_builds_add_nothing_twice(source_url, warehouse_url, tmp_path, count)

    # A warehouse corrupted as two unguarded builds left it (a row twice): the refresh fails on the
    # unique test, readyz says so and how to repair it, and the repair makes the marts of a full
    # rebuild, which are those the refreshes started together made.
    from orchestration.cli import main
    from orchestration.settings import get_settings

    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)

    def cli(*args: str) -> tuple[int, str, str]:
        get_settings.cache_clear()
        capfd.readouterr()
        try:
            code = main(list(args))
        finally:
            get_settings.cache_clear()
        out, err = capfd.readouterr()
        return code, out, err

    with psycopg.connect(warehouse_url, autocommit=True) as conn:
        conn.execute(f"insert into {ENTRIES} select * from {ENTRIES} where event_id = 1")
    assert entries(warehouse_url) == (count + 2, count + 1)
    # A refresh tests the rows it wrote; every row is tested by the daily resync, or on demand:
    code, _, err = cli("refresh", "--full-data-tests", "--as-of-date", ds.AS_OF)
    assert code == 1, err[-3000:]
    code, out, err = cli("readyz")
    warehouse = json.loads(out)["components"]["warehouse"]
    assert (code, warehouse["status"], warehouse["ready"]) == (1, "failing", False)
    [failing] = warehouse["failing_tests"]
    assert failing["model"] == "stg_raw__pricing_experiment_entries"
    assert failing["test"].startswith("unique_combination_of_columns_stg_raw__pricing_experiment_entries")
    assert failing["failed_rows"] == 1
    assert warehouse["message"].endswith(
        "duplicate rows (two builds at once?): repair with `pricing-ops refresh --full-refresh`, which rebuilds "
        "every incremental model from the raw tables")
    assert "warehouse failing: dbt tests fail: unique_combination_of_columns_stg_raw__pricing_experiment_entries" in err

    code, _, err = cli("refresh", "--full-refresh", "--as-of-date", ds.AS_OF)
    assert code == 0, err[-3000:]
    assert "(full refresh)" in err and "with every model rebuilt" in err
    assert entries(warehouse_url) == (count + 1, count + 1)
    assert {mart: pg_mart_rows(warehouse_url, mart) for mart in MARTS} == after_together
    code, out, err = cli("readyz")
    assert json.loads(out)["components"]["warehouse"]["status"] == "ok", out


def _overlapping_builds_add_nothing_twice(source_url: str, warehouse_url: str, tmp_path: Path, before: int) -> None:
    from datetime import timedelta

    from assets.dbt import dbt_vars
    from assets.dbt_project import DBT_EXECUTABLE, DBT_PROJECT_DIR, vars_args
    from assets.extract import extract_table
    from models.source_tables import ONBOARDING_JOURNEY_EVENTS
    from orchestration.settings import Settings
    from resources.source import SourceDatabase

    with psycopg.connect(source_url, autocommit=True) as conn:
        # Ingested last (the incremental extract reads it); a slug that is not a string: a reject.
        insert_rows("postgres", conn, "onboarding_journey_events", [ds._event(
            9001, "j1", "2026-11-19T12:00:00Z", [{"slug": 5, "variantKey": "b"}], ingested="2026-11-22T00:00:00Z")])
    warehouse = Warehouse(url=warehouse_url)
    loaded = extract_table(SourceDatabase(database_url=source_url), warehouse, ONBOARDING_JOURNEY_EVENTS,
                           timedelta(minutes=10))
    assert loaded.rows_inserted == 1

    defaults = Settings(_env_file=None)
    variables = dbt_vars(defaults.GUARDRAIL_CRITICAL_GUARDRAIL_FAILURES, defaults.GUARDRAIL_CRITICAL_REPLAY_FAILURES)
    env = {**os.environ, **warehouse.dbt_env(), "PRICING_OPS_AS_OF_DATE": ds.AS_OF}
    with psycopg.connect(warehouse_url) as blocker:
        # Held by this test until both builds wait on the table: they then run as close together
        # as two builds can. SHARE ROW EXCLUSIVE lets them read (and compute their rows) but not write.
        blocker.execute(f"lock table {ENTRIES} in share row exclusive mode")
        builds = [
            subprocess.Popen(
                [DBT_EXECUTABLE, "run", "--select", "stg_raw__pricing_experiment_entries", *vars_args(variables),
                 "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
                 "--target-path", str(tmp_path / f"target{i}"), "--log-path", str(tmp_path / f"logs{i}")],
                cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            )
            for i in range(2)
        ]
        try:
            deadline = time.monotonic() + 300
            with psycopg.connect(warehouse_url, autocommit=True) as watcher:
                while True:
                    waiting = watcher.execute(
                        "select count(*) from pg_locks where not granted and relation = %s::regclass",
                        (ENTRIES,)).fetchone()[0]
                    if waiting == 2:
                        break
                    assert all(b.poll() is None for b in builds), [b.stdout.read()[-2000:] for b in builds]
                    assert time.monotonic() < deadline, "the two builds never both reached the table"
                    time.sleep(0.2)
        finally:
            blocker.rollback()
        outputs = [(b.wait(300), b.stdout.read()) for b in builds]
    for code, out in outputs:
        assert code == 0, out[-3000:]
    count, distinct = entries(warehouse_url)
    assert (count, distinct) == (before + 1, before + 1)


@pytest.mark.postgres
def test_a_writer_that_waits_too_long_on_postgres_names_the_holder(pg_url):
    location = WarehouseLocation.parse(pg_url)
    said: list[str] = []
    holder = "0b7e1f4a-3c5d-4e6f-8a9b-0c1d2e3f4a5b"
    with hold_writer_lock(location, "analytics", holder, 5):
        started = time.monotonic()
        with pytest.raises(WarehouseBusy) as busy, hold_writer_lock(location, "analytics", "second", 1, said.append):
            pass
        assert 0.9 < time.monotonic() - started < 5
        # Another schema on the same database is another warehouse: not held.
        with hold_writer_lock(location, "other_schema", "third", 1):
            pass
    where = f"{location.describe()} (schema analytics)"
    assert said == [(f"the warehouse {where} is being written by run {holder}; waiting up to 1 s "
                     "(WAREHOUSE_WRITER_WAIT) for it to end")]
    assert str(busy.value) == (
        f"the warehouse {where} is being written by run {holder}; gave up after 1 s (WAREHOUSE_WRITER_WAIT): "
        "run this again once that run ends, or raise WAREHOUSE_WRITER_WAIT")
    # Released with its holder: the next writer takes it at once.
    with hold_writer_lock(location, "analytics", "fourth", 0.1):
        pass

    # A session that is not a pricing-ops run is named by its pid.
    from resources.warehouse_writer import LOCK_CLASS, lock_object

    with psycopg.connect(location.dsn, autocommit=True, application_name="psql") as other:
        other.execute("select pg_advisory_lock(%s, %s)", (LOCK_CLASS, lock_object("analytics")))
        pid = other.info.backend_pid
        named = rf"is being written by session pid {pid} \(psql\) on the warehouse server"
        with pytest.raises(WarehouseBusy, match=named), hold_writer_lock(location, "analytics", "fifth", 0.5):
            pass


def test_a_refresh_that_waits_too_long_exits_in_one_line_naming_the_run(tmp_path, monkeypatch, capfd,
                                                                        make_settings, dbt_manifest):
    """On the embedded DuckDB warehouse, `pricing-ops refresh` while another run holds it."""
    from orchestration.cli import main
    from orchestration.instance import prepare_dagster_home
    from orchestration.settings import get_settings

    settings = make_settings()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))
    monkeypatch.setenv("WAREHOUSE_WRITER_WAIT", "1")
    prepare_dagster_home(settings)

    @dg.op
    def build():
        pass

    @dg.job(name="refresh")
    def refresh():
        build()

    with dg.DagsterInstance.get() as instance:  # the holder: a run the Dagster instance knows
        holder = instance.create_run_for_job(job_def=refresh).run_id
    location = WarehouseLocation.parse(settings.warehouse_url)
    get_settings.cache_clear()
    capfd.readouterr()
    try:
        with hold_writer_lock(location, "analytics", holder, 1):
            assert main(["refresh"]) == 1
    finally:
        get_settings.cache_clear()
    last = capfd.readouterr().err.strip().splitlines()[-1]
    assert re.fullmatch(
        r"pricing-ops refresh: job refresh failed \(run [0-9a-f-]{36}\): WarehouseBusy: the warehouse duckdb file "
        + re.escape(str(settings.data_dir / "warehouse.duckdb")) + r" \(schema analytics\) is being written by run "
        + holder + r" \(job refresh, started \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ\); gave up after 1 s "
        r"\(WAREHOUSE_WRITER_WAIT\): run this again once that run ends, or raise WAREHOUSE_WRITER_WAIT", last), last
    # Nothing was extracted: the run stopped before its first step.
    assert not (settings.data_dir / "warehouse.duckdb").exists()
    # The DuckDB lock file names the holder while it is held, nobody once released.
    from resources.warehouse_writer import duckdb_lock_path

    lock = duckdb_lock_path(location.path)
    with hold_writer_lock(location, "analytics", holder, 1):
        assert json.loads(lock.read_text())["run_id"] == holder
    assert lock.read_text() == ""
