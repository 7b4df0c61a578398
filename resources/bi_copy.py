"""The read-only copy of the marts that BI reads on a DuckDB warehouse (contract section 11).

DuckDB lets one process hold a file for writing, and a reader blocks the writer: a dashboard
holding `warehouse.duckdb` would fail the next refresh, and a refresh would break the dashboard.
So BI never opens the warehouse: each refresh that changed a mart or an experiment table writes
their rows into a new file beside the copy, flushes it to disk and renames it over
`DATA_DIR/bi/marts.duckdb` (`os.replace`: atomic). A reader that has the old copy open keeps
reading the old file until it closes it; the next connection opens the new one.

What the copy was made from is a fingerprint of the tables' contents (row count and the sum of a
hash of every row, per table) kept beside it: a refresh whose tables hash the same publishes
nothing.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from resources.warehouse import Warehouse

COPY_NAME = "marts.duckdb"


@dataclass(frozen=True)
class PublishResult:
    path: Path
    published: bool  # False: the copy already held these contents
    rows: dict[str, int]  # rows per table, as copied (or as the unchanged copy holds them)
    missing: tuple[str, ...]  # tables not built yet (left out of the copy)


def copy_path(data_dir: Path) -> Path:
    return data_dir / "bi" / COPY_NAME


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def fingerprint(warehouse: Warehouse, tables: Sequence[str]) -> dict[str, list | None]:
    """[row count, sum of row hashes] of each table in the marts schema (None when not built)."""
    out: dict[str, list | None] = {}
    with warehouse.connect(read_only=True) as conn:
        for table in tables:
            if not conn.table_exists(warehouse.schema, table):
                out[table] = None
                continue
            count, hashed = conn.fetchone(
                f"select count(*), cast(sum(hash(t)) as varchar) from {warehouse.schema}.{table} as t")
            out[table] = [int(count), hashed]
    return out


def publish_bi_copy(
    warehouse: Warehouse,
    target: Path,
    tables: Sequence[str],
    log: Callable[[str], None] = lambda _message: None,
    force: bool = False,
) -> PublishResult:
    """`target` holds exactly `tables` of the warehouse's marts schema (same schema name), replaced
    atomically when their contents changed since the last publish (or with `force`)."""
    if warehouse.kind != "duckdb":
        raise ValueError(f"the BI copy is for a DuckDB warehouse; {warehouse.describe()} is read by BI directly")
    stamp = fingerprint(warehouse, tables)
    built = [table for table in tables if stamp[table] is not None]
    missing = tuple(table for table in tables if stamp[table] is None)
    rows = {table: stamp[table][0] for table in built}
    previous = _read_stamp(target)
    if not force and target.exists() and previous == stamp:
        return PublishResult(target, False, rows, missing)
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = target.with_name(f".{target.name}.{uuid.uuid4().hex[:8]}")
    try:
        _write_copy(warehouse, scratch, built)
        _fsync(scratch)
        os.replace(scratch, target)
        _fsync_dir(target.parent)
    finally:
        scratch.unlink(missing_ok=True)
        scratch.with_name(scratch.name + ".wal").unlink(missing_ok=True)
    # Written after the copy: a crash in between leaves the old stamp, so the next refresh publishes.
    _write_stamp(target, stamp)
    log(f"BI copy published: {target} ({len(built)} tables, {sum(rows.values())} rows)")
    return PublishResult(target, True, rows, missing)


def _write_copy(warehouse: Warehouse, scratch: Path, tables: Sequence[str]) -> None:
    import duckdb

    schema = warehouse.schema
    source = str(warehouse.location.path).replace("'", "''")
    conn = duckdb.connect(str(scratch))
    try:
        conn.execute("set TimeZone = 'UTC'")
        conn.execute(f"attach '{source}' as warehouse (read_only)")
        conn.execute(f"create schema {schema}")
        for table in tables:
            # Same column types (decimals stay decimals), rows in the warehouse's order.
            conn.execute(f"create table {schema}.{table} as select * from warehouse.{schema}.{table}")
        conn.execute("detach warehouse")
        conn.execute("checkpoint")
    finally:
        conn.close()


def _read_stamp(target: Path) -> dict | None:
    try:
        return json.loads(_stamp_path(target).read_text())
    except (FileNotFoundError, ValueError):
        return None


def _write_stamp(target: Path, stamp: dict) -> None:
    path = _stamp_path(target)
    scratch = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}")
    scratch.write_text(json.dumps(stamp, sort_keys=True))
    os.replace(scratch, path)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(path: Path) -> None:
    # The rename itself reaches the disk only when the directory is flushed.
    _fsync(path)
