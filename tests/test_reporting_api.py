"""The reporting-API source against a real HTTP server on 127.0.0.1 serving the contract's feed:
paging by `nextCursor`, retries of 503/429, a clear 401 that never shows the key, and the extract
asset filling the raw tables exactly, incrementally and idempotently."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import dagster as dg
import pytest
from reporting_api_server import FakeReportingApi, encode_cursor, serve

from assets.extract import build_extract_assets
from assets.extract_api import extract_from_api
from models.reporting_api_rows import map_export_rows
from resources.reporting_api import ReportingApiAuthError, ReportingApiClient, ReportingApiError
from resources.source import SourceDatabase
from resources.warehouse import Warehouse
from resources.warehouse_writer import writer_lock_of

KEY = "sk_live_9f2c71a0b5e4d3c2"
ALL_RAW = {"fulfillment_providers", "orders", "onboarding_journeys", "onboarding_journey_events",
           "provider_guardrail_telemetry"}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def export_row(event_id, journey, order, slug, variant, name, control, strategy, flag, status, recorded,
               total, currency, points) -> dict:
    """One export row with every field of contract section 5, in its order."""
    return {
        "eventId": event_id, "journeyId": journey, "orderId": order, "orderNumber": f"N-{order}",
        "slug": slug, "variantKey": variant, "variantName": name, "isControl": control,
        "assignmentStrategy": strategy, "featureFlagKey": flag, "status": status, "recordedAt": recorded,
        "orderTotal": total, "orderCurrency": currency, "loyaltyProjectionPoints": points,
    }


def entry(slug, variant, name, control, strategy, flag) -> dict:
    return {"slug": slug, "variantKey": variant, "variantName": name, "isControl": control,
            "assignmentStrategy": strategy, "featureFlagKey": flag}


FEED = [
    export_row(501, "j-1", "o-1", "spring-offer", "b", "Spring 15% off", False, "random_split", None,
               "active", "2026-11-20T08:15:00Z", "129.90", "EUR", 130),
    export_row(501, "j-1", "o-1", "loyalty-boost", "control", "Control", True, "feature_flag", "ff-loyalty",
               "active", "2026-11-20T08:15:00Z", "129.90", "EUR", 130),
    export_row(502, "j-2", "o-2", "spring-offer", "a", "Full price", True, "random_split", None,
               "stalled", "2026-11-20T23:59:59Z", "0.00", "USD", 0),
    export_row(503, "j-1", "o-1", "spring-offer", "a", "Full price", True, "random_split", None,
               "completed", "2026-11-21T09:00:00.250000Z", "129.90", "EUR", 130),
    # Kept byte for byte: dbt decides what is an exposure, not the extract.
    export_row(504, "j-3", "o-3", "Spring Offer ", "B", None, False, "sequential", None,
               "active", "2026-11-19T12:00:00+01:00", "1500.00", "JPY", 1500),
    export_row(504, "j-3", "o-3", "loyalty-boost", "b", "Double points", False, "feature_flag", "ff-loyalty",
               "active", "2026-11-19T12:00:00+01:00", "1500.00", "JPY", 1500),
    # No recordedAt: left out, counted.
    export_row(505, "j-3", "o-3", "spring-offer", "b", None, False, None, None,
               "active", None, "1500.00", "JPY", 1500),
]

EXPECTED_EVENTS = {
    501: ("j-1", [entry("spring-offer", "b", "Spring 15% off", False, "random_split", None),
                  entry("loyalty-boost", "control", "Control", True, "feature_flag", "ff-loyalty")],
          utc("2026-11-20T08:15:00Z")),
    502: ("j-2", [entry("spring-offer", "a", "Full price", True, "random_split", None)], utc("2026-11-20T23:59:59Z")),
    503: ("j-1", [entry("spring-offer", "a", "Full price", True, "random_split", None)],
          utc("2026-11-21T09:00:00.25Z")),
    504: ("j-3", [entry("Spring Offer ", "B", None, False, "sequential", None),
                  entry("loyalty-boost", "b", "Double points", False, "feature_flag", "ff-loyalty")],
          utc("2026-11-19T11:00:00Z")),
}
EXPECTED_JOURNEYS = {
    # id: (order_id, status, progress_pct, referral_risk, created_at, updated_at)
    "j-1": ("o-1", "completed", 0, None, utc("2026-11-20T08:15:00Z"), utc("2026-11-21T09:00:00.25Z")),
    "j-2": ("o-2", "stalled", 0, None, utc("2026-11-20T23:59:59Z"), utc("2026-11-20T23:59:59Z")),
    "j-3": ("o-3", "active", 0, None, utc("2026-11-19T11:00:00Z"), utc("2026-11-19T11:00:00Z")),
}
EXPECTED_ORDERS = {
    # id: (order_number, provider_id, status, total, currency, points, platform, channel, created_at, updated_at)
    "o-1": ("N-o-1", None, "unknown", Decimal("129.90"), "EUR", 130, None, None,
            utc("2026-11-20T08:15:00Z"), utc("2026-11-21T09:00:00.25Z")),
    "o-2": ("N-o-2", None, "unknown", Decimal("0.00"), "USD", 0, None, None,
            utc("2026-11-20T23:59:59Z"), utc("2026-11-20T23:59:59Z")),
    "o-3": ("N-o-3", None, "unknown", Decimal("1500.00"), "JPY", 1500, None, None,
            utc("2026-11-19T11:00:00Z"), utc("2026-11-19T11:00:00Z")),
}


def client_for(api: FakeReportingApi, **kwargs) -> ReportingApiClient:
    return ReportingApiClient(api.base_url, KEY, backoff_seconds=0.01, **kwargs)


def read_all(client: ReportingApiClient, cursor=None) -> list[dict]:
    return [row for page in client.pages(cursor) for row in page.events]


# Client -----------------------------------------------------------------------------------------------
def test_pages_follow_next_cursor_until_null_with_the_key_header():
    with serve(FakeReportingApi(FEED, KEY, max_page=1000)) as api:
        pages = list(client_for(api, page_size=2).pages())

    assert [[r["eventId"] for r in p.events] for p in pages] == [[501, 501], [502, 503], [504, 504], [505]]
    assert [p.request_cursor for p in pages] == [None, encode_cursor(2), encode_cursor(4), encode_cursor(6)]
    assert [p.next_cursor for p in pages] == [encode_cursor(2), encode_cursor(4), encode_cursor(6), None]
    assert [(r.path, r.params) for r in api.requests] == [
        ("/api/v1/reporting/onboarding/experiment-events", {"limit": "2"}),
        *[("/api/v1/reporting/onboarding/experiment-events", {"limit": "2", "cursor": encode_cursor(n)})
          for n in (2, 4, 6)],
    ]
    assert {r.api_key for r in api.requests} == {KEY}


def test_server_page_cap_smaller_than_limit_is_followed():
    with serve(FakeReportingApi(FEED, KEY, max_page=3)) as api:
        rows = read_all(client_for(api, page_size=500))
    assert rows == FEED
    assert [r.params.get("cursor") for r in api.requests] == [None, encode_cursor(3), encode_cursor(6)]


def test_503_then_success_and_429_retry_after_are_retried():
    api = FakeReportingApi(FEED, KEY, max_page=4)
    api.script = [(503, {}, b"upstream busy"), (429, {"Retry-After": "1"}, b"slow down")]
    with serve(api):
        client = client_for(api)
        rows = read_all(client)

    assert rows == FEED
    assert [r.status for r in api.requests] == [503, 429, 200, 200]
    # The first page was asked three times with the same parameters, the second once.
    assert [r.params.get("cursor") for r in api.requests] == [None, None, None, encode_cursor(4)]
    assert client.retries == 2
    assert api.requests[2].at - api.requests[1].at >= 0.95  # Retry-After: 1 honoured


def test_retries_are_bounded_and_the_error_says_where_and_what_to_check():
    api = FakeReportingApi(FEED, KEY, always_status=503)
    with serve(api), pytest.raises(ReportingApiError) as info:
        read_all(client_for(api, max_attempts=3))
    assert len(api.requests) == 3
    message = str(info.value)
    assert f"reporting API {api.base_url}/api/v1/reporting/onboarding/experiment-events page 1 answered HTTP 503" in message
    assert "3 attempts in a row" in message and "ONBOARDING_EXPORT_API_BASE_URL" in message


def test_other_4xx_fails_at_once_and_an_echoed_key_is_redacted():
    api = FakeReportingApi(FEED, KEY, always_status=422)
    with serve(api), pytest.raises(ReportingApiError) as info:
        read_all(client_for(api))
    assert len(api.requests) == 1
    assert "HTTP 422" in str(info.value) and "[redacted]" in str(info.value)
    assert KEY not in str(info.value)


def test_401_names_the_setting_and_never_shows_the_key(caplog, capfd):
    caplog.set_level(logging.DEBUG)
    with serve(FakeReportingApi(FEED, "another-key")) as api, pytest.raises(ReportingApiAuthError) as info:
        read_all(client_for(api))
    message = str(info.value)
    assert message == (
        f"reporting API {api.base_url}/api/v1/reporting/onboarding/experiment-events page 1 refused the API key "
        "(HTTP 401): set CHECKOUT_API_KEY to a key the app at ONBOARDING_EXPORT_API_BASE_URL accepts for "
        "reporting reads"
    )
    assert len(api.requests) == 1  # not retried
    assert KEY not in repr(info.value) and KEY not in caplog.text
    out, err = capfd.readouterr()
    assert KEY not in out and KEY not in err
    assert KEY not in repr(client_for(api))


def test_missing_key_fails_before_any_request():
    with pytest.raises(ReportingApiAuthError, match="CHECKOUT_API_KEY is not set"):
        ReportingApiClient("http://127.0.0.1:9", None)


def test_map_export_rows_skips_unusable_parts_and_says_why():
    good = export_row(1, "j", "o", "s", "a", None, False, None, None, "active", "2026-11-20T00:00:00Z", "1.00", "USD", 1)
    mapped = map_export_rows([
        good,
        {**good, "eventId": 2, "orderTotal": "1.005"},  # not exact to the cent: the order part is left out
        {**good, "eventId": 3, "orderId": "o-3", "orderCurrency": "EURO"},
        {**good, "eventId": 4, "journeyId": ""},
        {**good, "eventId": 5, "recordedAt": "2026-11-20T00:00:00"},  # no offset: ambiguous
        "not an object",
    ])
    assert [e.id for e in mapped.events] == [1, 2, 3]
    assert list(mapped.orders) == ["o"] and mapped.orders["o"].total == Decimal("1.00")
    assert mapped.skipped == {
        "order left out: orderNumber, orderTotal, orderCurrency or loyaltyProjectionPoints unusable": 2,
        "row without a usable eventId, journeyId or recordedAt": 2,
        "row is not a JSON object": 1,
    }


# Extract asset ----------------------------------------------------------------------------------------
def raw_rows(warehouse: Warehouse, table: str) -> dict:
    with warehouse.connect() as conn:
        rows = conn.fetch_dicts(f"select * from {warehouse.raw_schema}.{table}")
    out = {}
    for row in rows:
        key = row.pop("id")
        if "payload" in row and isinstance(row["payload"], str):
            row["payload"] = json.loads(row["payload"])  # DuckDB hands JSON out as text, psycopg as objects
        out[key] = row
    return out


def events_view(warehouse: Warehouse) -> dict:
    return {
        k: (r["journey_id"], r["payload"]["pricingExperiments"], r["recorded_at"])
        for k, r in raw_rows(warehouse, "onboarding_journey_events").items()
        if r["event_type"] == "pricing_experiment_segment" and set(r["payload"]) == {"pricingExperiments"}
    }


def journeys_view(warehouse: Warehouse) -> dict:
    cols = ("order_id", "status", "progress_pct", "referral_risk", "created_at", "updated_at")
    return {k: tuple(r[c] for c in cols) for k, r in raw_rows(warehouse, "onboarding_journeys").items()}


def orders_view(warehouse: Warehouse) -> dict:
    cols = ("order_number", "provider_id", "status", "total", "currency", "loyalty_projection_points",
            "platform", "channel", "created_at", "updated_at")
    return {k: tuple(r[c] for c in cols) for k, r in raw_rows(warehouse, "orders").items()}


def materialize_extract(source: SourceDatabase, warehouse: Warehouse, instance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [build_extract_assets(timedelta(minutes=10))],
        resources={"source": source, "warehouse": warehouse, "warehouse_writer": writer_lock_of(warehouse)},
        instance=instance,
        raise_on_error=False,
    )


def materialized(result: dg.ExecuteInProcessResult) -> dict[str, dict]:
    return {
        m.asset_key.path[-1]: {k: v.value for k, v in m.metadata.items()}
        for m in result.asset_materializations_for_node("extract_source")
    }


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path) -> Warehouse:
    if request.param == "duckdb":
        return Warehouse(url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    return Warehouse(url=request.getfixturevalue("make_pg_database")())


def test_extract_fills_raw_tables_exactly_and_a_rerun_adds_nothing(warehouse):
    api = FakeReportingApi(list(FEED), KEY, max_page=2)
    with serve(api), dg.instance_for_test() as instance:
        source = SourceDatabase(api_base_url=api.base_url, api_key=KEY)

        first = materialize_extract(source, warehouse, instance)
        assert first.success
        meta = materialized(first)
        # Providers and telemetry are not in the feed: left unchanged (empty), yet reported, or the dbt
        # step downstream of all five raw tables would be skipped and no mart built.
        assert set(meta) == ALL_RAW
        for table in ("fulfillment_providers", "provider_guardrail_telemetry"):
            assert meta[table] == {
                "source": "not available from the reporting API: left unchanged (needs ONBOARDING_EXPORT_DATABASE_URL)",
                "rows_inserted": 0, "dagster/row_count": 0}
        assert (meta["onboarding_journey_events"]["rows_inserted"], meta["onboarding_journeys"]["rows_inserted"],
                meta["orders"]["rows_inserted"]) == (4, 3, 3)
        assert meta["onboarding_journey_events"]["api_pages"] == 4
        assert meta["onboarding_journey_events"]["rows_skipped"] == 1
        assert events_view(warehouse) == EXPECTED_EVENTS
        assert journeys_view(warehouse) == EXPECTED_JOURNEYS
        assert orders_view(warehouse) == EXPECTED_ORDERS
        loaded = {k: (r["loaded_at"], r["ingested_at"]) for k, r in raw_rows(warehouse, "onboarding_journey_events").items()}
        first_loaded_at = loaded[501][0]
        assert set(loaded.values()) == {(first_loaded_at, first_loaded_at)}  # one flush, one instant
        with warehouse.connect() as conn:
            state = conn.fetchall(f"select table_name, resume_cursor from {warehouse.raw_schema}.api_extract_state "
                                  "order by table_name")
        assert state == [(t, encode_cursor(6)) for t in ("onboarding_journey_events", "onboarding_journeys", "orders")]

        # Nothing new: the last page is read again and nothing changes.
        api.requests.clear()
        second = materialize_extract(source, warehouse, instance)
        assert second.success
        assert [r.params.get("cursor") for r in api.requests] == [encode_cursor(6)]
        assert {t: m["rows_inserted"] for t, m in materialized(second).items()} == dict.fromkeys(ALL_RAW, 0)
        assert events_view(warehouse) == EXPECTED_EVENTS
        assert journeys_view(warehouse) == EXPECTED_JOURNEYS
        assert orders_view(warehouse) == EXPECTED_ORDERS
        assert {r["loaded_at"] for r in raw_rows(warehouse, "onboarding_journey_events").values()} == {first_loaded_at}

        # New rows: a late event (older recordedAt) that also moves a journey, and a new journey. An order
        # status the warehouse already knows (from a database read) is kept: the feed has none.
        with warehouse.connect() as conn:
            conn.execute(f"update {warehouse.raw_schema}.orders set status = 'paid' where id = 'o-2'")
        api.rows += [
            export_row(506, "j-2", "o-2", "spring-offer", "b", "Spring 15% off", False, "random_split", None,
                       "completed", "2026-11-18T00:00:00Z", "0.00", "USD", 0),
            export_row(507, "j-4", "o-4", "spring-offer", "b", "Spring 15% off", False, "random_split", None,
                       "active", "2026-11-22T10:00:00Z", "80.00", "USD", 8),
        ]
        api.requests.clear()
        third = materialize_extract(source, warehouse, instance)
        assert third.success
        assert [r.params.get("cursor") for r in api.requests] == [encode_cursor(6), encode_cursor(8)]
        meta = materialized(third)
        assert (meta["onboarding_journey_events"]["rows_inserted"], meta["onboarding_journeys"]["rows_inserted"],
                meta["onboarding_journeys"]["rows_updated"], meta["orders"]["rows_inserted"]) == (2, 1, 1, 1)
        events = raw_rows(warehouse, "onboarding_journey_events")
        assert set(events) == {501, 502, 503, 504, 506, 507}
        assert events[506]["loaded_at"] == events[507]["loaded_at"] > first_loaded_at
        assert events_view(warehouse)[506] == (
            "j-2", [entry("spring-offer", "b", "Spring 15% off", False, "random_split", None)],
            utc("2026-11-18T00:00:00Z"))
        journeys = journeys_view(warehouse)
        assert journeys["j-2"] == ("o-2", "completed", 0, None, utc("2026-11-18T00:00:00Z"), utc("2026-11-20T23:59:59Z"))
        assert journeys["j-4"] == ("o-4", "active", 0, None, utc("2026-11-22T10:00:00Z"), utc("2026-11-22T10:00:00Z"))
        orders = orders_view(warehouse)
        assert orders["o-2"][2] == "paid"
        assert orders["o-4"] == ("N-o-4", None, "unknown", Decimal("80.00"), "USD", 8, None, None,
                                 utc("2026-11-22T10:00:00Z"), utc("2026-11-22T10:00:00Z"))


def test_refused_key_fails_the_run_clearly_without_the_key_anywhere(tmp_path, caplog, capfd):
    caplog.set_level(logging.DEBUG)
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    with serve(FakeReportingApi(FEED, "the-right-key")) as api, dg.instance_for_test() as instance:
        result = materialize_extract(SourceDatabase(api_base_url=api.base_url, api_key=KEY), warehouse, instance)
        assert not result.success
        error = result.failure_data_for_node("extract_source").error
        assert "refused the API key (HTTP 401): set CHECKOUT_API_KEY" in error.to_string()
        records = instance.all_logs(result.run_id)
    assert records and all(KEY not in str(record) for record in records)
    assert KEY not in error.to_string() and KEY not in caplog.text
    out, err = capfd.readouterr()
    assert KEY not in out and KEY not in err


def test_an_event_split_across_pages_and_an_interrupted_run_lose_nothing(tmp_path):
    rows = [
        *[export_row(601, "j-1", "o-1", slug, "a", None, False, None, None, "active", "2026-11-20T01:00:00Z",
                     "10.00", "USD", 1) for slug in ("s1", "s2", "s3")],
        export_row(602, "j-2", "o-2", "s1", "b", None, False, None, None, "active", "2026-11-20T02:00:00Z",
                   "20.00", "USD", 2),
        *[export_row(603, "j-1", "o-1", slug, "b", None, False, None, None, "stalled", "2026-11-20T03:00:00Z",
                     "10.00", "USD", 1) for slug in ("s1", "s2")],
        export_row(604, "j-3", "o-3", "s1", "a", None, False, None, None, "active", "2026-11-20T04:00:00Z",
                   "30.00", "USD", 3),
    ]
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    api = FakeReportingApi(rows, KEY, max_page=2, refuse_from=6)  # the key is revoked before the last page
    with serve(api):
        source = SourceDatabase(api_base_url=api.base_url, api_key=KEY)
        with pytest.raises(ReportingApiAuthError):
            list(extract_from_api(dg.build_asset_context(), source, warehouse, ALL_RAW, flush_rows=2))
        # 601 waited for its third row on the next page; 603 was not complete when the run stopped.
        assert {k: [e["slug"] for e in v[1]] for k, v in events_view(warehouse).items()} == {
            601: ["s1", "s2", "s3"], 602: ["s1"]}
        with warehouse.connect() as conn:
            assert conn.fetchall(f"select distinct resume_cursor from {warehouse.raw_schema}.api_extract_state") == [
                (encode_cursor(4),)]
        first = raw_rows(warehouse, "onboarding_journey_events")
        assert first[601]["loaded_at"] < first[602]["loaded_at"]  # one transaction per flush, each later

        api.refuse_from = None
        api.requests.clear()
        list(extract_from_api(dg.build_asset_context(), source, warehouse, ALL_RAW, flush_rows=2))
    assert [r.params.get("cursor") for r in api.requests] == [encode_cursor(4), encode_cursor(6)]
    assert {k: [e["slug"] for e in v[1]] for k, v in events_view(warehouse).items()} == {
        601: ["s1", "s2", "s3"], 602: ["s1"], 603: ["s1", "s2"], 604: ["s1"]}
    final = raw_rows(warehouse, "onboarding_journey_events")
    assert (final[601]["loaded_at"], final[602]["loaded_at"]) == (first[601]["loaded_at"], first[602]["loaded_at"])
    assert final[603]["loaded_at"] > first[602]["loaded_at"]
    assert journeys_view(warehouse)["j-1"][1] == "stalled"
