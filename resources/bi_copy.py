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

A publish costs what changed, not the marts' size: the new file starts as a byte copy of the
published one, and each table whose fingerprint moved gets only its changed rows: the rows whose
hash the warehouse no longer has are deleted, the warehouse's rows whose hash the copy lacks are
inserted (a changed row is both). The result is checked against the warehouse's fingerprint; a
table that does not match it (or whose columns changed, or the first publish) is copied whole.
"""

from __future__ import annotations

import json
import os
import shutil
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
    if warehouse.engine.embedded_file is None:
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
    # `force` writes every table again (a copy suspected of not matching its stamp).
    reuse = previous if target.exists() and previous is not None and not force else {}
    try:
        if reuse:
            shutil.copyfile(target, scratch)
        _write_copy(warehouse, scratch, built, stamp, reuse, log)
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


def _write_copy(
    warehouse: Warehouse,
    scratch: Path,
    tables: Sequence[str],
    stamp: dict[str, list | None],
    reuse: dict[str, list | None],
    log: Callable[[str], None],
) -> None:
    """`scratch` (new, or a byte copy of the published file) made to hold exactly `tables`: the
    ones whose fingerprint (`stamp`) differs from the byte copy's (`reuse`) brought up to date, the
    others as they are; tables no longer wanted dropped."""
    import duckdb

    schema = warehouse.schema
    source = str(warehouse.engine.embedded_file).replace("'", "''")
    conn = duckdb.connect(str(scratch))
    try:
        conn.execute("set TimeZone = 'UTC'")
        conn.execute(f"attach '{source}' as warehouse (read_only)")
        conn.execute(f"create schema if not exists {schema}")
        held = {name for (name,) in conn.execute(
            "select table_name from duckdb_tables() where database_name = current_database() and schema_name = ?",
            [schema]).fetchall()}
        for table in held - set(tables):
            conn.execute(f"drop table {schema}.{table}")
        for table in tables:
            if table in held and reuse.get(table) == stamp[table]:
                continue
            moved = _apply_changed_rows(conn, schema, table, reuse.get(table), stamp[table]) if (
                table in held and _same_columns(conn, schema, table)) else None
            if moved is not None:
                log(f"BI copy: {table}: {moved[0]:,} rows out, {moved[1]:,} rows in")
                continue
            # Same column types (decimals stay decimals), rows in the warehouse's order.
            conn.execute(f"create or replace table {schema}.{table} as select * from warehouse.{schema}.{table}")
            log(f"BI copy: {table}: copied whole ({stamp[table][0]:,} rows)")
        conn.execute("detach warehouse")
        conn.execute("checkpoint")
    finally:
        conn.close()


def _same_columns(conn, schema: str, table: str) -> bool:
    query = ("select column_name, data_type from duckdb_columns() where database_name = ? and schema_name = ? "
             "and table_name = ? order by column_index")
    here = conn.execute(query, [conn.execute("select current_database()").fetchone()[0], schema, table]).fetchall()
    there = conn.execute(query, ["warehouse", schema, table]).fetchall()
    return here == there


def _apply_changed_rows(
    conn, schema: str, table: str, held: list | None, wanted: list | None
) -> tuple[int, int] | None:
    """Delete the copy's rows the warehouse no longer has and insert those it lacks, compared by
    row hash (each side hashed once): (rows deleted, rows inserted), or None (nothing applied) when
    the result would not match the warehouse's fingerprint `wanted` ([rows, sum of row hashes]);
    the caller then copies the table whole. `held` is the copy's own fingerprint (the last
    publish's), so the result's is known without reading the table again."""
    if held is None or wanted is None:
        return None
    copy, origin = f"{schema}.{table}", f"warehouse.{schema}.{table}"
    conn.execute("begin")
    try:
        conn.execute(f"create temp table _there as select rowid as rid, hash(w) as h from {origin} as w")
        conn.execute(f"create temp table _here as select rowid as rid, hash(c) as h from {copy} as c")
        conn.execute("create temp table _gone as select rid, h from _here anti join _there using (h)")
        conn.execute("create temp table _new as select rid, h from _there anti join _here using (h)")
        deleted, deleted_sum, inserted, inserted_sum = conn.execute(
            "select (select count(*) from _gone), (select cast(coalesce(sum(h), 0) as varchar) from _gone), "
            "(select count(*) from _new), (select cast(coalesce(sum(h), 0) as varchar) from _new)").fetchone()
        count = int(held[0]) - deleted + inserted
        hashed = int(held[1] or 0) - int(deleted_sum) + int(inserted_sum)
        if [count, str(hashed)] != [int(wanted[0]), str(int(wanted[1] or 0))]:
            conn.execute("rollback")
            return None
        conn.execute(f"delete from {copy} where rowid in (select rid from _gone)")
        conn.execute(f"insert into {copy} select * from {origin} where rowid in (select rid from _new)")
        for scratch in ("_there", "_here", "_gone", "_new"):
            conn.execute(f"drop table {scratch}")
        conn.execute("commit")
        return int(deleted), int(inserted)
    except BaseException:
        conn.execute("rollback")
        raise


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
