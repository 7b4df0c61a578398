"""Write a small, hand-written source (contract section 2 tables) to a DuckDB file or a Postgres
database, for tests whose mart values are worked out by hand."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from models.source_tables import SOURCE_TABLES, SOURCE_TABLES_BY_NAME
from resources.engines import create_table_sql


def create_source(engine: str, conn: Any, schema: str | None = None) -> None:
    """Create the five source tables (empty) on a duckdb connection or a psycopg connection."""
    for table in SOURCE_TABLES:
        name = f"{schema}.{table.name}" if schema else table.name
        if engine == "duckdb":
            conn.execute(create_table_sql(table, name, "duckdb"))
        else:
            with conn.cursor() as cur:
                cur.execute(create_table_sql(table, name, "postgres"))


def insert_rows(engine: str, conn: Any, table: str, rows: Iterable[Mapping[str, Any]], schema: str | None = None) -> None:
    """Insert rows given as dicts; `payload` may be a dict/list (JSON-encoded here) or raw JSON text."""
    spec = SOURCE_TABLES_BY_NAME[table]
    name = f"{schema}.{table}" if schema else table
    for row in rows:
        cols = [c for c in spec.column_names if c in row]
        values = []
        for c in cols:
            v = row[c]
            if c == "payload" and not isinstance(v, str):
                v = json.dumps(v)
            values.append(v)
        if engine == "duckdb":
            placeholders = ", ".join("?" for _ in cols)
            conn.execute(f"insert into {name} ({', '.join(cols)}) values ({placeholders})", values)
        else:
            placeholders = ", ".join("%s" for _ in cols)
            with conn.cursor() as cur:
                cur.execute(f"insert into {name} ({', '.join(cols)}) values ({placeholders})", values)


def write_duckdb_source(path: Path, tables: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(path)) as conn:
        conn.execute("set TimeZone = 'UTC'")
        create_source("duckdb", conn)
        for table, rows in tables.items():
            insert_rows("duckdb", conn, table, rows)


def add_duckdb_rows(path: Path, tables: Mapping[str, Iterable[Mapping[str, Any]]]) -> None:
    """Insert new rows; a row whose id exists replaces it (a change in place, as the app does)."""
    import duckdb

    with duckdb.connect(str(path)) as conn:
        for table, rows in tables.items():
            rows = list(rows)
            for row in rows:
                conn.execute(f"delete from {table} where id = ?", [row["id"]])
            insert_rows("duckdb", conn, table, rows)


def ts(text: str) -> datetime:
    """'2026-11-20T10:00:00Z' -> aware datetime."""
    return datetime.fromisoformat(text)


def money(text: str) -> Decimal:
    return Decimal(text)
