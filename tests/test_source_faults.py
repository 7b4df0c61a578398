"""A PostgreSQL source that misbehaves never hangs a refresh, and the refresh says why in its last line.

- A source table locked (`lock table ... in access exclusive mode` in another session): the read
  waits at most SOURCE_STATEMENT_TIMEOUT, then the run ends with one line naming the table, the
  database (without its password) and who holds the lock.
- SIGTERM to a refresh blocked on that lock: it stops within seconds, says it was interrupted, and
  leaves the warehouse whole (each table of the extract is one transaction: done, or not at all).
- The source connection terminated mid-read (pg_terminate_backend while rows stream into DuckDB):
  that cause, not DuckDB's "Current transaction is aborted" from the cleanup after it.

The refreshes are the real command, started as operators start them; both share one locked source
and run side by side.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import duckdb
import psycopg
import pytest

from models.source_tables import ONBOARDING_JOURNEY_EVENTS, SOURCE_TABLES
from resources.demo_source import write_demo_source
from resources.source import SourceDatabase, SourceReadError
from resources.warehouse import Warehouse

pytestmark = pytest.mark.postgres

PRICING_OPS = Path(sys.executable).parent / "pricing-ops"
PASSWORD = "src-Pa55word-e4"
EVENTS = 2_000
LOCKED = "onboarding_journey_events"


def _with_password(url: str) -> str:
    return url.replace("postgres@", f"postgres:{quote(PASSWORD, safe='')}@")  # trust auth: any password


def _waiting_on_lock(admin: psycopg.Connection, dbname: str, holder_pid: int) -> list[int]:
    """Backends of `dbname` that wait for a lock (other than the session holding it)."""
    return [pid for (pid,) in admin.execute(
        "select pid from pg_stat_activity where datname = %s and wait_event_type = 'Lock' and pid <> %s",
        (dbname, holder_pid)).fetchall()]


def _raw_counts(path: Path) -> dict[str, int]:
    with duckdb.connect(str(path), read_only=True) as conn:
        return {t.name: conn.execute(f"select count(*) from analytics_raw.{t.name}").fetchone()[0]
                for t in SOURCE_TABLES}


def test_a_locked_source_ends_in_one_line_within_the_timeout_and_sigterm_stops_a_refresh_cleanly(pg_url, tmp_path, dbt_manifest):
    dbname = pg_url.rsplit("/", 1)[1]
    write_demo_source(events=EVENTS, seed=3, postgres_url=pg_url, progress=lambda _: None)
    with psycopg.connect(pg_url, autocommit=True) as pg:
        source_counts = {t.name: pg.execute(f"select count(*) from {t.name}").fetchone()[0] for t in SOURCE_TABLES}
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "PRICING_OPS_"))}
    base["ONBOARDING_EXPORT_DATABASE_URL"] = _with_password(pg_url)

    with psycopg.connect(pg_url) as holder, psycopg.connect(pg_url, autocommit=True) as admin:
        holder.execute("set application_name = 'lock-holder'")
        holder.execute(f"lock table {LOCKED} in access exclusive mode")  # held until rollback
        holder_pid = holder.info.backend_pid
        ended: dict[str, float] = {}  # seconds from both being blocked to each one's exit
        processes = {}
        for name, extra in (("timeout", {"SOURCE_STATEMENT_TIMEOUT": "2"}), ("sigterm", {})):
            env = {**base, **extra, "DATA_DIR": str(tmp_path / name)}
            processes[name] = subprocess.Popen([str(PRICING_OPS), "refresh"], cwd=tmp_path, env=env, text=True,
                                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            # Wait until both refreshes are blocked reading the locked table (after the three
            # tables before it in the extract).
            deadline = time.monotonic() + 240
            while len(_waiting_on_lock(admin, dbname, holder_pid)) < 2 and processes["timeout"].poll() is None:
                assert time.monotonic() < deadline, "the refreshes never reached the locked table"
                time.sleep(0.1)
            blocked_at = time.monotonic()
            processes["sigterm"].send_signal(signal.SIGTERM)
            outputs = {}
            readers = [threading.Thread(target=lambda n=name, p=process: outputs.__setitem__(n, p.communicate()))
                       for name, process in processes.items()]
            for reader in readers:
                reader.start()
            while len(ended) < len(processes) and time.monotonic() < blocked_at + 120:
                ended.update({name: time.monotonic() - blocked_at for name, process in processes.items()
                              if name not in ended and process.poll() is not None})
                time.sleep(0.05)
            for reader in readers:
                reader.join(timeout=30)
            still_waiting = _waiting_on_lock(admin, dbname, holder_pid)
        finally:
            for process in processes.values():
                if process.poll() is None:
                    process.kill()
                    process.communicate()
        holder.rollback()

    timed_out, terminated = processes["timeout"], processes["sigterm"]
    timeout_err, term_err = outputs["timeout"][1], outputs["sigterm"][1]
    # SIGTERM: out within seconds of the signal, with the interruption as the last line.
    assert terminated.returncode == 1, term_err[-3000:]
    assert ended["sigterm"] < 10, ended
    last = term_err.strip().splitlines()[-1]
    assert last.startswith("pricing-ops refresh: job refresh interrupted (run "), last
    assert last.endswith("interrupted by SIGTERM in step extract_source; the write in flight was rolled back, "
                         "no table is half-written: run it again to finish"), last
    # The timeout: the statement gave up 2 s after it began to wait (before `blocked_at`), the run
    # ended right after; its last line names the table, the database (no password) and the lock's holder.
    assert timed_out.returncode == 1, timeout_err[-3000:]
    assert ended["timeout"] < 2 + 8, ended
    last = timeout_err.strip().splitlines()[-1]
    assert last.startswith("pricing-ops refresh: job refresh failed (run "), last
    assert last.endswith(
        f"reading source table public.{LOCKED} on postgresql://postgres@127.0.0.1:5432/{dbname} timed out after "
        f"2 s (SOURCE_STATEMENT_TIMEOUT): the table is locked by another session (pid {holder_pid} (lock-holder) "
        "holds AccessExclusiveLock; see pg_locks); end that session or wait for it"), last
    assert still_waiting == []  # neither left a statement behind on the source
    for out, err in outputs.values():
        assert PASSWORD not in out + err and quote(PASSWORD, safe="") not in out + err
        assert "Traceback" not in err

    # Nothing half-written: each table read before the lock is whole, the locked one (and the one
    # after it) has nothing; no dbt ran, so no mart exists.
    expected = {name: (source_counts[name] if name in ("fulfillment_providers", "orders", "onboarding_journeys")
                       else 0) for name in source_counts}
    for name in ("timeout", "sigterm"):
        path = tmp_path / name / "warehouse.duckdb"
        assert _raw_counts(path) == expected, name
        with duckdb.connect(str(path), read_only=True) as conn:
            assert conn.execute("select count(*) from information_schema.tables "
                                "where table_schema = 'analytics'").fetchone()[0] == 0


def test_a_connection_terminated_mid_read_gives_that_cause(pg_url, tmp_path):
    """The events are read through a view that pads each row to ~2 kB and pauses at one row far past
    the first Arrow batch (16 MB), so DuckDB is inserting streamed rows when the server terminates
    the connection."""
    dbname = pg_url.rsplit("/", 1)[1]
    write_demo_source(events=12_000, seed=3, postgres_url=pg_url, progress=lambda _: None)
    with psycopg.connect(pg_url, autocommit=True) as pg:
        pg.execute("create schema slow")
        pg.execute("create function slow.pause_at(i bigint) returns boolean language plpgsql volatile as "
                   "$$ begin if i = 11000 then perform pg_sleep(60); end if; return true; end $$")
        for table in SOURCE_TABLES:
            if table.name == ONBOARDING_JOURNEY_EVENTS.name:
                pg.execute("create view slow.onboarding_journey_events as select id, journey_id, event_type, "
                           "payload || jsonb_build_object('pad', repeat('x', 2000)) as payload, recorded_at, "
                           "ingested_at from public.onboarding_journey_events where slow.pause_at(id) order by id")
            else:
                pg.execute(f"create view slow.{table.name} as select * from public.{table.name}")
    source = SourceDatabase(database_url=_with_password(pg_url), schema_name="slow")
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
    terminated: list[int] = []

    def terminate_the_paused_read() -> None:
        with psycopg.connect(pg_url, autocommit=True) as admin:
            deadline = time.monotonic() + 60
            while not terminated and time.monotonic() < deadline:
                for (pid,) in admin.execute("select pid from pg_stat_activity where datname = %s "
                                            "and wait_event = 'PgSleep'", (dbname,)).fetchall():
                    admin.execute("select pg_terminate_backend(%s)", (pid,))
                    terminated.append(pid)
                time.sleep(0.05)

    killer = threading.Thread(target=terminate_the_paused_read)
    killer.start()
    try:
        from assets.extract import extract_table

        with pytest.raises(SourceReadError) as failed:
            extract_table(source, warehouse, ONBOARDING_JOURNEY_EVENTS, timedelta(minutes=10))
    finally:
        killer.join()
    assert len(terminated) == 1
    assert str(failed.value) == (
        f"reading source table slow.onboarding_journey_events on postgresql://postgres@127.0.0.1:5432/{dbname} "
        "failed: the source server terminated the connection (terminating connection due to administrator "
        "command: pg_terminate_backend from another session, or a server shutdown); run the refresh again once "
        "it is back")
    # The error the stream raised inside DuckDB's insert is the cause, not the cleanup's after it
    # ("TransactionContext Error: Current transaction is aborted").
    assert "terminating connection due to administrator command" in str(failed.value.__cause__)
    assert PASSWORD not in str(failed.value)
    # The rows DuckDB had taken in before the cut were rolled back with the rest.
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as conn:
        assert conn.execute("select count(*) from analytics_raw.onboarding_journey_events").fetchone()[0] == 0
