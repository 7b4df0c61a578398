"""Production parts: an operational Postgres source, a Postgres warehouse built with dbt-postgres,
and the same marts as the DuckDB path, value by value."""

from __future__ import annotations

from datetime import timedelta

import duckdb
import pipeline_dataset as ds
import psycopg
import pytest
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


def test_postgres_source_and_warehouse_build_the_same_marts_as_duckdb(make_pg_database, make_settings, tmp_path, dbt_manifest):
    source_url = make_pg_database()
    warehouse_url = make_pg_database()
    write_pg_source(source_url, ds.SOURCE)

    on_postgres = make_settings(ONBOARDING_EXPORT_DATABASE_URL=source_url, WAREHOUSE_URL=warehouse_url)
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


def test_row_committed_late_with_smaller_id_is_extracted_next_run(make_pg_database, tmp_path):
    from assets.extract import extract_table
    from models.source_tables import ONBOARDING_JOURNEY_EVENTS
    from resources.source import SourceDatabase
    from resources.warehouse import Warehouse

    source_url = make_pg_database()
    write_pg_source(source_url, {k: v for k, v in ds.SOURCE.items() if k != "onboarding_journey_events"})
    source = SourceDatabase(database_url=source_url)
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}")
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
    finally:
        slow.close()
        fast.close()
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as conn:
        rows = conn.execute(
            "select id, loaded_at from analytics_raw.onboarding_journey_events order by loaded_at, id"
        ).fetchall()
    assert [r[0] for r in rows] == [101, 100]  # loaded in the order they reached the warehouse
    assert rows[0][1] < rows[1][1]
