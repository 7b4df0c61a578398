"""`pricing-ops readyz` under faults: a locked source or warehouse table (PostgreSQL), a DuckDB
warehouse another process holds, a full disk, a warehouse or Dagster storage that is down. It
answers within READYZ_TIMEOUT, always prints its JSON, says what is wrong in one stderr line, and
nothing else."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest
from digests_helpers import create_all_marts, duckdb_warehouse
from handmade_source import create_source, write_duckdb_source

from resources.warehouse import Warehouse

BIN = Path(sys.executable).parent
TIMEOUT = 3  # READYZ_TIMEOUT in these tests, seconds
# Settings, the resources and the JSON on top of the timeout, on a machine shared with other tests
# (before, a locked table held readyz for as long as the lock was held).
GRACE = 10


@pytest.fixture
def readyz(tmp_path, monkeypatch, capfd):
    """`pricing-ops readyz` in this process with the given settings: (exit code, JSON report, stderr
    lines, seconds taken). Run on a thread: a readyz that hangs fails the test instead of hanging it."""
    from orchestration.settings import get_settings

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "data" / "dagster_home"))
    monkeypatch.setenv("READYZ_TIMEOUT", str(TIMEOUT))

    # Imported before the clock starts: a first import is not what is timed.
    import assets.readiness  # noqa: F401
    import orchestration.commands.digests  # noqa: F401

    def run(**env: str):
        from orchestration.cli import main

        for name, value in env.items():
            monkeypatch.setenv(name, value)
        get_settings.cache_clear()
        capfd.readouterr()
        outcome: dict = {}
        started = time.monotonic()
        thread = threading.Thread(target=lambda: outcome.update(code=main(["readyz"])), daemon=True)
        thread.start()
        thread.join(TIMEOUT + GRACE + 30)
        took = time.monotonic() - started
        get_settings.cache_clear()
        assert not thread.is_alive(), f"readyz still running after {took:.0f} s"
        out, err = capfd.readouterr()
        return outcome["code"], json.loads(out), [line for line in err.splitlines() if line.strip()], took

    return run


def statuses(report: dict) -> dict[str, str]:
    return {name: c["status"] for name, c in report["components"].items()}


@pytest.mark.postgres
def test_a_locked_source_table_is_reported_within_the_timeout(readyz, make_pg_database, tmp_path):
    source_url = make_pg_database()
    with psycopg.connect(source_url, autocommit=True) as conn:
        create_source("postgres", conn)
    warehouse = duckdb_warehouse(tmp_path / "data" / "warehouse.duckdb")
    create_all_marts(warehouse)
    with psycopg.connect(source_url) as locker:
        locker.execute("lock table orders in access exclusive mode")
        code, report, err, took = readyz(ONBOARDING_EXPORT_DATABASE_URL=source_url,
                                         WAREHOUSE_URL=warehouse.url)
    assert code == 1
    assert took < TIMEOUT + GRACE, took
    source = report["components"]["source"]
    assert (source["status"], source["ready"], source["locked_tables"]) == ("locked", False, ["orders"])
    assert re.fullmatch(r"source tables locked by another session \(not readable within [\d.]+ s\): orders; an "
                        r"extract would wait for them \(see pg_locks on the source\)", source["message"]), source
    assert statuses(report)["warehouse"] == "ok"
    assert len(err) == 1 and err[0].startswith("pricing-ops readyz: not ready: "), err
    assert "source locked: source tables locked by another session" in err[0]


@pytest.mark.postgres
def test_a_locked_warehouse_table_is_reported_within_the_timeout(readyz, make_pg_database, tmp_path):
    warehouse = Warehouse(url=make_pg_database(), schema_name="analytics")
    create_all_marts(warehouse)
    write_duckdb_source(tmp_path / "data" / "demo_source.duckdb", {})
    with psycopg.connect(warehouse.url) as locker:
        locker.execute("lock table analytics.onboarding_pricing_experiment_segments in access exclusive mode")
        code, report, err, took = readyz(WAREHOUSE_URL=warehouse.url)
    assert code == 1
    assert took < TIMEOUT + GRACE, took
    found = statuses(report)
    assert (found["warehouse"], found["source"], found["export"], found["guardrails"]) == (
        "ok", "ok", "never_run", "never_run")
    marts = report["components"]["marts_freshness"]
    assert marts["status"] == "locked" and not marts["ready"]
    assert marts["message"].startswith(
        f"a table it reads is locked by another session (no lock within {TIMEOUT} s, READYZ_TIMEOUT): "
        "LockNotAvailable: canceling statement due to lock timeout")
    assert len(err) == 1 and "marts_freshness locked: a table it reads is locked" in err[0], err


def test_a_duckdb_warehouse_another_process_holds_is_reported_within_the_timeout(readyz, tmp_path):
    path = tmp_path / "data" / "warehouse.duckdb"
    create_all_marts(duckdb_warehouse(path))
    write_duckdb_source(tmp_path / "data" / "demo_source.duckdb", {})
    holder = subprocess.Popen(
        [sys.executable, "-c", ("import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); "
                                "print('held', flush=True); time.sleep(120)"), str(path)],
        stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        code, report, err, took = readyz(WAREHOUSE_URL=f"duckdb:///{path}")
    finally:
        holder.kill()
        holder.wait()
    assert code == 1
    assert took < TIMEOUT + GRACE, took
    warehouse = report["components"]["warehouse"]
    assert warehouse["status"] == "error"
    assert re.fullmatch(
        rf"cannot query the warehouse: RuntimeError: warehouse file {re.escape(str(path))} is locked by another "
        r"process for over \d+s; wait for the running job to finish \(one DuckDB writer at a time\) or use a "
        r"PostgreSQL WAREHOUSE_URL", warehouse["message"]), warehouse["message"]
    assert len(err) == 1, err


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["postgres", "duckdb"])
def test_a_warehouse_that_is_down_gives_one_line_and_no_spurious_errors(readyz, tmp_path, kind):
    with socket.socket() as probe:  # a port nobody listens on: connection refused, as a stopped server
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    if kind == "postgres":
        url = f"postgresql://postgres@127.0.0.1:{port}/warehouse"
    else:  # a file that is not a DuckDB database
        garbage = tmp_path / "data" / "warehouse.duckdb"
        garbage.parent.mkdir(parents=True)
        garbage.write_bytes(b"not a database" * 1000)
        url = f"duckdb:///{garbage}"
    write_duckdb_source(tmp_path / "data" / "demo_source.duckdb", {})
    code, report, err, took = readyz(WAREHOUSE_URL=url)
    assert code == 1 and took < TIMEOUT + GRACE
    assert statuses(report)["warehouse"] == "error"
    assert {s for name, s in statuses(report).items() if name not in ("warehouse", "source")} == {"error"}
    # One line: what is not ready and why. No logger's ERROR line, no "closed database".
    assert len(err) == 1 and err[0].startswith("pricing-ops readyz: not ready: warehouse error: cannot query"), err


def test_readyz_prints_its_json_when_dagster_storage_is_down(tmp_path):
    """DAGSTER_POSTGRES_URL names a server that is down: dagster-postgres retries it for longer than
    READYZ_TIMEOUT. The report says so, in time (a process of its own: the retry goes on after)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data = tmp_path / "data"
    create_all_marts(duckdb_warehouse(data / "warehouse.duckdb"))
    write_duckdb_source(data / "demo_source.duckdb", {})
    env = _env(data, DAGSTER_POSTGRES_URL=f"postgresql://postgres@127.0.0.1:{port}/dagster")
    started = time.monotonic()
    out = subprocess.run([str(BIN / "pricing-ops"), "readyz"], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120, check=False)
    took = time.monotonic() - started
    assert out.returncode == 1, out.stderr[-2000:]
    report = json.loads(out.stdout)
    instance = report["components"]["dagster_instance"]
    assert instance["status"] == "error" and not report["ready"]
    assert instance["message"].startswith(f"cannot open the Dagster instance at {data / 'dagster_home'}: ")
    assert took < 30, took  # before: a crash with no JSON after dagster-postgres's retries
    assert out.stderr.strip().splitlines()[-1].startswith("pricing-ops readyz: not ready: ")


def _env(data: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DAGSTER_", "PRICING_OPS_", "WAREHOUSE_", "ONBOARDING_EXPORT_"))}
    env.update(DATA_DIR=str(data), DAGSTER_HOME=str(data / "dagster_home"), READYZ_TIMEOUT=str(TIMEOUT), **extra)
    return env


def _can_mount_tmpfs() -> bool:
    if not shutil.which("unshare"):
        return False
    probe = subprocess.run(["unshare", "-m", "sh", "-c", "mount -t tmpfs -o size=1m tmpfs /mnt"],
                           capture_output=True, check=False)
    return probe.returncode == 0


FULL_DISK = """
set -e
mount -t tmpfs -o size=40m tmpfs "$FULL"
cp -a "$PREPARED/." "$FULL/"
# Fill what is left: every write from here on fails with ENOSPC.
dd if=/dev/zero of="$FULL/filler" bs=1M 2>/dev/null || true
exec "$PRICING_OPS" readyz > "$OUT" 2> "$FULL/readyz.err"
"""


@pytest.mark.postgres
@pytest.mark.parametrize("kind", ["duckdb", "postgres"])
def test_readyz_prints_its_json_on_a_full_disk(tmp_path, monkeypatch, make_pg_database, kind):
    """DATA_DIR (Dagster's storage, the DuckDB warehouse, stderr's file) on a tmpfs filled to the
    last byte, in a mount namespace of the readyz process's own."""
    if not _can_mount_tmpfs():
        pytest.skip("mounting a tmpfs needs root or user namespaces (unshare -m)")
    full, prepared = tmp_path / "full", tmp_path / "prepared"
    full.mkdir()
    pg_url = make_pg_database() if kind == "postgres" else None
    # A data folder as `pricing-ops` leaves it (Dagster's storage, the warehouse, the demo source),
    # made beside, then copied onto the disk that fills up.
    create_all_marts(Warehouse(url=pg_url or f"duckdb:///{prepared / 'warehouse.duckdb'}", schema_name="analytics"))
    write_duckdb_source(prepared / "demo_source.duckdb", {})
    from orchestration.instance import new_instance, prepare_dagster_home
    from orchestration.settings import Settings

    monkeypatch.setenv("DAGSTER_HOME", str(prepared / "dagster_home"))
    new_instance(prepare_dagster_home(Settings(_env_file=None, DATA_DIR=prepared))).dispose()
    env = _env(full, WAREHOUSE_URL=pg_url or f"duckdb:///{full / 'warehouse.duckdb'}")
    out = tmp_path / "readyz.json"
    script = {**env, "FULL": str(full), "PREPARED": str(prepared), "OUT": str(out),
              "PRICING_OPS": str(BIN / "pricing-ops")}
    done = subprocess.run(["unshare", "-m", "sh", "-c", FULL_DISK], cwd=tmp_path, env=script,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 1, done.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["ready"] is False
    instance = report["components"]["dagster_instance"]
    assert instance["status"] == "error"
    assert "bytes free on its disk" in instance["message"], instance
    assert report["components"]["source"]["status"] == "ok"
