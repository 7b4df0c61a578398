"""One writer per warehouse: a lock a run holds from its first step to its last, whoever started it
(`pricing-ops`, a schedule, a sensor, the UI).

On PostgreSQL (and on Spark, in its STATE_DATABASE_URL) it is a session advisory lock, keyed by the warehouse schema, on a connection of its
own named `pricing-ops run <run id>` (`application_name`), so `pg_stat_activity` and a waiting
writer can name the run that holds it. On DuckDB, whose file takes one writing process at a time
but only while a connection is open (a run's steps open and close theirs), it is an exclusive
`flock` on a file beside the warehouse holding the run's id. Either goes with the process: a run
killed with SIGKILL releases it (its connection or file descriptor closes).

A second writer waits up to `wait_seconds` (WAREHOUSE_WRITER_WAIT), saying once whom it waits
for, then fails in one line naming the run that holds the lock.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import time
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from dagster import ConfigurableResource, InitResourceContext
from pydantic import Field

from resources.warehouse import Warehouse, WarehouseLocation

# pg_advisory_lock(class, object): the class says "pricing-ops warehouse writer", the object the
# schema (two warehouses may share a database under different WAREHOUSE_SCHEMA).
LOCK_CLASS = zlib.crc32(b"pricing_ops.warehouse_writer") & 0x7FFFFFFF
APPLICATION_NAME_PREFIX = "pricing-ops run "
_RUN_ID = re.compile(r"pricing-ops run ([0-9a-f-]{36})")
POLL_SECONDS = 0.5


class WarehouseBusy(RuntimeError):
    """Another run held the warehouse for longer than this writer may wait."""


def lock_object(schema: str) -> int:
    return zlib.crc32(schema.encode()) & 0x7FFFFFFF


def duckdb_lock_path(warehouse_path: Path) -> Path:
    """The file a DuckDB warehouse's writer holds (beside the warehouse file)."""
    return warehouse_path.with_name(warehouse_path.name + ".writer-lock")


@contextmanager
def hold_writer_lock(
    location: WarehouseLocation,
    schema: str,
    run_id: str,
    wait_seconds: float,
    say: Callable[[str], None] = lambda _: None,
    describe_run: Callable[[str], str] = lambda run_id: f"run {run_id}",
) -> Iterator[None]:
    """Hold the writer lock of the warehouse at `location` (schema `schema`) for the block, as run
    `run_id`; wait up to `wait_seconds` for another holder (`say` tells whom, once), else raise
    `WarehouseBusy` naming it (`describe_run` turns a holder's run id into words)."""
    where = f"{location.describe()} (schema {schema})"
    hold = _hold_postgres if location.kind == "postgres" else _hold_duckdb
    with hold(location, schema, run_id, wait_seconds, where, say, describe_run):
        yield


def _busy(where: str, holder: str, wait_seconds: float) -> WarehouseBusy:
    return WarehouseBusy(
        f"the warehouse {where} is being written by {holder}; gave up after {wait_seconds:g} s "
        "(WAREHOUSE_WRITER_WAIT): run this again once that run ends, or raise WAREHOUSE_WRITER_WAIT"
    )


def _waiting(where: str, holder: str, wait_seconds: float) -> str:
    return (f"the warehouse {where} is being written by {holder}; waiting up to {wait_seconds:g} s "
            "(WAREHOUSE_WRITER_WAIT) for it to end")


# PostgreSQL ---------------------------------------------------------------------------------------
@contextmanager
def _hold_postgres(location, schema, run_id, wait_seconds, where, say, describe_run) -> Iterator[None]:
    import psycopg

    key = (LOCK_CLASS, lock_object(schema))
    conn = psycopg.connect(
        location.dsn or "", autocommit=True, application_name=f"{APPLICATION_NAME_PREFIX}{run_id}",
        # The lock lives as long as this idle connection: keep it from being dropped as dead.
        keepalives=1, keepalives_idle=30, keepalives_interval=10, keepalives_count=3,
    )
    try:
        if not conn.execute("select pg_try_advisory_lock(%s, %s)", key).fetchone()[0]:
            if _pg_holder_run(conn, key) == run_id:  # a step process of this very run (multiprocess executor)
                yield
                return
            say(_waiting(where, _pg_holder(conn, key, describe_run), wait_seconds))
            try:
                # Waits in the server's lock queue (first come, first served), bounded.
                conn.execute(f"set lock_timeout = {max(1, int(wait_seconds * 1000))}")
                conn.execute("select pg_advisory_lock(%s, %s)", key)
            except psycopg.errors.LockNotAvailable:
                raise _busy(where, _pg_holder(conn, key, describe_run), wait_seconds) from None
            conn.execute("reset lock_timeout")
        yield
    finally:
        conn.close()  # the session ends: its advisory locks go with it


def _pg_holder_row(conn, key: tuple[int, int]) -> tuple[int, str | None] | None:
    return conn.execute(
        "select a.pid, a.application_name from pg_locks l join pg_stat_activity a on a.pid = l.pid "
        "where l.locktype = 'advisory' and l.granted and l.objsubid = 2 "
        "and l.database = (select oid from pg_database where datname = current_database()) "
        "and l.classid = %s::bigint::oid and l.objid = %s::bigint::oid",
        key,
    ).fetchone()


def _pg_holder_run(conn, key: tuple[int, int]) -> str | None:
    row = _pg_holder_row(conn, key)
    match = _RUN_ID.fullmatch((row[1] or "") if row else "")
    return match.group(1) if match else None


def _pg_holder(conn, key: tuple[int, int], describe_run: Callable[[str], str]) -> str:
    """Who holds the writer lock: a pricing-ops run by its id, or another session by its pid."""
    row = _pg_holder_row(conn, key)
    if row is None:
        return "another run (it has just ended)"
    pid, application_name = row
    match = _RUN_ID.fullmatch(application_name or "")
    if match:
        return describe_run(match.group(1))
    return f"session pid {pid} ({application_name or 'no application_name'}) on the warehouse server"


# DuckDB -------------------------------------------------------------------------------------------
@contextmanager
def _hold_duckdb(location, schema, run_id, wait_seconds, where, say, describe_run) -> Iterator[None]:
    import fcntl

    assert location.path is not None
    path = duckdb_lock_path(location.path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        if not _try_flock(fd):
            if _file_holder_run(path) == run_id:  # a step process of this very run (multiprocess executor)
                yield
                return
            say(_waiting(where, _file_holder(path, describe_run), wait_seconds))
            deadline = time.monotonic() + wait_seconds
            while not _try_flock(fd):
                if time.monotonic() >= deadline:
                    raise _busy(where, _file_holder(path, describe_run), wait_seconds)
                time.sleep(POLL_SECONDS)
        holder = {"run_id": run_id, "pid": os.getpid(), "host": socket.gethostname(),
                  "since": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode(), 0)
        except OSError:  # a full disk: the lock holds all the same, a waiter just cannot name the run
            pass
        try:
            yield
        finally:
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)  # nobody holds it: a waiter reading now names no stale run
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _try_flock(fd: int) -> bool:
    import fcntl

    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


def _file_holder_run(path: Path) -> str | None:
    try:
        holder = json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return None
    return str(holder["run_id"]) if holder.get("run_id") else None


def _file_holder(path: Path, describe_run: Callable[[str], str]) -> str:
    run_id = _file_holder_run(path)
    return describe_run(run_id) if run_id else f"another process (lock file {path})"


# The resource -------------------------------------------------------------------------------------
class WarehouseWriter(ConfigurableResource):
    """The warehouse's one-writer lock, held for a whole run by every run that builds warehouse
    tables (extract, dbt models, experiment statistics): a second writer waits up to
    `wait_seconds`, then fails naming the run that holds it."""

    url: str = Field(description="The warehouse: duckdb:///path.duckdb, postgresql://... or sc://... (secret: set via EnvVar)")
    schema_name: str = Field(default="analytics", description="Marts schema (WAREHOUSE_SCHEMA): the lock is per schema")
    state_url: str | None = Field(
        default=None,
        description="STATE_DATABASE_URL beside a Spark warehouse: the lock is held there (secret)",
    )
    wait_seconds: float = Field(
        default=600.0, description="How long a second writer waits for the run holding the lock (WAREHOUSE_WRITER_WAIT)"
    )

    @contextmanager
    def yield_for_execution(self, context: InitResourceContext) -> Iterator[WarehouseWriter]:
        run = context.run
        if run is None:  # built outside a run (a test's build_resources): nothing to hold
            yield self
            return
        instance = context.instance

        def describe_run(run_id: str) -> str:
            return describe_holder_run(instance, run_id)

        def say(message: str) -> None:
            context.log.info(message)

        with hold_writer_lock(
            WarehouseLocation.parse(self.url, self.state_url), self.schema_name, run.run_id, self.wait_seconds, say, describe_run
        ):
            yield self


def describe_holder_run(instance, run_id: str) -> str:
    """`run <id> (job <name>, started <instant>Z)`, from the Dagster instance when it knows the run."""
    try:
        record = instance.get_run_record_by_id(run_id) if instance is not None else None
    except Exception:  # noqa: BLE001 - naming the holder must not fail the wait
        record = None
    if record is None:
        return f"run {run_id}"
    started = record.start_time or record.create_timestamp.timestamp()
    at = datetime.fromtimestamp(started, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return f"run {run_id} (job {record.dagster_run.job_name}, started {at})"


def writer_lock_of(warehouse: Warehouse, wait_seconds: float = 600.0) -> WarehouseWriter:
    """The writer lock of `warehouse` as a resource (the assets that build tables require it)."""
    return WarehouseWriter(url=warehouse.url, schema_name=warehouse.schema_name, state_url=warehouse.state_url,
                           wait_seconds=wait_seconds)
