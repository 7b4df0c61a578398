"""Warehouse engines as plug-ins: one module per engine behind `resources.engines.base.Engine`.

This is the one place that maps a `WAREHOUSE_URL` to its engine; everything above `resources/`
calls the interface and never asks which engine it is on (tests/test_architecture.py checks it).
"""

from __future__ import annotations

from resources.engines.base import Engine, EngineTuning, WarehouseConnection
from resources.postgres_url import is_postgres_url

__all__ = ["Engine", "EngineTuning", "WarehouseConnection", "create_table_sql", "engine_class", "engine_for_url"]


def engine_class(name: str) -> type[Engine]:
    """The engine called `name` ("duckdb", "postgres", "spark"), for DDL without a connection
    (the demo source writer, test fixtures)."""
    if name == "duckdb":
        from resources.engines.duckdb import DuckDBEngine

        return DuckDBEngine
    if name == "postgres":
        from resources.engines.postgres import PostgresEngine

        return PostgresEngine
    if name == "spark":
        from resources.engines.spark import SparkEngine

        return SparkEngine
    raise ValueError(f"unknown warehouse engine {name!r}")


def create_table_sql(table, qualified_name: str, engine: str | Engine, raw: bool = False) -> str:
    """`create table if not exists` for a source table (or its raw copy) on an engine (or its name)."""
    cls = engine_class(engine) if isinstance(engine, str) else type(engine)
    return cls.create_table_sql(table, qualified_name, raw)


def engine_for_url(url: str, tuning: EngineTuning | None = None, state_url: str | None = None) -> Engine:
    """The engine a warehouse URL names: `duckdb:///file.duckdb`, `postgresql://...` or `sc://host:port`
    (Spark Connect; its transactional state goes to `state_url`, STATE_DATABASE_URL)."""
    scheme = url.split(":", 1)[0].lower()
    if scheme == "duckdb":
        from resources.engines.duckdb import DuckDBEngine

        return DuckDBEngine(url, tuning)
    if is_postgres_url(url):
        from resources.engines.postgres import PostgresEngine

        return PostgresEngine(url, tuning)
    if scheme == "sc":
        from resources.engines.spark import SparkEngine

        return SparkEngine(url, tuning, state_url)
    raise ValueError(
        f"WAREHOUSE_URL: unsupported scheme {scheme!r}; use duckdb:///path.duckdb, postgresql://... "
        "or sc://host:port (Spark Connect)"
    )
