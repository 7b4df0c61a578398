"""Production parts: an operational Postgres source, a Postgres warehouse built with dbt-postgres,
and the same marts as the DuckDB path, value by value."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pipeline_dataset as ds
import psycopg
import pytest
from conftest import socket_url
from handmade_source import create_source, insert_rows
from test_pipeline_embedded import MART_ORDER, MARTS, build_and_refresh

pytestmark = pytest.mark.postgres


def write_pg_source(url: str, tables) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        create_source("postgres", conn)
        for table, rows in tables.items():
            insert_rows("postgres", conn, table, rows)


def pg_mart_rows(url: str, mart: str) -> list[dict]:
    with psycopg.connect(url) as conn, conn.cursor() as cur:
        cur.execute(f"select * from analytics.{mart} order by {MART_ORDER[mart]}")
        names = [d.name for d in cur.description]
        return [{k: v for k, v in zip(names, row) if k != "loaded_at"} for row in cur.fetchall()]


def duck_mart_rows(path, mart: str) -> list[dict]:
    with duckdb.connect(str(path), read_only=True) as conn:
        cur = conn.execute(f"select * from analytics.{mart} order by {MART_ORDER[mart]}")
        names = [d[0] for d in cur.description]
        return [{k: v for k, v in zip(names, row) if k != "loaded_at"} for row in cur.fetchall()]


@pytest.mark.parametrize("connection", ["tcp", "socket"])
def test_postgres_source_and_warehouse_build_the_same_marts_as_duckdb(
    make_pg_database, make_settings, tmp_path, dbt_manifest, monkeypatch, connection
):
    """Over TCP and over the local socket (the two socket URL forms: one leaves host, port and
    user to libpq and PGUSER, one names the socket directory): the same marts."""
    source_url = make_pg_database()
    warehouse_url = make_pg_database()
    write_pg_source(source_url, ds.SOURCE)

    if connection == "socket":
        monkeypatch.setenv("PGUSER", "postgres")
        urls = {"ONBOARDING_EXPORT_DATABASE_URL": socket_url(source_url, "bare"),
                "WAREHOUSE_URL": socket_url(warehouse_url).replace("postgresql://", "postgresql+psycopg://")}
    else:
        urls = {"ONBOARDING_EXPORT_DATABASE_URL": source_url, "WAREHOUSE_URL": warehouse_url}
    on_postgres = make_settings(**urls)
    build_and_refresh(on_postgres)
    on_duckdb = make_settings(ONBOARDING_EXPORT_DATABASE_URL=source_url, DATA_DIR=tmp_path / "duck")
    build_and_refresh(on_duckdb)

    for mart in MARTS:
        pg_rows = pg_mart_rows(warehouse_url, mart)
        duck_rows = duck_mart_rows(on_duckdb.data_dir / "warehouse.duckdb", mart)
        assert pg_rows == duck_rows, mart
        assert pg_rows, f"{mart} is empty"

    # The hand-computed answer holds on Postgres too (a spot check of the money mart).
    conversion = {(r["slug"], r["order_currency"]): (r["order_total"], r["order_count"], r["journey_count"])
                  for r in pg_mart_rows(warehouse_url, "experiment_conversion_snapshot")}
    assert conversion == {k: v[:3] for k, v in ds.CONVERSION.items()}


@pytest.mark.parametrize("warehouse_kind", ["duckdb", "postgres"])
def test_row_committed_late_with_smaller_id_is_extracted_next_run(make_pg_database, tmp_path, warehouse_kind):
    from assets.extract import extract_table
    from models.source_tables import ONBOARDING_JOURNEY_EVENTS
    from resources.source import SourceDatabase
    from resources.warehouse import Warehouse

    source_url = make_pg_database()
    write_pg_source(source_url, {k: v for k, v in ds.SOURCE.items() if k != "onboarding_journey_events"})
    source = SourceDatabase(database_url=source_url)
    warehouse_url = f"duckdb:///{tmp_path / 'wh.duckdb'}" if warehouse_kind == "duckdb" else make_pg_database()
    warehouse = Warehouse(url=warehouse_url)
    insert = ("insert into onboarding_journey_events (id, journey_id, event_type, payload, recorded_at, ingested_at) "
              "values (%s, 'j1', 'pricing_experiment_segment', %s, clock_timestamp(), clock_timestamp())")
    payload = '{"pricingExperiments": [{"slug": "spring-offer", "variantKey": "a"}]}'

    slow = psycopg.connect(source_url)  # transaction 1: takes the smaller id, commits last
    fast = psycopg.connect(source_url, autocommit=True)
    try:
        slow.execute(insert, (100, payload))
        fast.execute(insert, (101, payload))  # larger id, older transaction still open
        first = extract_table(source, warehouse, ONBOARDING_JOURNEY_EVENTS, timedelta(minutes=10))
        assert first.rows_inserted == 1
        slow.commit()
        second = extract_table(source, warehouse, ONBOARDING_JOURNEY_EVENTS, timedelta(minutes=10))
        assert second.rows_inserted == 1
        third = extract_table(source, warehouse, ONBOARDING_JOURNEY_EVENTS, timedelta(minutes=10))
        assert third.rows_inserted == 0  # the overlap is re-read, nothing is added twice
        everything = extract_table(source, warehouse, ONBOARDING_JOURNEY_EVENTS, timedelta(days=3650))
        assert (everything.rows_read, everything.rows_inserted) == (2, 0)  # a re-read of all adds nothing
    finally:
        slow.close()
        fast.close()
    with warehouse.connect() as conn:
        rows = conn.fetchall("select id, loaded_at from analytics_raw.onboarding_journey_events order by loaded_at, id")
    assert [r[0] for r in rows] == [101, 100]  # loaded in the order they reached the warehouse
    assert rows[0][1] < rows[1][1]


def test_demo_source_lands_in_a_postgres_warehouse_value_by_value(make_pg_database, tmp_path):
    """Every column type through the Postgres warehouse's binary-COPY stage: exact decimal totals,
    JSON payloads, char(3) currencies, smallints, instants; a re-run adds and changes nothing; an
    order changed at the source is updated in place."""
    from datetime import UTC, datetime

    from assets.extract import extract_table
    from models.source_tables import SOURCE_TABLES
    from resources.demo_source import write_demo_source
    from resources.source import SourceDatabase
    from resources.warehouse import Warehouse

    demo_path = tmp_path / "demo.duckdb"
    write_demo_source(events=3000, seed=3, duckdb_path=demo_path, now=datetime(2026, 3, 1, tzinfo=UTC),
                      progress=lambda _: None)
    source = SourceDatabase(demo_path=str(demo_path))
    warehouse = Warehouse(url=make_pg_database())

    def source_rows(table) -> list[tuple]:
        with duckdb.connect(str(demo_path), read_only=True) as conn:
            conn.execute("set TimeZone = 'UTC'")
            rows = conn.execute(f"select {', '.join(table.column_names)} from {table.name} order by {table.key}").fetchall()
        return [_comparable(table, row) for row in rows]

    def raw_rows(table) -> list[tuple]:
        with warehouse.connect() as conn:
            rows = conn.fetchall(f"select {', '.join(table.column_names)} from analytics_raw.{table.name} "
                                 f"order by {table.key}")
        return [_comparable(table, row) for row in rows]

    for table in SOURCE_TABLES:
        first = extract_table(source, warehouse, table, timedelta(minutes=10))
        assert first.rows_inserted == first.rows_read > 0, table.name
        assert raw_rows(table) == source_rows(table), table.name
        again = extract_table(source, warehouse, table, timedelta(minutes=10))
        assert (again.rows_inserted, again.rows_updated) == (0, 0), table.name

    orders = next(t for t in SOURCE_TABLES if t.name == "orders")
    with duckdb.connect(str(demo_path)) as conn:
        conn.execute("update orders set total = 1234567.89, status = 'refunded', updated_at = now() "
                     "where id = (select min(id) from orders)")
    changed = extract_table(source, warehouse, orders, timedelta(minutes=10))
    assert (changed.rows_inserted, changed.rows_updated) == (0, 1)
    assert raw_rows(orders) == source_rows(orders)


def _comparable(table, row: tuple) -> tuple:
    """A row with JSON parsed (jsonb normalises spacing and key order) and char(3) unpadded."""
    import json

    out = []
    for column, value in zip(table.columns, row):
        if column.postgres_type == "jsonb":
            value = json.loads(value) if isinstance(value, str) else value
        elif isinstance(value, str):
            value = value.rstrip() if column.postgres_type.startswith("char(") else value
        out.append(value)
    return tuple(out)
