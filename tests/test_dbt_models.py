"""The dbt project on a tiny raw dataset written by hand, with every expected mart value worked out
by hand next to it.

One `dbt build` on DuckDB for the module (process TZ America/Los_Angeles from conftest, so the
DuckDB session TimeZone is Los Angeles too), one on a real Postgres whose database TimeZone is
Asia/Kolkata: the two must agree value by value. As-of date 2026-03-05 (Los Angeles is UTC-8 that
week, Kolkata UTC+5:30: an instant near midnight UTC lands on another local day in each).
"""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from pathlib import Path

import psycopg
import pytest
from dbt_helpers import day, load_raw_tables, parse_manifest, run_dbt, table_rows, utc

from models.marts import MART_TABLES
from resources.warehouse import Warehouse

# Keeps the module on one xdist worker under `--dist loadgroup`: one build per engine, not one per worker.
pytestmark = pytest.mark.xdist_group("dbt_models")

AS_OF = "2026-03-05"
DBT_VARS = {
    "as_of_date": AS_OF,
    "guardrail_critical_guardrail_failures": 2,
    "guardrail_critical_replay_failures": 4,
}
SCHEMA = "analytics"
MARTS = list(MART_TABLES)
SEGMENT = "pricing_experiment_segment"
SPRING = "spring-offer"


# --- the raw dataset ---------------------------------------------------------------------------

def _provider(id_, name, platform):
    return {"id": id_, "name": name, "platform": platform, "created_at": "2026-01-01T00:00:00Z"}


def _order(id_, status, total, currency, points):
    return {
        "id": id_, "order_number": f"N-{id_}", "provider_id": "p1", "status": status, "total": total,
        "currency": currency, "loyalty_projection_points": points, "platform": "tiktok", "channel": "web",
        "created_at": "2026-02-01T00:00:00Z", "updated_at": "2026-03-01T00:00:00Z",
    }


def _journey(id_, order_id, status):
    return {"id": id_, "order_id": order_id, "status": status, "progress_pct": 50, "referral_risk": None,
            "created_at": "2026-02-01T00:00:00Z", "updated_at": "2026-03-01T00:00:00Z"}


class Raw:
    """A payload given as JSON text, used as is (for payloads Python would not produce)."""

    def __init__(self, raw: str):
        self.raw = raw


def _event(id_, journey, recorded, payload, ingested=None, loaded=None, event_type=SEGMENT):
    """payload: a Python value (dumped as JSON) or, as `raw`, JSON text used as is."""
    text = payload.raw if isinstance(payload, Raw) else json.dumps(payload)
    ingested = ingested or recorded
    return {"id": id_, "journey_id": journey, "event_type": event_type, "payload": text,
            "recorded_at": recorded, "ingested_at": ingested, "loaded_at": loaded or "2026-03-06T00:00:00Z"}


def _pe(*entries, surface="checkout"):
    return {"surface": surface, "pricingExperiments": list(entries)}


def _x(slug, variant, **extra):
    return {"slug": slug, "variantKey": variant, **extra}


def _window(id_, provider, end, gf, rf, total=10):
    return {"id": id_, "provider_id": provider, "experiment_slug": SPRING, "variant_key": "b",
            "window_start": (utc(end) - timedelta(hours=1)).isoformat(), "window_end": end,
            "guardrail_checks": 20,
            "guardrail_failures": gf, "replay_total": total, "replay_failures": rf, "recorded_at": end,
            "loaded_at": end}


PROVIDERS = [
    _provider("p1", "Provider One", "instagram"),
    _provider("p2", "Provider Two", "tiktok"),
    _provider("p3", "Provider Three", "youtube"),
    _provider("p4", "Provider Four", None),
]
ORDERS = [
    _order("o1", "paid", "100.00", "USD", 10),
    _order("o2", "refunded", "50.00", "USD", 5),
    _order("o3", "fulfilled", "20.50", "EUR", 3),
    _order("o4", "pending", "7.00", "EUR", 1),
    # Each at the numeric(12,2) / integer maximum region: their sums only fit in wide types.
    _order("o6", "paid", "9999999999.99", "JPY", 2_000_000_000),
    _order("o7", "fulfilled", "9999999999.99", "JPY", 2_000_000_000),
]
JOURNEYS = [
    _journey("j1", "o1", "active"),
    _journey("j2", "o1", "stalled"),  # a second journey on the same order
    _journey("j3", "o2", "completed"),
    _journey("j4", "o3", "active"),
    _journey("j5", "o4", "stalled"),
    # j6 has events but has not reached the warehouse; j7's order o99 has not either.
    _journey("j7", "o99", "completed"),
    _journey("j8", "o6", "active"),
    _journey("j9", "o7", "completed"),
]
EVENTS = [
    # --- exposures -------------------------------------------------------------------------------
    _event(1, "j1", "2026-03-01T10:00:00Z",
           _pe(_x(SPRING, "a", variantName="Spring A", isControl=False, assignmentStrategy="random_split",
                  featureFlagKey=None, unknownKey=[1, 2]))),
    # isControl "true" is a string, not JSON true; surface 7 is not a string.
    _event(2, "j1", "2026-03-02T10:00:00Z",
           _pe(_x(SPRING, "b", variantName="Spring B", isControl="true", featureFlagKey="ff-b"),
               _x("summer", "x"), surface=7)),
    # variantName 5 is not a string: null.
    _event(3, "j2", "2026-03-01T23:30:00Z",
           _pe(_x(SPRING, "ctl", isControl=True, variantName=5), surface="pdp")),
    # Same instant for j2: the greater event id (5, variant b) is the latest.
    _event(4, "j2", "2026-03-03T12:00:00Z", _pe(_x(SPRING, "a", variantName="Spring A v2"))),
    _event(5, "j2", "2026-03-03T12:00:00Z", _pe(_x(SPRING, "b"))),
    # Midnight UTC exactly (03-02 16:00 in Los Angeles). The second spring-offer entry is a duplicate.
    _event(6, "j3", "2026-03-03T00:00:00Z", _pe(_x(SPRING, "a"), _x(SPRING, "b"))),
    _event(7, "j4", "2026-03-05T23:59:59Z", _pe(_x(SPRING, "b", variantName="Spring B final"))),
    # After the as-of date (03-05 16:00 in Los Angeles): not in the daily spine, still j4's latest.
    _event(8, "j4", "2026-03-06T00:00:01Z", _pe(_x(SPRING, "a"))),
    # A late event: happened 03-02, ingested and loaded 03-05. The list comes as a JSON-encoded string
    # (with a string that looks like what strict decoding refuses, outside a string).
    _event(9, "j5", "2026-03-02T08:00:00Z",
           {"surface": "checkout",
            "pricingExperiments": json.dumps([_x(SPRING, "a", note="x,] NaN \\u0000")])},
           ingested="2026-03-05T12:00:00Z", loaded="2026-03-05T12:05:00Z"),
    _event(10, "j6", "2026-03-05T09:00:00Z", _pe(_x(SPRING, "a"))),
    _event(11, "j7", "2026-03-05T10:00:00Z", _pe(_x(SPRING, "b"))),
    _event(12, "j8", "2026-03-01T12:00:00Z", _pe(_x("big-spender", "v1"))),
    _event(13, "j9", "2026-03-02T12:00:00Z", _pe(_x("big-spender", "v1"))),
    # First exposed after the as-of date: no daily rows.
    _event(14, "j1", "2026-03-07T00:00:00Z", _pe(_x("future-slug", "a"))),
    # Kept byte for byte: a trailing space and case make another slug; " " is a valid variant key.
    _event(15, "j3", "2026-03-04T08:00:00Z", _pe(_x("Spring-Offer ", " "))),
    # Not a segment event: never an exposure, never a reject.
    _event(16, "j1", "2026-03-02T11:00:00Z", _pe(_x(SPRING, "zzz")), event_type="task_completed"),
    # --- dirty payloads: one reject for the whole event ------------------------------------------
    _event(20, "j3", "2026-03-04T09:00:00Z", [1, 2]),
    _event(21, "j3", "2026-03-04T09:00:00Z", {"surface": "checkout"}),
    _event(22, "j3", "2026-03-04T09:00:00Z", {"pricingExperiments": None}),
    _event(23, "j3", "2026-03-04T09:00:00Z", {"pricingExperiments": 5}),
    _event(24, "j3", "2026-03-04T09:00:00Z", {"pricingExperiments": True}),
    _event(25, "j3", "2026-03-04T09:00:00Z", {"pricingExperiments": _x(SPRING, "a")}),
    _event(26, "j3", "2026-03-04T09:00:00Z", {"pricingExperiments": "not json"}),
    _event(27, "j3", "2026-03-04T09:00:00Z", {"pricingExperiments": json.dumps(_x(SPRING, "a"))}),
    _event(28, "j3", "2026-03-04T09:00:00Z", {"pricingExperiments": []}),
    _event(29, "j3", "2026-03-04T09:00:00Z", {"pricingExperiments": "[]"}),
    # Encoded twice: decoding once gives a string, not a list.
    _event(30, "j3", "2026-03-04T09:00:00Z",
           {"pricingExperiments": json.dumps(json.dumps([_x(SPRING, "a")]))}),
    _event(32, "j3", "2026-03-04T09:00:00Z", Raw("null")),
    # Not JSON, though DuckDB's own parser would take them: decoded the same on both engines.
    _event(33, "j3", "2026-03-04T09:00:00Z",
           {"pricingExperiments": '[{"slug": "spring-offer", "variantKey": "a"},]'}),
    _event(34, "j3", "2026-03-04T09:00:00Z", {"pricingExperiments": "[NaN]"}),
    # --- dirty entries: one reject per entry -------------------------------------------------------
    _event(31, "j3", "2026-03-04T11:00:00Z", _pe(
        None,                                        # 1 entry_null
        SPRING,                                      # 2 entry_string
        [SPRING, "a"],                               # 3 entry_list
        5,                                           # 4 entry_number
        False,                                       # 5 entry_boolean
        {"variantKey": "a"},                         # 6 slug_missing
        {"slug": None, "variantKey": "a"},           # 7 slug_missing
        {"slug": 5, "variantKey": "a"},              # 8 slug_not_string
        {"slug": "", "variantKey": "a"},             # 9 slug_empty
        {"slug": "winter-sale", "variantKey": None},  # 10 variant_key_missing
        {"slug": "winter-sale"},                     # 11 variant_key_missing
        {"slug": "winter-sale", "variantKey": 7},    # 12 variant_key_not_string
        {"slug": "winter-sale", "variantKey": ""},   # 13 variant_key_empty
        {"slug": "winter-sale", "variantKey": "ok"},  # 14 valid: earlier invalid ones don't block it
        {"slug": "winter-sale", "variantKey": "dup"},  # 15 duplicate_slug
    )),
]
TELEMETRY = [
    # p1: the later window (id 2) at exactly the thresholds is a warning, not critical.
    _window(1, "p1", "2026-03-05T10:00:00Z", 9, 9),
    _window(2, "p1", "2026-03-05T11:00:00Z", 2, 4),
    # p2: two windows ending at the same instant: the greater id (5) wins; 3 > 2 and 5 > 4.
    _window(3, "p2", "2026-03-05T11:00:00Z", 0, 0),
    _window(5, "p2", "2026-03-05T11:00:00Z", 3, 5),
    # p3: window_end decides before id: id 6 ends later than id 7.
    _window(6, "p3", "2026-03-05T12:00:00Z", 0, 5),
    _window(7, "p3", "2026-03-05T08:00:00Z", 1, 0),
    _window(8, "p4", "2026-03-05T12:00:00Z", 0, 0),
    # p5 has no provider row yet: its status still shows, without a name.
    _window(9, "p5", "2026-03-05T12:00:00Z", 3, 0, total=0),
]
RAW = {
    "fulfillment_providers": PROVIDERS,
    "orders": ORDERS,
    "onboarding_journeys": JOURNEYS,
    "onboarding_journey_events": EVENTS,
    "provider_guardrail_telemetry": TELEMETRY,
}


# --- builds ------------------------------------------------------------------------------------

def _show_session(warehouse: Warehouse, work_dir: Path, manifest) -> dict:
    """What a dbt session on this warehouse sees: its TimeZone and the default as-of date."""
    sql = "select current_setting('TimeZone') as session_tz, {{ as_of_date() }} as as_of"
    result = run_dbt(
        warehouse,
        ["show", "--inline", sql, "--output", "json"],
        work_dir,
        manifest=manifest,
    )
    return dict(result.result.results[0].agate_table.rows[0].items())


@pytest.fixture(scope="module")
def duckdb_build(tmp_path_factory):
    """The dataset built once on a DuckDB file: (warehouse, manifest, seconds the build took, session)."""
    work = tmp_path_factory.mktemp("dbt_duckdb")
    warehouse = Warehouse(url=f"duckdb:///{work / 'warehouse.duckdb'}", schema_name=SCHEMA)
    load_raw_tables(warehouse, RAW)
    manifest = parse_manifest(warehouse, work)
    started = time.perf_counter()
    run_dbt(warehouse, ["build"], work, DBT_VARS, manifest=manifest)
    seconds = time.perf_counter() - started
    before = datetime.now(UTC).date()
    session = _show_session(warehouse, work, manifest)
    session["utc_dates"] = {before, datetime.now(UTC).date()}
    return warehouse, manifest, seconds, session


def mart(warehouse: Warehouse, name: str) -> list[dict]:
    return table_rows(warehouse, f"{SCHEMA}.{name}")


def keyed(rows: list[dict], *keys: str) -> dict:
    return {tuple(row[k] for k in keys) if len(keys) > 1 else row[keys[0]]: row for row in rows}


# --- DuckDB: exact values ----------------------------------------------------------------------

def test_build_ran_in_a_non_utc_session(duckdb_build):
    _, _, seconds, session = duckdb_build
    print(f"dbt build on DuckDB: {seconds:.1f} s")
    assert session["session_tz"] == "America/Los_Angeles"
    # No as_of_date var: the UTC date at the start of the run (not Los Angeles' date).
    assert day(str(session["as_of"])[:10]) in session["utc_dates"]


def test_every_dirty_payload_kind_is_rejected_with_its_reason(duckdb_build):
    warehouse, _, _, _ = duckdb_build
    rejects = table_rows(warehouse, f"{SCHEMA}_staging.pricing_experiment_payload_rejects")
    got = sorted(
        ((r["event_id"], r["entry_index"], r["reason"]) for r in rejects), key=lambda t: (t[0], t[1] or 0)
    )
    assert got == [
        (6, 2, "duplicate_slug"),
        (20, None, "payload_not_object"),
        (21, None, "pricing_experiments_missing"),
        (22, None, "pricing_experiments_null"),
        (23, None, "pricing_experiments_number"),
        (24, None, "pricing_experiments_boolean"),
        (25, None, "pricing_experiments_object"),
        (26, None, "pricing_experiments_string"),
        (27, None, "pricing_experiments_string"),
        (28, None, "pricing_experiments_empty"),
        (29, None, "pricing_experiments_empty"),
        (30, None, "pricing_experiments_string"),
        (31, 1, "entry_null"),
        (31, 2, "entry_string"),
        (31, 3, "entry_list"),
        (31, 4, "entry_number"),
        (31, 5, "entry_boolean"),
        (31, 6, "slug_missing"),
        (31, 7, "slug_missing"),
        (31, 8, "slug_not_string"),
        (31, 9, "slug_empty"),
        (31, 10, "variant_key_missing"),
        (31, 11, "variant_key_missing"),
        (31, 12, "variant_key_not_string"),
        (31, 13, "variant_key_empty"),
        (31, 15, "duplicate_slug"),
        (32, None, "payload_not_object"),
        (33, None, "pricing_experiments_string"),
        (34, None, "pricing_experiments_string"),
    ]
    by_key = {(r["event_id"], r["entry_index"]): r for r in rejects}
    # The offending JSON is kept as text; a missing list has none.
    assert json.loads(by_key[(23, None)]["entry"]) == 5
    assert json.loads(by_key[(31, 8)]["entry"]) == {"slug": 5, "variantKey": "a"}
    assert by_key[(21, None)]["entry"] is None
    assert by_key[(31, 8)]["journey_id"] == "j3"
    assert by_key[(31, 8)]["recorded_at"] == utc("2026-03-04T11:00:00Z")
    assert by_key[(31, 8)]["loaded_at"] == utc("2026-03-06T00:00:00Z")


def test_segments_hold_every_exposure_with_current_journey_and_order(duckdb_build):
    warehouse, _, _, _ = duckdb_build
    rows = keyed(mart(warehouse, "onboarding_pricing_experiment_segments"), "event_id", "slug")
    assert sorted(rows) == sorted([
        (1, SPRING), (2, SPRING), (2, "summer"), (3, SPRING), (4, SPRING), (5, SPRING), (6, SPRING),
        (7, SPRING), (8, SPRING), (9, SPRING), (10, SPRING), (11, SPRING), (12, "big-spender"),
        (13, "big-spender"), (14, "future-slug"), (15, "Spring-Offer "), (31, "winter-sale"),
    ])
    assert rows[(1, SPRING)] == {
        "event_id": 1, "journey_id": "j1", "order_id": "o1", "order_number": "N-o1", "slug": SPRING,
        "variant_key": "a", "variant_name": "Spring A", "is_control": False,
        "assignment_strategy": "random_split", "feature_flag_key": None, "surface": "checkout",
        "journey_status": "active", "order_status": "paid", "order_total": D(100), "order_currency": "USD",
        "loyalty_projection_points": 10, "recorded_at": utc("2026-03-01T10:00:00Z"),
        "ingested_at": utc("2026-03-01T10:00:00Z"), "loaded_at": utc("2026-03-06T00:00:00Z"),
    }
    # String "true" is not JSON true; a non-string surface is null.
    e2, e3 = rows[(2, SPRING)], rows[(3, SPRING)]
    assert (e2["is_control"], e2["feature_flag_key"], e2["surface"]) == (False, "ff-b", None)
    assert (e3["is_control"], e3["variant_name"], e3["surface"]) == (True, None, "pdp")
    # The first valid entry of a duplicated slug is the exposure.
    assert rows[(6, SPRING)]["variant_key"] == "a"
    assert rows[(15, "Spring-Offer ")]["variant_key"] == " "
    assert rows[(31, "winter-sale")]["variant_key"] == "ok"
    # The JSON-encoded list of the late event, with its own ingestion and load instants.
    late = rows[(9, SPRING)]
    assert (late["variant_key"], late["ingested_at"], late["loaded_at"]) == (
        "a", utc("2026-03-05T12:00:00Z"), utc("2026-03-05T12:05:00Z"))
    # Journey j6 not in the warehouse: nulls; j7's order o99 not in the warehouse: order nulls.
    j6 = rows[(10, SPRING)]
    assert [j6[k] for k in ("order_id", "journey_status", "order_status", "order_total", "order_currency")] \
        == [None] * 5
    j7 = rows[(11, SPRING)]
    assert [j7[k] for k in ("order_id", "journey_status", "order_number", "order_total")] \
        == ["o99", "completed", None, None]


def test_variant_journeys_count_each_journey_under_its_latest_variant(duckdb_build):
    warehouse, _, _, _ = duckdb_build
    rows = keyed(mart(warehouse, "experiment_variant_journeys"), "slug", "variant_key")
    cols = ("variant_name", "is_control", "journey_count",
            "active_journeys", "stalled_journeys", "completed_journeys")
    got = {key: tuple(row[c] for c in cols) for key, row in rows.items()}
    assert got == {
        # Latest spring-offer exposure per journey: j1 b (03-02 after a), j2 b (tie at 03-03 12:00,
        # id 5 > 4), j3 a, j4 a (03-06 after b), j5 a, j6 a, j7 b.
        # a: j3 completed, j4 active, j5 stalled; j6 has no journey row (not in the source: a counted
        # reject, contract section 3 / issue 10) and is no journey -> 3, 1, 1, 1.
        # Its latest named exposure is event 4 "Spring A v2" (events 6, 8, 9, 10 have no name).
        (SPRING, "a"): ("Spring A v2", False, 3, 1, 1, 1),
        # b: j1 active, j2 stalled, j7 completed; latest named: event 7. "true" string -> not control.
        (SPRING, "b"): ("Spring B final", False, 3, 1, 1, 1),
        # ctl: j2 moved on; its only name was the number 5 -> null; isControl JSON true.
        (SPRING, "ctl"): (None, True, 0, 0, 0, 0),
        ("summer", "x"): (None, False, 1, 1, 0, 0),
        ("big-spender", "v1"): (None, False, 2, 1, 0, 1),
        ("future-slug", "a"): (None, False, 1, 1, 0, 0),
        ("Spring-Offer ", " "): (None, False, 1, 0, 0, 1),
        ("winter-sale", "ok"): (None, False, 1, 0, 0, 1),
    }


def test_slug_summary(duckdb_build):
    warehouse, _, _, _ = duckdb_build
    rows = keyed(mart(warehouse, "experiment_slug_summary"), "slug")
    cols = ("journey_count", "variant_count", "exposure_count", "first_exposure_at", "last_exposure_at")
    got = {slug: tuple(row[c] for c in cols) for slug, row in rows.items()}
    assert got == {
        # Journeys j1..j7 but j6 (no journey row: no journey); variants a, b, ctl; events 1-11 (event
        # 6 once, event 10 of j6 still an exposure); first event 1, last event 8.
        SPRING: (6, 3, 11, utc("2026-03-01T10:00:00Z"), utc("2026-03-06T00:00:01Z")),
        "summer": (1, 1, 1, utc("2026-03-02T10:00:00Z"), utc("2026-03-02T10:00:00Z")),
        "big-spender": (2, 1, 2, utc("2026-03-01T12:00:00Z"), utc("2026-03-02T12:00:00Z")),
        "future-slug": (1, 1, 1, utc("2026-03-07T00:00:00Z"), utc("2026-03-07T00:00:00Z")),
        "Spring-Offer ": (1, 1, 1, utc("2026-03-04T08:00:00Z"), utc("2026-03-04T08:00:00Z")),
        "winter-sale": (1, 1, 1, utc("2026-03-04T11:00:00Z"), utc("2026-03-04T11:00:00Z")),
    }


def test_daily_assignments_spine_zero_days_and_late_events(duckdb_build):
    warehouse, _, _, _ = duckdb_build
    got = {(r["slug"], str(r["activity_date"])): (r["exposure_count"], r["journey_count"])
           for r in mart(warehouse, "experiment_daily_assignments")}
    assert got == {
        # 03-01: events 1 (j1) and 3 (j2, 23:30Z stays on 03-01).
        (SPRING, "2026-03-01"): (2, 2),
        # 03-02: event 2 (j1) and the late event 9 (j5), loaded 03-05 but counted the day it happened.
        (SPRING, "2026-03-02"): (2, 2),
        # 03-03: events 4 and 5 (both j2) and 6 (j3, 00:00Z): 3 exposures, 2 journeys.
        (SPRING, "2026-03-03"): (3, 2),
        (SPRING, "2026-03-04"): (0, 0),
        # 03-05: events 7 (23:59:59Z), 10, 11; event 8 (03-06 00:00:01Z) is after the as-of date.
        # Event 10's journey j6 has no journey row: an exposure, no journey.
        (SPRING, "2026-03-05"): (3, 2),
        ("summer", "2026-03-02"): (1, 1),
        ("summer", "2026-03-03"): (0, 0),
        ("summer", "2026-03-04"): (0, 0),
        ("summer", "2026-03-05"): (0, 0),
        ("big-spender", "2026-03-01"): (1, 1),
        ("big-spender", "2026-03-02"): (1, 1),
        ("big-spender", "2026-03-03"): (0, 0),
        ("big-spender", "2026-03-04"): (0, 0),
        ("big-spender", "2026-03-05"): (0, 0),
        ("Spring-Offer ", "2026-03-04"): (1, 1),
        ("Spring-Offer ", "2026-03-05"): (0, 0),
        ("winter-sale", "2026-03-04"): (1, 1),
        ("winter-sale", "2026-03-05"): (0, 0),
        # future-slug: first exposed 03-07, after the as-of date: no rows.
    }


EXPECTED_SNAPSHOT = {
    # spring-offer, USD: journeys j1, j2 (both order o1) and j3 (o2, refunded: not booked).
    # o1 once although reached by 2 journeys and 4 exposures: 100.00, 1 order, 10 points.
    # Last activity: j2's events 4/5 at 03-03 12:00.
    (SPRING, "USD"): (D(100), 1, 3, 10, utc("2026-03-03T12:00:00Z")),
    # spring-offer, EUR: j4 (o3 fulfilled 20.50, 3 points) and j5 (o4 pending). j4's event 8 is last.
    (SPRING, "EUR"): (D("20.5"), 1, 2, 3, utc("2026-03-06T00:00:01Z")),
    # j6 (no journey row) and j7 (no order row) have no currency: not counted anywhere.
    ("summer", "USD"): (D(100), 1, 1, 10, utc("2026-03-02T10:00:00Z")),
    # 9999999999.99 * 2 = 19999999999.98 (past numeric(12,2)); 2e9 * 2 = 4e9 points (past integer).
    ("big-spender", "JPY"): (D("19999999999.98"), 2, 2, 4_000_000_000, utc("2026-03-02T12:00:00Z")),
    ("future-slug", "USD"): (D(100), 1, 1, 10, utc("2026-03-07T00:00:00Z")),
    # Only j3, whose order is refunded: zeros, not nulls.
    ("Spring-Offer ", "USD"): (D(0), 0, 1, 0, utc("2026-03-04T08:00:00Z")),
    ("winter-sale", "USD"): (D(0), 0, 1, 0, utc("2026-03-04T11:00:00Z")),
}
SNAPSHOT_COLUMNS = ("order_total", "order_count", "journey_count", "loyalty_points", "last_activity")


def test_conversion_snapshot_distinct_orders_per_currency(duckdb_build):
    warehouse, _, _, _ = duckdb_build
    rows = mart(warehouse, "experiment_conversion_snapshot")
    got = {(r["slug"], r["order_currency"]): tuple(r[c] for c in SNAPSHOT_COLUMNS) for r in rows}
    assert got == EXPECTED_SNAPSHOT
    # Exact decimals with two places, zeros included.
    assert sorted(str(r["order_total"]) for r in rows) == [
        "0.00", "0.00", "100.00", "100.00", "100.00", "19999999999.98", "20.50"]


def test_conversion_snapshot_history_holds_the_as_of_date(duckdb_build):
    warehouse, _, _, _ = duckdb_build
    rows = mart(warehouse, "experiment_conversion_snapshot_history")
    got = {(str(r["snapshot_date"]), r["slug"], r["order_currency"]): tuple(r[c] for c in SNAPSHOT_COLUMNS)
           for r in rows}
    assert got == {(AS_OF, *key): value for key, value in EXPECTED_SNAPSHOT.items()}


def test_guardrail_status_thresholds_are_exclusive(duckdb_build):
    warehouse, _, _, _ = duckdb_build
    rows = keyed(mart(warehouse, "provider_guardrail_status"), "provider_id")
    cols = ("provider_name", "platform", "window_end",
            "guardrail_failures", "replay_failures", "severity", "reasons")
    got = {pid: tuple(row[c] for c in cols) for pid, row in rows.items()}
    assert got == {
        # Exactly 2 and 4 are not above the thresholds: warning.
        "p1": ("Provider One", "instagram", utc("2026-03-05T11:00:00Z"), 2, 4, "warning",
               "guardrail_failures 2; replay_failures 4"),
        # Tie on window_end: id 5 beats id 3. 3 > 2 and 5 > 4.
        "p2": ("Provider Two", "tiktok", utc("2026-03-05T11:00:00Z"), 3, 5, "critical",
               "guardrail_failures 3 > 2; replay_failures 5 > 4"),
        # Later window_end (id 6) beats the greater id 7.
        "p3": ("Provider Three", "youtube", utc("2026-03-05T12:00:00Z"), 0, 5, "critical",
               "replay_failures 5 > 4"),
        "p4": ("Provider Four", None, utc("2026-03-05T12:00:00Z"), 0, 0, "ok", ""),
        "p5": (None, None, utc("2026-03-05T12:00:00Z"), 3, 0, "critical", "guardrail_failures 3 > 2"),
    }
    assert rows["p2"]["window_start"] == utc("2026-03-05T10:00:00Z")
    p2 = rows["p2"]
    assert (p2["experiment_slug"], p2["variant_key"], p2["replay_total"]) == (SPRING, "b", 10)


def test_history_rerun_replaces_its_date_and_keeps_others(duckdb_build, tmp_path):
    """On a copy of the built warehouse: o4 becomes paid, then the snapshot and its history run again
    for the same date (replaced, not duplicated) and for the current date (added)."""
    warehouse, manifest, _, _ = duckdb_build
    # Same file name: DuckDB names the database after the file, and the manifest is reused.
    path = tmp_path / "copy" / warehouse.engine.path.name
    path.parent.mkdir()
    shutil.copy(warehouse.engine.path, path)
    copy = Warehouse(url=f"duckdb:///{path}", schema_name=SCHEMA)
    with copy.connect() as conn:
        conn.execute(f"update {SCHEMA}_raw.orders set status = 'paid' where id = 'o4'")
    # int_journey_order_state is what notices o4's change; the journeys it marks and their orders
    # move the incremental snapshot's sums (the per-journey and per-order models between).
    select = [
        "run", "--select",
        "int_journey_order_state", "int_experiment_journey_exposures", "int_experiment_slug_orders",
        "experiment_conversion_snapshot", "experiment_conversion_snapshot_history",
    ]
    run_dbt(copy, select, tmp_path, DBT_VARS, manifest=manifest)
    without_as_of = {k: v for k, v in DBT_VARS.items() if k != "as_of_date"}
    run_dbt(copy, select, tmp_path, without_as_of, manifest=manifest)
    today = datetime.now(UTC).date()

    rows = mart(copy, "experiment_conversion_snapshot_history")
    # spring-offer EUR now books o3 + o4: 20.50 + 7.00 = 27.50, 2 orders, 3 + 1 = 4 points.
    expected = dict(EXPECTED_SNAPSHOT)
    expected[(SPRING, "EUR")] = (D("27.5"), 2, 2, 4, utc("2026-03-06T00:00:01Z"))
    by_date: dict[str, dict] = {}
    for r in rows:
        by_date.setdefault(str(r["snapshot_date"]), {})[(r["slug"], r["order_currency"])] = tuple(
            r[c] for c in SNAPSHOT_COLUMNS)
    assert set(by_date) == {AS_OF, today.isoformat()}
    assert by_date[AS_OF] == expected
    assert by_date[today.isoformat()] == expected


# --- Postgres: the same marts ------------------------------------------------------------------

@pytest.mark.postgres
def test_postgres_builds_the_same_marts(duckdb_build, make_pg_database, tmp_path):
    from conftest import PG_ADMIN_DSN, TEST_DB_TIMEZONE, postgres_available

    if not postgres_available():
        where = PG_ADMIN_DSN.rsplit("@", 1)[-1]
        pytest.fail(f"PostgreSQL is not reachable at {where}: start it or set PRICING_OPS_TEST_PG")
    duck, _, _, _ = duckdb_build
    url = make_pg_database()
    # BI readers' role, as in production (roles are cluster-wide: created once, left in place).
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True) as admin:
        admin.execute(
            "do $$ begin if not exists (select 1 from pg_roles where rolname = 'bi_reader') "
            "then create role bi_reader nologin; end if; end $$"
        )
    pg = Warehouse(url=url, schema_name=SCHEMA)
    load_raw_tables(pg, RAW)
    manifest = parse_manifest(pg, tmp_path)
    started = time.perf_counter()
    run_dbt(pg, ["build"], tmp_path, DBT_VARS, manifest=manifest)
    print(f"dbt build on Postgres: {time.perf_counter() - started:.1f} s")
    session = _show_session(pg, tmp_path, manifest)
    assert session["session_tz"] == TEST_DB_TIMEZONE

    for name in MARTS:
        duck_rows, pg_rows = mart(duck, name), mart(pg, name)
        assert pg_rows == duck_rows, name
        assert pg_rows, f"{name} is empty: the comparison would prove nothing"
    # The rejects agree too, except the text form of the offending JSON (jsonb reformats it).
    rejects = f"{SCHEMA}_staging.pricing_experiment_payload_rejects"
    assert table_rows(pg, rejects, drop=["entry"]) == table_rows(duck, rejects, drop=["entry"])

    with psycopg.connect(url) as conn:
        grants = dict(conn.execute(
            "select c.relname, has_table_privilege('bi_reader', c.oid, 'select') from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace where n.nspname like 'analytics%' "
            "and c.relkind in ('r', 'v')"
        ).fetchall())
        # The export's keyset reads of the segments mart are range scans.
        index_defs = [row[0] for row in conn.execute(
            "select indexdef from pg_indexes where schemaname = 'analytics' "
            "and tablename = 'onboarding_pricing_experiment_segments'"
        ).fetchall()]
    assert {name for name, granted in grants.items() if granted} == set(MARTS)
    # ... and the incremental runs replace its rows by event_id (macros/materializations/).
    assert sorted(d.split(" USING ")[1] for d in index_defs) == ["btree (event_id)", "btree (loaded_at, event_id)"]


def _not_null_in_contracts(manifest_nodes: dict) -> dict[str, set[str]]:
    """{mart: columns whose contract says constraints: not_null}, from the parsed project."""
    out: dict[str, set[str]] = {}
    for node in manifest_nodes.values():
        if node.get("resource_type") == "model" and node["config"].get("contract", {}).get("enforced"):
            columns = {name for name, col in node["columns"].items()
                       if any(c.get("type") == "not_null" for c in col.get("constraints", []))}
            if columns:
                out[node["name"]] = columns
    return out


def _not_null_columns(warehouse: Warehouse, table: str) -> set[str]:
    with warehouse.connect(read_only=True) as conn:
        rows = conn.fetchall(
            "select column_name from information_schema.columns where table_schema = :s and table_name = :t "
            "and is_nullable = 'NO'", {"s": SCHEMA, "t": table})
    return {row[0] for row in rows}


@pytest.mark.postgres
@pytest.mark.parametrize("engine", ["duckdb", "postgres"])
def test_the_database_refuses_nulls_the_contracts_forbid(engine, make_pg_database, tmp_path):
    """Each mart column a contract declares not null is NOT NULL in the database, so a null never
    reaches BI; a mart table made before its contract said so gets the constraint on its next
    incremental run."""
    url = f"duckdb:///{tmp_path / 'wh.duckdb'}" if engine == "duckdb" else make_pg_database()
    warehouse = Warehouse(url=url, schema_name=SCHEMA)
    load_raw_tables(warehouse, RAW)
    manifest = parse_manifest(warehouse, tmp_path)
    run_dbt(warehouse, ["build"], tmp_path, DBT_VARS, manifest=manifest)
    declared = _not_null_in_contracts(json.loads((tmp_path / "target" / "manifest.json").read_text())["nodes"])
    assert set(declared) == set(MARTS)
    for name, columns in declared.items():
        assert columns <= _not_null_columns(warehouse, name), name

    # An older table: built without the constraint. The next incremental run adds it back.
    with warehouse.connect() as conn:
        conn.execute(f"alter table {SCHEMA}.experiment_variant_journeys alter column journey_count drop not null")
    assert "journey_count" not in _not_null_columns(warehouse, "experiment_variant_journeys")
    run_dbt(warehouse, ["build", "--select", "experiment_variant_journeys"], tmp_path, DBT_VARS, manifest=manifest)
    assert "journey_count" in _not_null_columns(warehouse, "experiment_variant_journeys")
    with warehouse.connect() as conn, pytest.raises(Exception, match="(?i)not.null"):
        conn.execute(f"insert into {SCHEMA}.experiment_slug_summary (slug) values ('a null everywhere else')")
