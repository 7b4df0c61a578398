"""The file sink (NDJSON, CSV, Parquet), the file cursor store (bare ISO replay, unreadable cursor,
limit), the `pricing-ops export` command, and the same bytes from a Postgres warehouse."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from export_helpers import (
    COLUMNS,
    LOAD_2,
    SEGMENTS_DDL,
    bulk_segments_duckdb,
    create_segments_duckdb,
    expected_order,
    mart_rows,
)

from assets.export import ExportFailed, run_export
from models.export_rows import to_export_row
from orchestration import cli
from orchestration.export import export_resources
from orchestration.resources import build_warehouse
from orchestration.settings import get_settings


@pytest.fixture
def files_env(make_settings, tmp_path):
    path = tmp_path / "warehouse.duckdb"
    rows = mart_rows()
    create_segments_duckdb(path, rows)
    settings = make_settings(WAREHOUSE_URL=f"duckdb:///{path}", ONBOARDING_EXPORT_BATCH_SIZE=10)
    return settings, rows


def export(settings, run_id: str, **kwargs):
    resources = export_resources(settings)
    return run_export(warehouse=build_warehouse(settings), sinks=resources["export_sinks"],
                      cursor_store=resources["export_cursor"], run_id=run_id, **kwargs)


def batch_files(settings, suffix: str) -> list[Path]:
    return sorted(p for p in settings.export_dir.iterdir() if p.name.endswith(suffix))


def test_ndjson_files_one_per_batch_hold_every_row_in_order(files_env):
    settings, rows = files_env
    record = export(settings, "run-nd")
    files = batch_files(settings, ".ndjson")
    assert [f.name for f in files] == [
        f"onboarding_segments_{record.started_at.strftime('%Y%m%dT%H%M%S%fZ')}_run-nd_{n:08d}.ndjson" for n in (1, 2, 3)
    ]
    lines = [line for f in files for line in f.read_text(encoding="utf-8").splitlines()]
    assert [json.loads(line) for line in lines] == [to_export_row(r) for r in expected_order(rows)]
    assert [len(f.read_text().splitlines()) for f in files] == [10, 10, 5]
    assert not [p for p in settings.export_dir.iterdir() if p.name.endswith(".tmp")]


def test_csv_and_parquet_carry_the_same_values(files_env):
    settings, rows = files_env
    export(settings, "run-csv", fmt="csv")
    first = batch_files(settings, ".csv")[0].read_text(encoding="utf-8").splitlines()
    assert first[0] == (
        '"eventId","journeyId","orderId","orderNumber","slug","variantKey","variantName","isControl",'
        '"assignmentStrategy","featureFlagKey","status","recordedAt","orderTotal","orderCurrency","loyaltyProjectionPoints"'
    )
    assert first[1] == '1,"j-1","o-1","SO-00001","spring-offer","b","Spring 15% off",false,"random_split",,"active",' \
        '"2026-11-01T00:00:01.000000Z","1.50","USD",1'
    assert first[3] == '3,"j-3","o-3","SO-00003","Spring","b","Quoted ""name""'  # the quoted name goes on
    assert first[4] == 'and a newline",false,"random_split",,"active","2026-11-01T00:00:03.000000Z","0.00","USD",3'

    settings.export_cursor_path.unlink()
    export(settings, "run-parquet", fmt="parquet")
    table = pq.read_table(batch_files(settings, ".parquet")[0])
    assert str(table.schema.field("recordedAt").type) == "timestamp[us, tz=UTC]"
    assert str(table.schema.field("orderTotal").type) == "decimal128(38, 2)"
    got = table.to_pylist()
    assert got[0]["recordedAt"] == datetime(2026, 11, 1, 0, 0, 1, tzinfo=UTC)
    assert got[0]["orderTotal"] == Decimal("1.50") and got[0]["isControl"] is False
    assert [(r["eventId"], r["slug"]) for r in got] == [
        (r["event_id"], r["slug"]) for r in expected_order(rows)[:10]]


def test_a_hand_edited_bare_timestamp_replays_from_that_instant(files_env):
    settings, _ = files_env
    export(settings, "run-1")
    settings.export_cursor_path.write_text("2026-11-26T09:15:00Z\n")  # what the runbook tells people to do
    record = export(settings, "run-replay")
    assert record.cursor_before.is_bare and record.rows_exported == 11
    replayed = [json.loads(line) for f in batch_files(settings, ".ndjson") if "_run-replay_" in f.name
                for line in f.read_text().splitlines()]
    assert [r["eventId"] for r in replayed] == [5, *range(13, 23)]
    cursor = json.loads(settings.export_cursor_path.read_text())
    assert (cursor["cursor"], cursor["lastEventId"], cursor["rowsExported"]) == (
        LOAD_2.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), 22, 11)


def test_an_unreadable_cursor_fails_clearly_and_is_left_as_it_is(files_env):
    settings, _ = files_env
    settings.export_cursor_path.parent.mkdir(parents=True, exist_ok=True)
    settings.export_cursor_path.write_text('{"cursor": "2026-11-26T09:15:00Z", "lastEventId": "x"')
    with pytest.raises(ExportFailed) as info:
        export(settings, "run-bad-cursor")
    error = info.value.record.error
    assert error.startswith(f"export cursor {settings.export_cursor_path} is not valid JSON")
    assert "2026-11-26T09:00:00Z" in error and "never restarts from zero" in error
    assert info.value.record.rows_exported == 0
    assert not settings.export_dir.exists() or not list(settings.export_dir.iterdir())
    assert settings.export_cursor_path.read_text() == '{"cursor": "2026-11-26T09:15:00Z", "lastEventId": "x"'


def test_limit_stops_after_n_rows_and_the_next_run_goes_on(files_env):
    settings, rows = files_env
    first = export(settings, "run-a", limit=13)
    second = export(settings, "run-b")
    assert (first.rows_exported, first.batches, second.rows_exported, second.batches) == (13, 2, 12, 2)
    lines = [json.loads(line) for f in batch_files(settings, ".ndjson") for line in f.read_text().splitlines()]
    assert lines == [to_export_row(r) for r in expected_order(rows)]


def test_reading_in_windows_smaller_than_the_table_changes_nothing(files_env, make_settings, tmp_path):
    settings, rows = files_env
    resources = export_resources(settings)
    record = run_export(warehouse=build_warehouse(settings), sinks=resources["export_sinks"],
                        cursor_store=resources["export_cursor"], run_id="run-w", window_rows=4)
    assert record.batches == 3
    lines = [json.loads(line) for f in batch_files(settings, ".ndjson") for line in f.read_text().splitlines()]
    assert lines == [to_export_row(r) for r in expected_order(rows)]


def run_cli(monkeypatch, settings, *args: str) -> int:
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))
    monkeypatch.setenv("WAREHOUSE_URL", settings.WAREHOUSE_URL.get_secret_value())
    monkeypatch.setenv("ONBOARDING_EXPORT_BATCH_SIZE", "10")
    get_settings.cache_clear()
    try:
        return cli.main(["export", *args])
    finally:
        get_settings.cache_clear()


def test_pricing_ops_export_runs_the_job_and_reports_in_one_line(files_env, monkeypatch, capsys):
    settings, _ = files_env
    assert run_cli(monkeypatch, settings, "--format", "csv", "--limit", "12") == 0
    out, err = capsys.readouterr()
    outcome = json.loads(out)
    assert (outcome["rows"], outcome["batches"]) == (12, 2)
    assert "exported 12 rows in 2 batches to files in" in err
    assert len(batch_files(settings, ".csv")) == 2
    assert not (settings.data_dir / "onboarding_export.lock").exists()  # no stale lock file after a run

    import dagster as dg

    with dg.DagsterInstance.get() as instance:  # recorded where `dagster dev` looks
        run = instance.get_run_by_id(outcome["runId"])
        assert run.job_name == "onboarding_experiment_export" and run.tags["export/rows"] == "12"

    settings.export_cursor_path.write_text("not a cursor")
    assert run_cli(monkeypatch, settings) == 1
    _, err = capsys.readouterr()
    last = err.strip().splitlines()[-1]
    assert last.startswith("pricing-ops export: job onboarding_experiment_export failed (run ")
    assert "): export cursor " in last
    assert "is not an ISO 8601 instant" in last

    assert run_cli(monkeypatch, settings, "--sink", "webhook", "--format", "csv") == 1
    assert "the webhook sink sends NDJSON batches" in capsys.readouterr().err


@pytest.mark.postgres
def test_a_postgres_warehouse_exports_the_same_bytes_as_duckdb(files_env, pg_url, make_settings, tmp_path):
    import psycopg
    from conftest import socket_url

    settings, rows = files_env
    export(settings, "run-duck")
    duck_lines = [f.read_bytes() for f in batch_files(settings, ".ndjson")]

    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("create schema analytics")
        conn.execute(SEGMENTS_DDL.format(schema="analytics"))
        with conn.cursor() as cur:
            cur.executemany(
                f"insert into analytics.onboarding_pricing_experiment_segments ({', '.join(COLUMNS)}) "
                f"values ({', '.join('%s' for _ in COLUMNS)})",
                [[r[c] for c in COLUMNS] for r in rows],
            )
    pg_settings = make_settings(WAREHOUSE_URL=pg_url, ONBOARDING_EXPORT_BATCH_SIZE=10, DATA_DIR=tmp_path / "pg")
    record = export(pg_settings, "run-pg")
    assert record.rows_exported == 25
    assert [f.read_bytes() for f in batch_files(pg_settings, ".ndjson")] == duck_lines
    assert json.loads(pg_settings.export_cursor_path.read_text())["cursor"] == LOAD_2.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # The same warehouse over the local socket: the same bytes.
    on_socket = make_settings(WAREHOUSE_URL=socket_url(pg_url), ONBOARDING_EXPORT_BATCH_SIZE=10, DATA_DIR=tmp_path / "sock")
    assert export(on_socket, "run-pg-socket").rows_exported == 25
    assert [f.read_bytes() for f in batch_files(on_socket, ".ndjson")] == duck_lines

    for fmt in ("csv", "parquet"):
        export(settings, f"duck-{fmt}", fmt=fmt, cursor_override="2026-01-01T00:00:00Z")
        export(pg_settings, f"pg-{fmt}", fmt=fmt, cursor_override="2026-01-01T00:00:00Z")
        duck = [f for f in batch_files(settings, f".{fmt}")]
        pg = [f for f in batch_files(pg_settings, f".{fmt}")]
        if fmt == "csv":
            assert [f.read_bytes() for f in pg] == [f.read_bytes() for f in duck]
        else:
            assert [pq.read_table(f).to_pylist() for f in pg] == [pq.read_table(f).to_pylist() for f in duck]
            assert [pq.read_table(f).schema for f in pg] == [pq.read_table(f).schema for f in duck]

    # A second export from the Postgres warehouse finds nothing new.
    assert export(pg_settings, "run-pg-2").rows_exported == 0


@pytest.mark.parametrize(("window_rows", "batch_size", "limit"), [(7, 5, 83), (250, 40, 333), (10_000, 1000, None)])
def test_runs_of_any_size_over_windows_of_any_size_export_every_row_once_in_order(
    make_settings, tmp_path, window_rows, batch_size, limit
):
    """Loads interleave event ids (late commits) and every third row is an event's second slug, so
    windows, batches and run limits fall inside loads and between an event's slugs."""
    path = tmp_path / "bulk.duckdb"
    bulk_segments_duckdb(path, 600, loads=4)
    with duckdb.connect(str(path), read_only=True) as conn:
        expected = conn.execute(
            "select event_id, slug from analytics.onboarding_pricing_experiment_segments order by loaded_at, event_id, slug"
        ).fetchall()
    settings = make_settings(WAREHOUSE_URL=f"duckdb:///{path}", ONBOARDING_EXPORT_BATCH_SIZE=batch_size)
    resources = export_resources(settings)
    runs = 0
    while True:
        record = run_export(warehouse=build_warehouse(settings), sinks=resources["export_sinks"],
                            cursor_store=resources["export_cursor"], run_id=f"run-{runs:03d}", limit=limit,
                            window_rows=window_rows)
        runs += 1
        if record.rows_exported == 0:
            break
    lines = [json.loads(line) for f in batch_files(settings, ".ndjson") for line in f.read_text().splitlines()]
    assert [(r["eventId"], r["slug"]) for r in lines] == expected
    assert runs == (-(-600 // limit) + 1 if limit else 2)


def test_the_job_runs_on_its_schedule_in_utc_and_is_queued_one_at_a_time(make_settings):
    import dagster as dg

    from orchestration import export as wiring
    from orchestration.resources import shared_resources

    settings = make_settings(ONBOARDING_EXPORT_CRON="*/20 * * * *")
    own = wiring.definitions(settings)
    assert set(own.resources) == {"export_sinks", "export_cursor", "export_notifier"}
    defs = dg.Definitions.merge(own, dg.Definitions(resources=shared_resources(settings)))
    schedule = defs.resolve_schedule_def("onboarding_experiment_export_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone, schedule.job_name) == (
        "*/20 * * * *", "UTC", "onboarding_experiment_export")
    job = defs.resolve_job_def("onboarding_experiment_export")
    assert job.tags["dagster/concurrency_key"] == "onboarding_experiment_export"


@pytest.mark.postgres
def test_on_a_postgres_warehouse_exports_from_other_hosts_are_refused_too(pg_url, make_settings, tmp_path):
    from assets.export_run import _warehouse_lock
    from resources.export_cursor import ExportBusyError

    here = make_settings(WAREHOUSE_URL=pg_url, DATA_DIR=tmp_path / "host-a")
    there = make_settings(WAREHOUSE_URL=pg_url, DATA_DIR=tmp_path / "host-b")  # another lock file
    resources = export_resources(there)
    store = resources["export_cursor"].model_copy(update={"lock_wait_seconds": 0.5})
    with _warehouse_lock(build_warehouse(here), 0), pytest.raises(ExportBusyError, match="another host"):
        run_export(warehouse=build_warehouse(there), sinks=resources["export_sinks"], cursor_store=store,
                   run_id="run-b")
    assert not there.export_cursor_path.exists()
