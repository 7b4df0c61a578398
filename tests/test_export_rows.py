"""The export's pure rules: row format, cursor document and parsing, Idempotency-Key, names, notices."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from models.export_notices import render_escalation, render_failure, render_success
from models.export_rows import (
    EXPORT_KEYS,
    CursorError,
    ExportCursor,
    ExportRunRecord,
    RowKey,
    batch_idempotency_key,
    batch_object_name,
    failures_in_a_row,
    format_instant,
    format_money,
    ndjson_line,
    parse_cursor,
    s3_object_key,
    start_cursor,
    to_export_row,
)
from models.export_runs import export_is_failing

MART_ROW = {
    "event_id": 4821,
    "journey_id": "j-77",
    "order_id": "o-9",
    "order_number": "SO-1009",
    "slug": "spring-offer",
    "variant_key": "b",
    "variant_name": "Spring 15% off",
    "is_control": False,
    "assignment_strategy": "random_split",
    "feature_flag_key": None,
    "surface": "checkout",
    "journey_status": "stalled",
    "order_status": "paid",
    "order_total": Decimal("12.5"),
    "order_currency": "EUR",
    "loyalty_projection_points": 125,
    # +05:30: the export still says UTC with Z
    "recorded_at": datetime(2026, 11, 26, 14, 45, 3, 123456, tzinfo=timezone(timedelta(hours=5, minutes=30))),
    "ingested_at": datetime(2026, 11, 26, 9, 16, tzinfo=UTC),
    "loaded_at": datetime(2026, 11, 26, 9, 20, tzinfo=UTC),
}


def test_export_row_has_the_contract_keys_in_order_and_formats():
    row = to_export_row(MART_ROW)
    assert list(row) == [
        "eventId", "journeyId", "orderId", "orderNumber", "slug", "variantKey", "variantName", "isControl",
        "assignmentStrategy", "featureFlagKey", "status", "recordedAt", "orderTotal", "orderCurrency",
        "loyaltyProjectionPoints",
    ]
    assert list(row) == list(EXPORT_KEYS)
    assert row == {
        "eventId": 4821, "journeyId": "j-77", "orderId": "o-9", "orderNumber": "SO-1009", "slug": "spring-offer",
        "variantKey": "b", "variantName": "Spring 15% off", "isControl": False, "assignmentStrategy": "random_split",
        "featureFlagKey": None, "status": "stalled", "recordedAt": "2026-11-26T09:15:03.123456Z",
        "orderTotal": "12.50", "orderCurrency": "EUR", "loyaltyProjectionPoints": 125,
    }
    assert ndjson_line(MART_ROW).startswith('{"eventId":4821,"journeyId":"j-77",')


def test_values_never_pass_through_float_and_missing_order_fields_are_null():
    assert format_money(Decimal("9999999999.99")) == "9999999999.99"
    assert format_money(Decimal(0)) == "0.00"
    assert format_money(Decimal("-3.1")) == "-3.10"
    assert format_money(Decimal("1E+2")) == "100.00"
    assert format_money(None) is None
    assert format_instant(datetime(2026, 1, 1, tzinfo=UTC)) == "2026-01-01T00:00:00.000000Z"
    with pytest.raises(ValueError):
        format_instant(datetime(2026, 1, 1))
    row = to_export_row({**MART_ROW, "order_id": None, "order_number": None, "order_total": None,
                         "order_currency": None, "loyalty_projection_points": None, "is_control": None})
    assert (row["orderTotal"], row["orderId"], row["loyaltyProjectionPoints"], row["isControl"]) == (None, None, None, False)


def test_cursor_document_has_the_contract_shape_and_round_trips():
    now = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    cursor = start_cursor(RowKey("2026-11-26T09:20:00.000001Z", 123, "spring-offer"), 1000, now)
    cursor = cursor.advanced(RowKey("2026-11-26T09:20:00.000001Z", 130, "winter"), 500, now + timedelta(seconds=1))
    doc = json.loads(cursor.to_json())
    assert doc == {
        "cursor": "2026-11-26T09:20:00.000001Z", "lastEventId": 130, "lastSlug": "winter", "rowsExported": 1500,
        "updatedAt": "2026-11-26T10:00:01.000000Z",
    }
    assert parse_cursor(cursor.to_json(), "test") == cursor


@pytest.mark.parametrize(
    "text",
    ["2026-11-20T08:00:00Z", "2026-11-20T08:00:00+00:00\n", '"2026-11-20T09:30:00+01:30"', "2026-11-20T08:00:00",
     '{"cursor": "2026-11-20T08:00:00Z", "rowsExported": 42}'],
)
def test_a_hand_edited_bare_timestamp_is_a_replay_cursor(text):
    cursor = parse_cursor(text, "cursor.json")
    assert cursor.is_bare
    assert cursor.loaded_at == datetime(2026, 11, 20, 8, 0, tzinfo=UTC)
    assert cursor.last_event_id is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("", "is empty"),
        ("   \n", "is empty"),
        ("{\"cursor\": \"2026-11-20T08:00:00Z\", ", "is not valid JSON"),
        ("yesterday", "is not an ISO 8601 instant"),
        ('{"lastEventId": 5}', 'has no "cursor" field'),
        ('{"cursor": 1700000000}', '"cursor" must be an ISO 8601 string'),
        ('{"cursor": "2026-11-20T08:00:00Z", "lastEventId": true, "lastSlug": "a"}', '"lastEventId" must be an integer'),
        ('{"cursor": "2026-11-20T08:00:00Z", "lastEventId": 5}', 'without a "lastSlug"'),
        ('{"cursor": "2026-11-20T08:00:00Z", "rowsExported": -1}', '"rowsExported" must be a non-negative'),
        ("[1, 2]", "holds a JSON list"),
        (b"\xff\xfe", "is not UTF-8"),
    ],
)
def test_an_unreadable_cursor_is_refused_with_where_and_how_to_fix(text, why):
    with pytest.raises(CursorError) as info:
        parse_cursor(text, "/data/onboarding_export_cursor.json")
    message = str(info.value)
    assert message.startswith("export cursor /data/onboarding_export_cursor.json")
    assert why in message
    assert "bare ISO 8601 instant" in message and "never restarts from zero" in message


def test_idempotency_key_is_stable_for_the_same_batch_and_differs_otherwise():
    first = RowKey("2026-11-26T09:20:00.000001Z", 1, "a")
    last = RowKey("2026-11-26T09:20:00.000001Z", 999, "b")
    key = batch_idempotency_key(first, last, 1000)
    assert key == batch_idempotency_key(RowKey(*vars(first).values()), RowKey(*vars(last).values()), 1000)
    assert len(key) == 64 and int(key, 16) >= 0
    assert key != batch_idempotency_key(first, last, 999)
    assert key != batch_idempotency_key(first, RowKey(last.loaded_at, 999, "c"), 1000)
    assert key != batch_idempotency_key(RowKey("2026-11-26T09:20:00.000002Z", 1, "a"), last, 1000)


def test_batch_names_sort_by_time_and_are_unique_per_run():
    early = datetime(2026, 11, 26, 9, 0, 0, 5, tzinfo=UTC)
    late = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    names = [
        batch_object_name(early, "run-b", 2, "ndjson"),
        batch_object_name(early, "run-b", 10, "ndjson"),
        batch_object_name(late, "run-a", 1, "ndjson"),
    ]
    assert names == sorted(names)
    assert names[0] == "onboarding_segments_20261126T090000000005Z_run-b_00000002.ndjson"
    assert batch_object_name(early, "run-a", 2, "ndjson") != names[0]
    assert s3_object_key("exports/segments/", late, "run-a", 1, "parquet") == (
        "exports/segments/dt=2026-11-26/onboarding_segments_20261126T100000000000Z_run-a_00000001.parquet"
    )
    assert batch_object_name(early, "../../etc", 1, "csv").startswith("onboarding_segments_20261126T090000000005Z_etc_")


def test_failures_in_a_row_count_back_to_the_last_success():
    assert failures_in_a_row([]) == 0
    assert failures_in_a_row(["success", "failed"]) == 0
    assert failures_in_a_row(["failed", "success", "failed"]) == 1
    assert failures_in_a_row(["failed", "failed", "success"]) == 2
    assert not export_is_failing(1) and export_is_failing(2) and export_is_failing(3)


def test_notices_say_rows_cursor_times_and_run_link_with_values_escaped():
    record = ExportRunRecord(
        run_id="abc-123", started_at=datetime(2026, 11, 26, 9, 0, tzinfo=UTC), sink="webhook", format="ndjson",
        finished_at=datetime(2026, 11, 26, 9, 1, 30, tzinfo=UTC), status="success", rows_exported=2500, batches=3,
        cursor_before=None,
        cursor_after=ExportCursor(datetime(2026, 11, 26, 8, 59, tzinfo=UTC), 77, "a<b>&c", 2500),
        destination="webhook ANALYTICS_SEGMENTS_WEBHOOK",
    )
    text = render_success(record, "http://dagster.local:3000/runs/abc-123")
    assert text.splitlines() == [
        (
            ":white_check_mark: Onboarding experiment export succeeded: *2500* rows in 3 batches to "
            "webhook ANALYTICS_SEGMENTS_WEBHOOK (ndjson)"
        ),
        "• Next cursor: `2026-11-26T08:59:00.000000Z #77 a&lt;b&gt;&amp;c` (was `beginning (no cursor yet)`)",
        "• Started 2026-11-26T09:00:00.000000Z · finished 2026-11-26T09:01:30.000000Z",
        "• Run: <http://dagster.local:3000/runs/abc-123|abc-123>",
    ]
    record.status, record.error = "failed", "webhook rejected batch 4 with HTTP 400 <html>"
    failure = render_failure(record, None)
    assert "• Error: webhook rejected batch 4 with HTTP 400 &lt;html&gt;" in failure
    assert "• Run: `abc-123`" in failure
    escalation = render_escalation(record, 2, None)
    assert escalation.startswith(":rotating_light: Onboarding experiment export has failed *2 times in a row*")
