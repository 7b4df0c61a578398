"""Late journeys and orders are never lost (contract section 2): the app stamps `updated_at` when
its transaction starts, so a journey and its order can commit an hour after their `updated_at`,
older than any overlap. The events that reference them bring them in by key in the same run; the
resync (EXTRACT_RESYNC_CRON) repairs a status change that committed late."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import duckdb
import psycopg
import pytest
from handmade_source import create_source, insert_rows

pytestmark = pytest.mark.postgres

NOW = datetime.now(UTC).replace(microsecond=0)
PAYLOAD = {"pricingExperiments": [{"slug": "spring-offer", "variantKey": "a"}]}


def _order(id_, status, updated):
    return {"id": id_, "order_number": f"N-{id_}", "provider_id": "p1", "status": status, "total": Decimal("19.90"),
            "currency": "USD", "loyalty_projection_points": 5, "platform": "web", "channel": "web",
            "created_at": updated, "updated_at": updated}


def _journey(id_, order_id, updated):
    return {"id": id_, "order_id": order_id, "status": "active", "progress_pct": 0, "referral_risk": None,
            "created_at": updated, "updated_at": updated}


def _event(id_, journey_id):
    return {"id": id_, "journey_id": journey_id, "event_type": "pricing_experiment_segment", "payload": PAYLOAD,
            "recorded_at": NOW, "ingested_at": datetime.now(UTC)}


def _insert(url: str, table: str, rows) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        insert_rows("postgres", conn, table, rows)


@pytest.fixture
def late_source(make_pg_database):
    """A source whose one journey and order are in the warehouse's past, and an event for j2 whose
    journey and order have not committed yet."""
    url = make_pg_database()
    with psycopg.connect(url, autocommit=True) as conn:
        create_source("postgres", conn)
    _insert(url, "fulfillment_providers", [{"id": "p1", "name": "P", "platform": "web", "created_at": NOW}])
    _insert(url, "orders", [_order("o1", "paid", NOW)])
    _insert(url, "onboarding_journeys", [_journey("j1", "o1", NOW)])
    _insert(url, "onboarding_journey_events", [_event(1, "j1"), _event(2, "j2"), _event(3, "j2")])
    return url


def _refresh(settings, resync: bool = False) -> dg.ExecuteInProcessResult:
    from assets.extract import RESYNC_RUN_CONFIG
    from orchestration.definitions import build_definitions

    run_config = {"ops": {"pricing_dbt_models": {"config": {"as_of_date": NOW.date().isoformat()}}}}
    if resync:
        run_config["ops"].update(RESYNC_RUN_CONFIG["ops"])
    job = build_definitions(settings).resolve_job_def("refresh")
    with dg.instance_for_test() as instance:
        result = job.execute_in_process(instance=instance, run_config=run_config)
    assert result.success
    return result


def _extract_metadata(result, table: str) -> dict:
    [mat] = [m for m in result.asset_materializations_for_node("extract_source") if m.asset_key.path[-1] == table]
    return {k: v.value for k, v in mat.metadata.items()}


def _segments(settings) -> list[tuple]:
    with duckdb.connect(str(settings.data_dir / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute("select event_id, journey_id, order_id, order_status, order_total, order_currency "
                            "from analytics.onboarding_pricing_experiment_segments order by event_id").fetchall()


def test_a_late_journey_and_order_arrive_with_their_events_and_resync_repairs_a_late_status(
    late_source, make_settings, dbt_manifest
):
    settings = make_settings(ONBOARDING_EXPORT_DATABASE_URL=late_source)
    _refresh(settings)
    assert [row[2] for row in _segments(settings)] == ["o1", None, None]  # j2 has not committed yet

    # j2 and o2 commit now, stamped an hour before the warehouse's watermark (their transaction's start).
    an_hour_old = NOW - timedelta(hours=1)
    _insert(late_source, "orders", [_order("o2", "fulfilled", an_hour_old)])
    _insert(late_source, "onboarding_journeys", [_journey("j2", "o2", an_hour_old)])
    second = _refresh(settings)
    assert _segments(settings) == [
        (1, "j1", "o1", "paid", Decimal("19.90"), "USD"),
        (2, "j2", "o2", "fulfilled", Decimal("19.90"), "USD"),
        (3, "j2", "o2", "fulfilled", Decimal("19.90"), "USD"),
    ]
    assert _extract_metadata(second, "onboarding_journeys")["fetched_by_key"] == 1
    assert _extract_metadata(second, "orders")["fetched_by_key"] == 1

    # o1 is refunded by a transaction that started an hour ago: the incremental read cannot see it...
    with psycopg.connect(late_source, autocommit=True) as conn:
        conn.execute("update orders set status = 'refunded', updated_at = %s where id = 'o1'", (an_hour_old,))
    _refresh(settings)
    assert _segments(settings)[0][3] == "paid"
    # ...the daily resync re-reads orders and journeys whole and repairs it, and says so.
    resync = _refresh(settings, resync=True)
    assert _segments(settings)[0][3] == "refunded"
    orders = _extract_metadata(resync, "orders")
    assert (orders["full_resync"], orders["rows_updated"], orders["read_since"]) == (True, 1, "beginning (full read)")
    assert _extract_metadata(resync, "onboarding_journeys")["rows_updated"] == 0


def test_references_are_fetched_by_key_into_a_postgres_warehouse(late_source, make_pg_database):
    from assets.extract import extract_table, fetch_missing_references
    from models.source_tables import SOURCE_TABLES
    from resources.source import SourceDatabase
    from resources.warehouse import Warehouse

    source = SourceDatabase(database_url=late_source)
    warehouse = Warehouse(url=make_pg_database())
    for table in SOURCE_TABLES:
        extract_table(source, warehouse, table, timedelta(minutes=10))
    assert fetch_missing_references(source, warehouse) == {"onboarding_journeys": 0, "orders": 0}
    an_hour_old = NOW - timedelta(hours=1)
    _insert(late_source, "orders", [_order("o'2", "paid", an_hour_old)])  # a quote in a key is data
    _insert(late_source, "onboarding_journeys", [_journey("j2", "o'2", an_hour_old)])
    for table in SOURCE_TABLES:
        extract_table(source, warehouse, table, timedelta(minutes=10))
    assert fetch_missing_references(source, warehouse) == {"onboarding_journeys": 1, "orders": 1}
    with warehouse.connect() as conn:
        assert conn.fetchall("select id, order_id from analytics_raw.onboarding_journeys order by id") == [
            ("j1", "o1"), ("j2", "o'2")]
        assert conn.fetchone("select count(*) from analytics_raw.orders")[0] == 2
