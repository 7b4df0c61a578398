"""The export to a webhook: a real HTTP receiver on 127.0.0.1 that fails on command."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import dagster as dg
import duckdb
import pytest
from export_helpers import (
    LOAD_1,
    LOAD_3,
    Receiver,
    create_segments_duckdb,
    expected_order,
    insert_segments_duckdb,
    mart_rows,
    segment,
)

from assets.export import (
    ExportFailed,
    build_export_asset,
    onboarding_experiment_export,
    run_config,
    run_export,
)
from models.export_rows import ExportCursor, RowKey, batch_idempotency_key, to_export_row
from orchestration.export import export_resources
from orchestration.resources import build_warehouse
from resources.export_cursor import ExportBusyError
from resources.export_notifier import ExportNotifier


@pytest.fixture
def receiver():
    r = Receiver().start()
    yield r
    r.stop()


@pytest.fixture
def env(make_settings, tmp_path, receiver):
    """Settings, resources and the mart for a webhook export in batches of 10."""
    path = tmp_path / "warehouse.duckdb"
    rows = mart_rows()
    create_segments_duckdb(path, rows)
    settings = make_settings(
        WAREHOUSE_URL=f"duckdb:///{path}", ONBOARDING_EXPORT_SINK="webhook", ANALYTICS_SEGMENTS_WEBHOOK=receiver.url,
        ONBOARDING_EXPORT_BATCH_SIZE=10,
    )
    resources = export_resources(settings)
    resources["export_sinks"] = resources["export_sinks"].model_copy(
        update={"backoff_initial_seconds": 0.01, "backoff_max_seconds": 0.05}
    )
    resources["warehouse"] = build_warehouse(settings)
    return settings, resources, rows, path


def export(resources, run_id: str, **kwargs):
    return run_export(
        warehouse=resources["warehouse"], sinks=resources["export_sinks"], cursor_store=resources["export_cursor"],
        run_id=run_id, **kwargs,
    )


def stored_cursor(settings) -> dict:
    return json.loads(settings.export_cursor_path.read_text())


def test_all_rows_arrive_in_order_with_exact_values_and_only_once(env, receiver):
    settings, resources, rows, path = env
    record = export(resources, "run-1")

    wanted = [to_export_row(r) for r in expected_order(rows)]
    assert record.rows_exported == 25 and record.batches == 3
    assert receiver.accepted_rows() == wanted
    # The values users rely on, spelled out.
    got = receiver.accepted_rows()
    assert [(r["eventId"], r["slug"]) for r in got[2:6]] == [(3, "Spring"), (3, "spring-offer"), (3, "été-offer"), (4, "spring-offer")]
    assert got[2]["variantName"] == 'Quoted "name"\nand a newline' and got[2]["orderTotal"] == "0.00"
    assert got[4]["orderTotal"] == "9999999999.99" and got[4]["featureFlagKey"] == "flag-ç"
    assert got[0] == {
        "eventId": 1, "journeyId": "j-1", "orderId": "o-1", "orderNumber": "SO-00001", "slug": "spring-offer",
        "variantKey": "b", "variantName": "Spring 15% off", "isControl": False, "assignmentStrategy": "random_split",
        "featureFlagKey": None, "status": "active", "recordedAt": "2026-11-01T00:00:01.000000Z", "orderTotal": "1.50",
        "orderCurrency": "USD", "loyaltyProjectionPoints": 1,
    }
    winter = next(r for r in got if r["slug"] == "winter")
    assert (winter["orderId"], winter["orderTotal"], winter["loyaltyProjectionPoints"], winter["status"]) == (None,) * 4
    # Event 5 committed late: loaded with the second load, it comes after every row of the first.
    assert [r["eventId"] for r in got[14:17]] == [5, 13, 14]

    for request in receiver.accepted:
        assert request.headers["Content-Type"] == "application/x-ndjson"
        assert request.body.endswith(b"\n") and b"\n\n" not in request.body
        first, last = request.rows[0], request.rows[-1]
        first_row = next(r for r in rows if (r["event_id"], r["slug"]) == (first["eventId"], first["slug"]))
        last_row = next(r for r in rows if (r["event_id"], r["slug"]) == (last["eventId"], last["slug"]))
        assert request.headers["Idempotency-Key"] == batch_idempotency_key(
            RowKey(first_row["loaded_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"), first["eventId"], first["slug"]),
            RowKey(last_row["loaded_at"].strftime("%Y-%m-%dT%H:%M:%S.%fZ"), last["eventId"], last["slug"]),
            len(request.rows),
        )
    assert len({r.headers["Idempotency-Key"] for r in receiver.accepted}) == 3

    cursor = stored_cursor(settings)
    assert {k: cursor[k] for k in ("cursor", "lastEventId", "lastSlug", "rowsExported")} == {
        "cursor": "2026-11-26T09:15:00.123456Z", "lastEventId": 22, "lastSlug": "spring-offer", "rowsExported": 25,
    }
    assert cursor["updatedAt"].endswith("Z")

    # Nothing new: nothing sent. Rows loaded later (a smaller event id among them) go out next, once.
    assert export(resources, "run-2").rows_exported == 0
    assert len(receiver.requests) == 3
    insert_segments_duckdb(path, [segment(2, "winter", loaded_at=LOAD_3), segment(30, loaded_at=LOAD_3)])
    record = export(resources, "run-3")
    assert record.rows_exported == 2
    assert [(r["eventId"], r["slug"]) for r in receiver.requests[-1].rows] == [(2, "winter"), (30, "spring-offer")]
    assert stored_cursor(settings)["rowsExported"] == 27
    with duckdb.connect(str(path), read_only=True) as conn:
        runs = conn.execute(
            "select run_id, status, sink, rows_exported, batches, error from analytics.export_runs order by started_at"
        ).fetchall()
    assert runs == [("run-1", "success", "webhook", 25, 3, None), ("run-2", "success", "webhook", 0, 0, None),
                    ("run-3", "success", "webhook", 2, 1, None)]


def test_a_receiver_failing_with_500_for_a_while_ends_with_every_row_delivered(env, receiver):
    settings, resources, rows, _ = env
    receiver.plan = lambda n, headers: (500, {}) if 2 <= n <= 6 else None  # batch 2 fails five times

    record = export(resources, "run-500")

    assert record.rows_exported == 25
    assert receiver.accepted_rows() == [to_export_row(r) for r in expected_order(rows)]
    assert [r.status for r in receiver.requests] == [200, 500, 500, 500, 500, 500, 200, 200]
    # Every attempt at batch 2 carried the same key.
    assert len({r.headers["Idempotency-Key"] for r in receiver.requests[1:7]}) == 1
    assert stored_cursor(settings)["rowsExported"] == 25


def test_429_is_retried_after_the_time_the_receiver_asks_for(env, receiver):
    _, resources, rows, _ = env
    stamps: list[float] = []

    def plan(n, headers):
        stamps.append(time.monotonic())
        return (429, {"Retry-After": "1"}) if n == 1 else None

    receiver.plan = plan
    export(resources, "run-429")
    assert stamps[1] - stamps[0] >= 0.95
    assert receiver.accepted_rows() == [to_export_row(r) for r in expected_order(rows)]


def test_a_4xx_fails_at_once_without_advancing_the_cursor_and_the_next_run_resends_that_batch(env, receiver):
    settings, resources, rows, path = env
    receiver.plan = lambda n, headers: (400, {}) if n == 3 else None

    with pytest.raises(ExportFailed) as info:
        export(resources, "run-400")

    record = info.value.record
    assert len(receiver.requests) == 3  # no retry of the 400
    assert (record.status, record.rows_exported, record.batches) == ("failed", 20, 2)
    assert "HTTP 400" in record.error and "not retried" in record.error
    assert "s3cr3t" not in record.error and "127.0.0.1" not in record.error
    twentieth = expected_order(rows)[19]
    cursor = stored_cursor(settings)
    assert (cursor["lastEventId"], cursor["lastSlug"], cursor["rowsExported"]) == (
        twentieth["event_id"], twentieth["slug"], 20)
    with duckdb.connect(str(path), read_only=True) as conn:
        [(status, exported, after)] = conn.execute(
            "select status, rows_exported, cursor_after from analytics.export_runs").fetchall()
    assert (status, exported, json.loads(after)["lastEventId"]) == ("failed", 20, twentieth["event_id"])

    receiver.plan = None
    record = export(resources, "run-after-400")
    assert record.rows_exported == 5
    assert receiver.requests[3].headers["Idempotency-Key"] == receiver.requests[2].headers["Idempotency-Key"]
    assert receiver.accepted_rows() == [to_export_row(r) for r in expected_order(rows)]


def test_gzip_once_the_receiver_says_it_accepts_it_and_plain_again_after_a_415(env, receiver):
    _, resources, rows, _ = env
    receiver.advertise_gzip = True
    export(resources, "run-gzip")
    assert [r.headers.get("Content-Encoding") for r in receiver.requests] == [None, "gzip", "gzip"]
    assert receiver.requests[1].raw_size < len(receiver.requests[1].body)
    assert receiver.accepted_rows() == [to_export_row(r) for r in expected_order(rows)]

    # A receiver that advertises gzip but then refuses it: the batch is resent plain at once.
    receiver.requests.clear()
    resources["export_cursor"].write(ExportCursor(LOAD_1 - timedelta(seconds=1)))
    receiver.plan = lambda n, headers: (415, {}) if headers.get("Content-Encoding") == "gzip" else None
    export(resources, "run-415")
    assert [(r.headers.get("Content-Encoding"), r.status) for r in receiver.requests] == [
        (None, 200), ("gzip", 415), (None, 200), (None, 200)]
    assert receiver.accepted_rows() == [to_export_row(r) for r in expected_order(rows)]


def test_an_unreachable_webhook_is_retried_then_fails_without_the_url(env, receiver):
    _, resources, _, _ = env
    url = receiver.url
    receiver.stop()  # the port is closed now
    sinks = resources["export_sinks"].model_copy(update={"max_attempts": 3})
    with pytest.raises(ExportFailed) as info:
        run_export(warehouse=resources["warehouse"], sinks=sinks, cursor_store=resources["export_cursor"],
                   run_id="run-down")
    error = info.value.record.error
    assert "after 3 attempts" in error and "connection error" in error
    assert url not in error and "s3cr3t" not in error
    assert info.value.record.rows_exported == 0


def test_every_run_is_visible_in_dagster_and_notified_on_slack_with_an_escalation(env, receiver):
    settings, resources, rows, _ = env
    slack = Receiver().start()
    try:
        # Built anew, not model_copy'd: Dagster re-creates resources from their constructor config.
        resources["export_notifier"] = ExportNotifier(webhook_url=slack.url, dagster_ui_url=settings.DAGSTER_UI_URL)
        export_asset = build_export_asset()
        defs = dg.Definitions(assets=[export_asset], jobs=[onboarding_experiment_export], resources=resources)
        job = defs.resolve_job_def("onboarding_experiment_export")
        with dg.instance_for_test() as instance:
            ok = job.execute_in_process(instance=instance, run_config=run_config(limit=12))
            [materialization] = ok.asset_materializations_for_node("export_onboarding_segments")
            meta = {k: v.value for k, v in materialization.metadata.items()}
            assert ok.success and meta["rows"] == 12
            assert (meta["rows"], meta["batches"], meta["cursor_before"]) == (12, 2, "beginning (no cursor yet)")
            twelfth = expected_order(rows)[11]
            assert meta["cursor_after"] == f"2026-11-26T09:00:00.123456Z #{twelfth['event_id']} {twelfth['slug']}"
            tags = instance.get_run_by_id(ok.run_id).tags
            assert (tags["export/rows"], tags["export/batches"]) == ("12", "2")
            assert tags["export/cursor_after"] == meta["cursor_after"]
            assert tags["dagster/concurrency_key"] == "onboarding_experiment_export"

            receiver.plan = lambda n, headers: (422, {})
            failed = [job.execute_in_process(instance=instance, run_config=run_config(), raise_on_error=False)
                      for _ in range(2)]
            assert not any(r.success for r in failed)
            failure = next(e for e in failed[0].all_events if e.is_step_failure)
            user = failure.step_failure_data.user_failure_data
            assert "HTTP 422" in user.description and "s3cr3t" not in user.description
            assert user.metadata["cursor_after"].value == meta["cursor_after"]
            assert user.metadata["rows"].value == 0

        texts = [json.loads(r.body)["text"] for r in slack.requests]
        assert len(texts) == 4  # success, failure, failure + escalation
        assert texts[0].startswith(":white_check_mark: Onboarding experiment export succeeded: *12* rows in 2 batches")
        assert f"<http://127.0.0.1:3000/runs/{ok.run_id}|{ok.run_id}>" in texts[0]
        assert f"• Next cursor: `{meta['cursor_after']}`" in texts[0]
        assert texts[1].startswith(":x: Onboarding experiment export failed after 0 rows")
        assert "HTTP 422" in texts[1] and f"• Cursor stays at: `{meta['cursor_after']}`" in texts[1]
        assert texts[2].startswith(":x:")
        assert texts[3].startswith(":rotating_light: Onboarding experiment export has failed *2 times in a row*")
        assert all(receiver.url not in t and "s3cr3t" not in t for t in texts)
    finally:
        slack.stop()


def test_a_second_export_is_refused_while_one_runs_and_concurrent_ones_never_interleave(env, receiver):
    settings, resources, rows, _ = env
    store = resources["export_cursor"]
    impatient = store.model_copy(update={"lock_wait_seconds": 0.3})
    with store.exclusive("run-holding-the-lock"), pytest.raises(ExportBusyError) as info:
        run_export(warehouse=resources["warehouse"], sinks=resources["export_sinks"], cursor_store=impatient,
                   run_id="run-refused")
    assert "run-holding-the-lock" in str(info.value) and "cursor unchanged" in str(info.value)
    assert receiver.requests == [] and not settings.export_cursor_path.exists()

    # Two exports at once on a slow receiver: the second waits, then finds nothing left to send.
    receiver.plan = lambda n, headers: time.sleep(0.1)
    outcomes: dict[str, int] = {}

    def one(run_id):
        outcomes[run_id] = export(resources, run_id).rows_exported

    threads = [threading.Thread(target=one, args=(f"run-{i}",)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sorted(outcomes.values()) == [0, 25]
    assert receiver.accepted_rows() == [to_export_row(r) for r in expected_order(rows)]


def test_a_cursor_override_replays_from_that_instant_and_is_kept(env, receiver):
    settings, resources, _, _ = env
    export(resources, "run-1")
    receiver.requests.clear()
    export(resources, "run-replay", cursor_override="2026-11-26T09:15:00.123456Z")
    assert [r["eventId"] for r in receiver.accepted_rows()] == [5, *range(13, 23)]
    cursor = stored_cursor(settings)
    assert (cursor["lastEventId"], cursor["rowsExported"]) == (22, 36)
    with pytest.raises(Exception, match="not an ISO 8601 instant"):
        export(resources, "run-bad", cursor_override="last tuesday")


def test_the_mart_missing_fails_clearly(make_settings, tmp_path, receiver):
    settings = make_settings(WAREHOUSE_URL=f"duckdb:///{tmp_path / 'empty.duckdb'}", ONBOARDING_EXPORT_SINK="webhook",
                             ANALYTICS_SEGMENTS_WEBHOOK=receiver.url)
    resources = {**export_resources(settings), "warehouse": build_warehouse(settings)}
    with pytest.raises(ExportFailed, match="does not exist .* run `pricing-ops refresh`"):
        export(resources, "run-nomart")


def test_a_redirect_is_not_followed_as_a_get_and_fails_the_run(env, receiver):
    _, resources, _, _ = env
    receiver.plan = lambda n, headers: (302, {"Location": "/somewhere-else"})
    with pytest.raises(ExportFailed, match=r"redirect \(HTTP 302\); set ANALYTICS_SEGMENTS_WEBHOOK to the final URL"):
        export(resources, "run-302")
    assert len(receiver.requests) == 1
