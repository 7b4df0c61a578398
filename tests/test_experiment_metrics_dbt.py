"""`experiment_variant_metrics` (contract section 9) on a hand-written dataset, every sum worked out
by hand below, built by dbt on DuckDB and on a real Postgres (non-UTC session zones, conftest).

Slug `exp`, as-of date 2026-03-05:
  j1 -> o1 (paid 100.00 USD, 10 points): a three times (events 1, 2, 3)      -> arm a, once
  j2 -> o2 (refunded 50.00 USD, 5 points): b (4); a on 03-06 (after as-of)    -> arm b, not booked
  j3 -> o3 (fulfilled 20.50 EUR, 3 points): a (5)                             -> arm a, EUR
  j4 -> o4 (pending 7.00 USD, 1 point): a (6) then b (7)                      -> left out (2 variants)
  j5 -> o5 (paid 40.00 USD, 4 points): b (8)                                  -> arm b
  j6 -> o5 (the same order): b (9)                                            -> arm b (a unit is a journey)
  j7 -> o4: c on 03-06 00:00:01Z only                                         -> after as-of: c is no arm
  j8 -> o4 (pending): a at 03-05 23:59:59Z                                    -> arm a, not booked
  j9 -> o7 (paid 30.00 GBP): d (10) then a (11)                               -> left out; d keeps 0 journeys
Slug `t`: j1's event 1 also exposes it to x.
"""

from __future__ import annotations

import json
from decimal import Decimal as D

import pytest
from dbt_helpers import load_raw_tables, parse_manifest, run_dbt

from resources.warehouse import Warehouse

pytestmark = pytest.mark.xdist_group("dbt_models")

AS_OF = "2026-03-05"
DBT_VARS = {"as_of_date": AS_OF, "guardrail_critical_guardrail_failures": 2, "guardrail_critical_replay_failures": 4}
SELECT = ["build", "--select", "+experiment_variant_metrics", "experiment_allocations"]


def _order(id_, status, total, currency, points):
    return {"id": id_, "order_number": f"N-{id_}", "provider_id": "p1", "status": status, "total": total,
            "currency": currency, "loyalty_projection_points": points, "platform": "tiktok", "channel": "web",
            "created_at": "2026-02-01T00:00:00Z", "updated_at": "2026-03-01T00:00:00Z"}


def _journey(id_, order_id):
    return {"id": id_, "order_id": order_id, "status": "active", "progress_pct": 10, "referral_risk": None,
            "created_at": "2026-02-01T00:00:00Z", "updated_at": "2026-03-01T00:00:00Z"}


def _event(id_, journey, recorded, *entries):
    payload = {"surface": "checkout", "pricingExperiments": [
        {"slug": slug, "variantKey": variant, "isControl": variant in ("a", "x")} for slug, variant in entries]}
    return {"id": id_, "journey_id": journey, "event_type": "pricing_experiment_segment",
            "payload": json.dumps(payload), "recorded_at": recorded, "ingested_at": recorded,
            "loaded_at": "2026-03-06T00:00:00Z"}


RAW = {
    "fulfillment_providers": [{"id": "p1", "name": "P", "platform": "tiktok", "created_at": "2026-01-01T00:00:00Z"}],
    "orders": [
        _order("o1", "paid", "100.00", "USD", 10),
        _order("o2", "refunded", "50.00", "USD", 5),
        _order("o3", "fulfilled", "20.50", "EUR", 3),
        _order("o4", "pending", "7.00", "USD", 1),
        _order("o5", "paid", "40.00", "USD", 4),
        _order("o7", "paid", "30.00", "GBP", 2),
    ],
    "onboarding_journeys": [
        _journey("j1", "o1"), _journey("j2", "o2"), _journey("j3", "o3"), _journey("j4", "o4"),
        _journey("j5", "o5"), _journey("j6", "o5"), _journey("j7", "o4"), _journey("j8", "o4"),
        _journey("j9", "o7"),
    ],
    "onboarding_journey_events": [
        _event(1, "j1", "2026-03-01T10:00:00Z", ("exp", "a"), ("t", "x")),
        _event(2, "j1", "2026-03-02T10:00:00Z", ("exp", "a")),
        _event(3, "j1", "2026-03-03T10:00:00Z", ("exp", "a")),
        _event(4, "j2", "2026-03-01T11:00:00Z", ("exp", "b")),
        _event(12, "j2", "2026-03-06T08:00:00Z", ("exp", "a")),
        _event(5, "j3", "2026-03-01T12:00:00Z", ("exp", "a")),
        _event(6, "j4", "2026-03-02T12:00:00Z", ("exp", "a")),
        _event(7, "j4", "2026-03-03T12:00:00Z", ("exp", "b")),
        _event(8, "j5", "2026-03-02T13:00:00Z", ("exp", "b")),
        _event(9, "j6", "2026-03-02T14:00:00Z", ("exp", "b")),
        _event(13, "j7", "2026-03-06T00:00:01Z", ("exp", "c")),
        _event(14, "j8", "2026-03-05T23:59:59Z", ("exp", "a")),
        _event(10, "j9", "2026-03-01T09:00:00Z", ("exp", "d")),
        _event(11, "j9", "2026-03-04T09:00:00Z", ("exp", "a")),
    ],
    "provider_guardrail_telemetry": [],
}

# (slug, variant, metric, currency) -> (journeys, booked_journeys, total, total_squares)
EXPECTED = {
    # a: j1 (booked 100.00 USD, 10 points), j3 (booked 20.50 EUR, 3 points), j8 (pending USD).
    ("exp", "a", "conversion", None): (3, 2, D("2.00"), D("2.0000")),
    ("exp", "a", "loyalty_points", None): (3, 2, D("13.00"), D("109.0000")),  # 10 + 3; 100 + 9
    ("exp", "a", "revenue", "USD"): (2, 1, D("100.00"), D("10000.0000")),  # j1 (booked), j8 (pending)
    ("exp", "a", "revenue", "EUR"): (1, 1, D("20.50"), D("420.2500")),  # 20.50^2
    # b: j2 (refunded: 0, not booked), j5 and j6 (the shared order o5, 40.00 USD and 4 points each).
    ("exp", "b", "conversion", None): (3, 2, D("2.00"), D("2.0000")),
    ("exp", "b", "loyalty_points", None): (3, 2, D("8.00"), D("32.0000")),  # 4 + 4; 16 + 16
    ("exp", "b", "revenue", "USD"): (3, 2, D("80.00"), D("3200.0000")),  # 1600 + 1600
    ("exp", "b", "revenue", "EUR"): (0, 0, D("0.00"), D("0.0000")),
    # d: its only journey (j9) also saw a: 0 journeys, still an arm. GBP (j9's) is no currency here.
    ("exp", "d", "conversion", None): (0, 0, D("0.00"), D("0.0000")),
    ("exp", "d", "loyalty_points", None): (0, 0, D("0.00"), D("0.0000")),
    ("exp", "d", "revenue", "USD"): (0, 0, D("0.00"), D("0.0000")),
    ("exp", "d", "revenue", "EUR"): (0, 0, D("0.00"), D("0.0000")),
    ("t", "x", "conversion", None): (1, 1, D("1.00"), D("1.0000")),
    ("t", "x", "loyalty_points", None): (1, 1, D("10.00"), D("100.0000")),
    ("t", "x", "revenue", "USD"): (1, 1, D("100.00"), D("10000.0000")),
}


def _metrics(warehouse: Warehouse) -> dict:
    with warehouse.connect(read_only=True) as conn:
        rows = conn.fetch_dicts("select * from analytics.experiment_variant_metrics")
        multiple = dict(conn.fetchall(
            "select slug, count(*) from analytics_staging.int_experiment_journey_arms "
            "where is_multiple_exposure group by slug"))
    assert {str(r["as_of_date"]) for r in rows} == {AS_OF}
    got = {(r["slug"], r["variant_key"], r["metric"], r["currency"]):
           (r["journeys"], r["booked_journeys"], r["total"], r["total_squares"]) for r in rows}
    return {"metrics": got, "multiple": multiple}


def _build(warehouse: Warehouse, work_dir, manifest) -> dict:
    load_raw_tables(warehouse, RAW)
    run_dbt(warehouse, SELECT, work_dir, DBT_VARS, manifest=manifest)
    return _metrics(warehouse)


def _assert_expected(got: dict) -> None:
    assert got["metrics"] == EXPECTED
    # Exact decimals: the text forms keep their scale.
    assert str(got["metrics"][("exp", "a", "revenue", "EUR")][3]) == "420.2500"
    # No average_order_value rows of its own: the statistics derive them from the revenue rows.
    assert {metric for _, _, metric, _ in got["metrics"]} == {"conversion", "loyalty_points", "revenue"}
    assert got["multiple"] == {"exp": 2}  # j4 (a, b) and j9 (d, a)


def _exercise(warehouse: Warehouse, work_dir) -> None:
    manifest = parse_manifest(warehouse, work_dir)
    _assert_expected(_build(warehouse, work_dir, manifest))
    # A warehouse built before booked_journeys existed: the next build (nothing new) rebuilds the
    # mart whole, instead of failing on the schema change or leaving the column null.
    with warehouse.connect() as conn:
        conn.execute("alter table analytics.experiment_variant_metrics drop column booked_journeys")
    run_dbt(warehouse, SELECT, work_dir, DBT_VARS, manifest=manifest)
    _assert_expected(_metrics(warehouse))


def test_variant_metrics_then_a_table_from_before_booked_journeys_on_duckdb(tmp_path):
    _exercise(Warehouse(url=f"duckdb:///{tmp_path / 'w.duckdb'}", schema_name="analytics"), tmp_path)


@pytest.mark.postgres
def test_variant_metrics_then_a_table_from_before_booked_journeys_on_postgres(make_pg_database, tmp_path):
    _exercise(Warehouse(url=make_pg_database(), schema_name="analytics"), tmp_path)
