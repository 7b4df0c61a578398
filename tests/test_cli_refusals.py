"""Bad settings and arguments are refused before any work, in one line that names the setting (or
argument) and the fix; a refused value never reaches SQL (the injected statement never runs)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import duckdb
import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent
PRICING_OPS = Path(sys.executable).parent / "pricing-ops"


@pytest.fixture
def cli(tmp_path, monkeypatch, capfd):
    """Run `pricing-ops` in this process with the given environment; returns (exit code, stdout,
    stderr lines)."""
    from orchestration.settings import get_settings

    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.chdir(tmp_path)  # no .env of the checkout

    def run(args: list[str], **env: str) -> tuple[int, str, list[str]]:
        from orchestration.cli import main

        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        capfd.readouterr()
        try:
            code = main(args)
        finally:
            get_settings.cache_clear()
            for name in env:
                monkeypatch.delenv(name)
        out, err = capfd.readouterr()
        return code, out, [line for line in err.splitlines() if line.strip()]

    return run


BAD_SETTINGS = [
    ({"EXTRACT_LOOKBACK": "-PT10M"}, "setting EXTRACT_LOOKBACK must be a positive duration"),
    ({"EXTRACT_LOOKBACK": "PT0S"}, "setting EXTRACT_LOOKBACK must be a positive duration"),
    ({"WAREHOUSE_SCHEMA": "analytics; drop table x"}, "setting WAREHOUSE_SCHEMA must be a plain identifier"),
    ({"WAREHOUSE_SCHEMA": "a" * 100}, "setting WAREHOUSE_SCHEMA is 100 characters; at most 55"),
    ({"WAREHOUSE_SCHEMA": "Analytics"}, "setting WAREHOUSE_SCHEMA must be a plain identifier (lower-case"),
    ({"SOURCE_SCHEMA": 'pg_catalog"."pg_sleep"(4), "public'}, "setting SOURCE_SCHEMA must be a plain identifier"),
    ({"ONBOARDING_EXPORT_BATCH_SIZE": "0"}, "setting ONBOARDING_EXPORT_BATCH_SIZE must be at least 1"),
    ({"REFRESH_CRON": "every day"}, "setting REFRESH_CRON: 'every day' is not a cron expression"),
    ({"EXTRACT_RESYNC_CRON": "61 3 * * *"}, "setting EXTRACT_RESYNC_CRON: '61 3 * * *' is not a cron expression"),
    ({"ONBOARDING_EXPORT_CRON": "0 25 * * *"}, "setting ONBOARDING_EXPORT_CRON:"),
    ({"AUTOMATION_DIGEST_CRON": "x"}, "setting AUTOMATION_DIGEST_CRON:"),
    ({"WEEKLY_DIGEST_CRON": "0 9 * * 8"}, "setting WEEKLY_DIGEST_CRON:"),
    ({"WAREHOUSE_URL": "bogus://x"}, "setting WAREHOUSE_URL: unsupported scheme 'bogus'"),
    ({"ONBOARDING_EXPORT_DATABASE_URL": "mysql://u:hunter2@db/x"}, "setting ONBOARDING_EXPORT_DATABASE_URL: not a PostgreSQL URL"),
    ({"EXPERIMENT_CORRECTION": "bonferroni"}, "setting EXPERIMENT_CORRECTION must be holm (default), bh or none"),
    ({"EXPERIMENT_TARGET_MDE": "0"}, "setting EXPERIMENT_TARGET_MDE must be a relative lift above 0"),
    ({"SOURCE_STATEMENT_TIMEOUT": "0"}, "setting SOURCE_STATEMENT_TIMEOUT must be a duration of at least 1 second"),
]


@pytest.mark.parametrize(("env", "message"), BAD_SETTINGS, ids=[next(iter(e)) + str(i) for i, (e, _) in enumerate(BAD_SETTINGS)])
def test_a_bad_setting_is_refused_in_one_line_before_any_run(cli, tmp_path, env, message):
    code, _out, err = cli(["refresh"], **env)
    assert code == 2
    assert len(err) == 1 and err[0].startswith("pricing-ops refresh: " + message), err
    assert "hunter2" not in err[0]
    assert not (tmp_path / "dagster_home" / "history").exists()  # no run was started
    assert not (tmp_path / "data" / "warehouse.duckdb").exists()


def test_readyz_is_not_ready_with_a_bad_setting(cli):
    import json

    code, out, err = cli(["readyz"], REFRESH_CRON="every day")
    assert code == 2 and json.loads(out)["ready"] is False
    assert err == [("pricing-ops readyz: setting REFRESH_CRON: 'every day' is not a cron expression; "
                    "set five fields, e.g. '0 3 * * *' (UTC)")]


def test_an_injected_warehouse_schema_never_runs_its_drop(cli, tmp_path):
    warehouse = tmp_path / "wh.duckdb"
    with duckdb.connect(str(warehouse)) as conn:
        conn.execute("create table x (a int)")
    code, _, err = cli(["refresh"], WAREHOUSE_URL=f"duckdb:///{warehouse}", WAREHOUSE_SCHEMA="analytics; drop table x")
    assert code == 2 and "WAREHOUSE_SCHEMA" in err[0]
    with duckdb.connect(str(warehouse)) as conn:
        assert conn.execute("select count(*) from information_schema.tables where table_name = 'x'").fetchone()[0] == 1


@pytest.mark.postgres
def test_an_injected_source_schema_never_runs_its_call(cli, pg_url):
    """The issue's value, pointed at a function with a visible effect instead of pg_sleep."""
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute("create table canary (called_at timestamptz)")
        conn.execute("create function public.canary() returns int language sql as "
                     "'insert into canary values (now()); select 1'")
    code, _, err = cli(["refresh"], ONBOARDING_EXPORT_DATABASE_URL=pg_url, SOURCE_SCHEMA='public"."canary"(), "public')
    assert code == 2 and err[0].startswith("pricing-ops refresh: setting SOURCE_SCHEMA must be a plain identifier")
    with psycopg.connect(pg_url) as conn:
        assert conn.execute("select count(*) from canary").fetchone()[0] == 0


def test_an_as_of_date_that_is_not_a_date_is_refused_before_any_work(cli, tmp_path):
    code, _, err = cli(["refresh", "--as-of-date", "yesterday"])
    assert code == 1
    assert err == [("pricing-ops refresh: --as-of-date 'yesterday' is not a date; give YYYY-MM-DD (a UTC date), "
                    "e.g. 2026-12-01")]
    assert not (tmp_path / "data" / "warehouse.duckdb").exists()


def test_a_failed_run_says_its_root_cause_in_one_line_and_no_traceback_without_v(tmp_path):
    """The real command: the last line is the cause (not Dagster's step wrapper); stderr carries no
    stack trace unless -v, and -v sets PRICING_OPS_VERBOSE for what it starts."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "PRICING_OPS_"))}
    env.update({"DATA_DIR": str(tmp_path / "data"),
                "ONBOARDING_EXPORT_DATABASE_URL": "postgresql://postgres:pw%40secret@127.0.0.1:1/nowhere"})
    done = subprocess.run([str(PRICING_OPS), "refresh"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=300, check=False)
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("pricing-ops refresh: job refresh failed (run ")
    assert "step extract_source: adbc_driver_manager.OperationalError: IO: [libpq] Failed to connect" in last
    assert "DagsterExecutionStepExecutionError" not in last
    assert "Traceback" not in done.stderr and "Stack Trace:" not in done.stderr and '  File "' not in done.stderr
    assert "pw@secret" not in done.stderr + done.stdout and "pw%40secret" not in done.stderr + done.stdout


def test_a_second_writer_on_the_duckdb_file_is_told_in_one_line(tmp_path):
    """Another process holds the warehouse file (a refresh running): the second says so, naming the
    file and what to do, instead of a driver's lock error."""
    from resources.warehouse import Warehouse

    path = tmp_path / "wh.duckdb"
    holder = subprocess.Popen(
        [sys.executable, "-c", (f"import duckdb, sys; c = duckdb.connect({str(path)!r}); print('held', flush=True); "
                                "sys.stdin.read()")], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        warehouse = Warehouse(url=f"duckdb:///{path}", duckdb_lock_wait_seconds=0.5)
        with pytest.raises(RuntimeError) as busy, warehouse.connect():
            pass
    finally:
        holder.communicate("", timeout=30)
    message = str(busy.value)
    assert "\n" not in message
    assert message.startswith(f"warehouse file {path} is locked by another process for over 0s; wait for the running job")
    assert "WAREHOUSE_URL" in message
