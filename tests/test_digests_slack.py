"""The provider automation Slack digest through slack-sdk's WebClient against a Slack Web API server
on 127.0.0.1: Block Kit limits with 200 slugs and 500 actions, exact links, once per period, the
window since the previous digest, a failed send recorded and retried."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest
from digests_helpers import (
    SLACK_TOKEN,
    SlackApiServer,
    conversion,
    create_marts,
    daily,
    deliveries,
    duckdb_warehouse,
    followup,
    insert,
    section_texts,
    ts,
)

from assets.digests import DigestOptions, deliver_digest
from models.digests.periods import period_containing
from resources.slack import SlackDeliveryError, SlackNotifier
from resources.warehouse import Warehouse

# Slack's Block Kit limits (contract section 6), spelled here rather than imported from the code
# under test: at most 50 blocks a message, 3000 characters a section, 150 a header.
MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_HEADER_CHARS = 150
OPTIONS = DigestOptions(app_base_url="https://app.smplat.local")
NOW = ts("2026-11-26T09:00:00Z")
DASHBOARD_LINK = re.compile(
    r"<https://app\.smplat\.local/admin/fulfillment/providers/(p-\d{4})\?tab=automation\|Open dashboard>"
)


@pytest.fixture
def slack_server():
    with SlackApiServer() as server:
        yield server


def notifier(server: SlackApiServer, tmp_path) -> SlackNotifier:
    return SlackNotifier(
        bot_token=SLACK_TOKEN, channel="#concierge-automation", api_base_url=server.base_url,
        outbox_dir=str(tmp_path / "outbox"),
    )


def big_warehouse(warehouse: Warehouse) -> None:
    """200 slugs in two currencies, 10 days of assignments each, 500 automatic actions over 250
    providers, and follow-ups that must not be listed (an operator's pause, an automatic note)."""
    create_marts(warehouse)
    rows, days = [], []
    for i in range(200):
        slug = f"slug-{i:03d}"
        rows.append(conversion(slug, "USD", f"{i * 10}.25", i, 2 * i + 1, 5 * i, "2026-11-25T10:00:00Z"))
        rows.append(conversion(slug, "EUR", "3.00", 1, 1, 1, "2026-11-24T10:00:00Z"))
        days += daily(slug, "2026-11-17", [(i + d) % 5 for d in range(10)])
    insert(warehouse, "experiment_conversion_snapshot", rows)
    insert(warehouse, "experiment_daily_assignments", days)
    start = ts("2026-11-25T09:30:00Z")
    actions = [
        followup(f"f{k:04d}", f"p-{k % 250:04d}", f"Provider {k % 250} <&>", "pause" if k < 250 else "resume",
                 (start + timedelta(seconds=60 * k)).isoformat())
        for k in range(500)
    ]
    actions.append(followup("op-1", "op-provider", "Operator Paused", "pause", "2026-11-25T12:00:00Z", actor="ops@x"))
    actions.append(followup("note-1", "note-provider", "Noted", "note", "2026-11-25T12:00:00Z"))
    insert(warehouse, "guardrail_followups", actions)


def test_200_slugs_and_500_actions_fit_block_kit_with_exact_links(tmp_path, slack_server):
    warehouse = duckdb_warehouse(tmp_path / "wh.duckdb")
    big_warehouse(warehouse)

    outcome = deliver_digest(
        "slack", "2026-11-26", warehouse=warehouse, options=OPTIONS, slack=notifier(slack_server, tmp_path), now=NOW
    )

    assert (outcome.status, outcome.ref, outcome.slugs, outcome.actions) == ("sent", "1764147600.000001", 200, 500)
    assert len(slack_server.requests) == 1
    request = slack_server.requests[0]
    assert request["path"] == "/api/chat.postMessage"
    assert request["auth"] == f"Bearer {SLACK_TOKEN}"
    body = request["json"]
    assert body["channel"] == "#concierge-automation"
    assert body["text"] == "Provider automation digest 2026-11-26: 200 slugs, 500 automatic actions"

    blocks = body["blocks"]
    assert len(blocks) <= MAX_BLOCKS
    assert len(blocks[0]["text"]["text"]) <= MAX_HEADER_CHARS
    texts = section_texts(blocks)
    assert all(len(t) <= MAX_SECTION_CHARS for t in texts)

    # :moneybag: the top ten by orders, best currency first, with the 10-day sparkline.
    assert texts[0].split("\n")[:4] == [
        ":moneybag: *Top conversion slugs* (10 of 200 slugs)",
        # (199 + d) % 5 = 4, 0, 1, 2, 3, 4, 0, 1, 2, 3
        "*`slug-199`*  `█▁▃▅▆█▁▃▅▆` 10-day assignments, last 3: 1, 2, 3",
        "    • USD 1,990.25 · 199 orders / 399 journeys · 995 loyalty pts · last activity 2026-11-25T10:00:00Z",
        "    • EUR 3.00 · 1 order / 1 journey · 1 loyalty pts · last activity 2026-11-24T10:00:00Z",
    ]
    money = "\n".join(t for t in texts if not t.startswith(":robot_face:") and "Open dashboard" not in t)
    assert money.count("\n*`slug-") + money.startswith("*`slug-") == 10
    assert "_+190 more slugs_" in money

    # :robot_face: one line per provider, every link exact, the rest counted in "+N more".
    lines = [line for t in texts for line in t.split("\n")]
    robot_head = next(line for line in lines if line.startswith(":robot_face:"))
    assert robot_head == (
        ":robot_face: *Automatic pauses and resumes* since automation began (first digest): "
        "250 providers, 250 paused, 250 resumed"
    )
    provider_lines = [line for line in lines if line.startswith("• *Provider")]
    shown = [DASHBOARD_LINK.search(line).group(1) for line in provider_lines]
    assert shown == [f"p-{k:04d}" for k in range(len(shown))]  # in order of first action
    more = int(re.search(r"_\+(\d+) more providers_", "\n".join(texts)).group(1))
    assert len(shown) + more == 250
    assert provider_lines[0] == (
        "• *Provider 0 &lt;&amp;&gt;* — paused `spring-offer` at 2026-11-25T09:30:00Z; resumed `spring-offer` at "
        "2026-11-25T13:40:00Z · <https://app.smplat.local/admin/fulfillment/providers/p-0000?tab=automation|Open dashboard>"
    )
    assert "Operator Paused" not in str(blocks) and "Noted" not in str(blocks)
    assert texts[-1] == (
        "• Live conversion snapshot: <https://app.smplat.local/admin/reports#experiment-analytics|Open conversions>"
    )

    row = deliveries(warehouse)[0]
    assert (row["kind"], row["period"], row["status"], row["attempts"], row["message_ref"]) == (
        "slack", "2026-11-26", "sent", 1, "1764147600.000001"
    )
    assert row["actions_until"] == NOW


def test_same_period_twice_sends_once_and_the_next_digest_lists_only_new_actions(tmp_path, slack_server):
    warehouse = duckdb_warehouse(tmp_path / "wh.duckdb")
    create_marts(warehouse)
    insert(warehouse, "guardrail_followups", [followup("f1", "p-0001", "Alpha", "pause", "2026-11-25T10:00:00Z")])
    slack = notifier(slack_server, tmp_path)

    first = deliver_digest("slack", "2026-11-26", warehouse=warehouse, options=OPTIONS, slack=slack, now=NOW)
    again = deliver_digest(
        "slack", "2026-11-26", warehouse=warehouse, options=OPTIONS, slack=slack, now=NOW + timedelta(minutes=5)
    )
    assert (first.status, again.status) == ("sent", "already_sent")
    assert again.ref == first.ref
    assert len(slack_server.requests) == 1

    insert(warehouse, "guardrail_followups", [followup("f2", "p-0002", "Beta", "pause", "2026-11-26T12:00:00Z")])
    deliver_digest(
        "slack", "2026-11-27", warehouse=warehouse, options=OPTIONS, slack=slack, now=ts("2026-11-27T09:00:00Z")
    )
    robot = next(t for t in section_texts(slack_server.posted[1]["blocks"]) if t.startswith(":robot_face:"))
    assert robot == (
        ":robot_face: *Automatic pauses and resumes* since the previous digest (2026-11-26T09:00:00Z): "
        "1 provider, 1 paused, 0 resumed\n"
        "• *Beta* — paused `spring-offer` at 2026-11-26T12:00:00Z · "
        "<https://app.smplat.local/admin/fulfillment/providers/p-0002?tab=automation|Open dashboard>"
    )
    assert [(r["period"], r["status"]) for r in deliveries(warehouse)] == [("2026-11-26", "sent"), ("2026-11-27", "sent")]


def test_a_failed_send_is_recorded_retried_by_the_sensor_and_sent_once(tmp_path, slack_server):
    from sensors.digest_retries import digest_retry_sensor

    warehouse = duckdb_warehouse(tmp_path / "wh.duckdb")
    create_marts(warehouse)
    slack = notifier(slack_server, tmp_path)
    period = period_containing("slack", datetime.now(UTC)).label  # the sensor retries the current period

    slack_server.error = "channel_not_found"
    with pytest.raises(SlackDeliveryError, match="channel_not_found"):
        deliver_digest("slack", None, warehouse=warehouse, options=OPTIONS, slack=slack)
    row = deliveries(warehouse)[0]
    assert (row["period"], row["status"], row["attempts"], row["sent_at"]) == (period, "failed", 1, None)
    assert "channel_not_found" in row["last_error"] and SLACK_TOKEN not in row["last_error"]

    with dg.build_sensor_context(resources={"warehouse": warehouse}) as context:
        result = digest_retry_sensor(context)
    [request] = result.run_requests
    assert (request.run_key, request.job_name) == (f"slack:{period}:after-attempt-1", "automation_slack_digest")
    assert request.run_config == {"ops": {"send_automation_slack_digest": {"config": {"period": period}}}}

    slack_server.error = None
    outcome = deliver_digest("slack", period, warehouse=warehouse, options=OPTIONS, slack=slack)
    assert (outcome.status, outcome.attempts) == ("sent", 2)
    assert len(slack_server.posted) == 1
    with dg.build_sensor_context(resources={"warehouse": warehouse}) as context:
        assert isinstance(digest_retry_sensor(context), dg.SkipReason)


def test_a_past_period_shows_the_historical_snapshot_and_says_so(tmp_path, slack_server):
    warehouse = duckdb_warehouse(tmp_path / "wh.duckdb")
    create_marts(warehouse)
    insert(warehouse, "experiment_conversion_snapshot", [conversion("live", "USD", "1.00", 1, 1, 1, None)])
    insert(warehouse, "experiment_conversion_snapshot_history", [
        {"snapshot_date": date(2026, 11, 19), **conversion("then", "USD", "70.00", 7, 9, 70, "2026-11-19T08:00:00Z")},
        {"snapshot_date": date(2026, 11, 21), **conversion("later", "USD", "5.00", 1, 1, 1, None)},
    ])
    deliver_digest(
        "slack", "2026-11-20", warehouse=warehouse, options=OPTIONS, slack=notifier(slack_server, tmp_path), now=NOW
    )
    texts = section_texts(slack_server.posted[0]["blocks"])
    assert texts[0].split("\n")[:3] == [
        ":moneybag: *Top conversion slugs* (1 of 1 slug) · snapshot of 2026-11-19",
        "*`then`*  `▁▁▁▁▁▁▁▁▁▁` 10-day assignments, last 3: 0, 0, 0",
        "    • USD 70.00 · 7 orders / 9 journeys · 70 loyalty pts · last activity 2026-11-19T08:00:00Z",
    ]
    assert texts[-1] == (
        "• Historical conversion slice: "
        "<https://app.smplat.local/admin/reports?conversionCursor=2026-11-19#experiment-analytics|Open conversions>"
    )


def _digest_definitions(settings) -> dg.Definitions:
    from orchestration import digests
    from orchestration.resources import shared_resources

    # The digest assets name their upstream marts by key (assets/dbt_keys.py): no dbt project needed.
    return dg.Definitions.merge(
        digests.definitions(settings), dg.Definitions(resources=shared_resources(settings))
    )


def test_the_dagster_job_and_schedule_send_once_per_period(make_settings, slack_server, tmp_path):
    settings = make_settings(SLACK_BOT_TOKEN=SLACK_TOKEN, SLACK_API_BASE_URL=slack_server.base_url)
    create_marts(duckdb_warehouse(settings.data_dir / "warehouse.duckdb"))
    defs = _digest_definitions(settings)

    schedule = defs.get_schedule_def("automation_slack_digest_schedule")
    assert (schedule.cron_schedule, schedule.execution_timezone) == ("0 9 * * *", "UTC")
    with dg.build_schedule_context(scheduled_execution_time=datetime(2026, 11, 26, 9, 0, tzinfo=UTC)) as context:
        [request] = schedule.evaluate_tick(context).run_requests
    assert request.run_key == "slack:2026-11-26"

    job = defs.resolve_job_def("automation_slack_digest")
    with dg.instance_for_test() as instance:
        outputs = [
            job.execute_in_process(run_config=request.run_config, instance=instance).output_for_node(
                "send_automation_slack_digest"
            )
            for _ in range(2)
        ]
    assert [o["status"] for o in outputs] == ["sent", "already_sent"]
    assert [o["period"] for o in outputs] == ["2026-11-26", "2026-11-26"]
    assert len(slack_server.posted) == 1


@pytest.mark.postgres
def test_once_per_period_on_postgres(pg_url, slack_server, tmp_path):
    from resources.stores.guardrail_tables import ensure_guardrail_tables

    warehouse = Warehouse(url=pg_url, schema_name="analytics")
    with warehouse.connect() as conn:
        ensure_guardrail_tables(conn, "analytics")
    insert(warehouse, "guardrail_followups", [followup("f1", "p-0001", "Alpha", "pause", "2026-11-25T10:00:00Z")])
    slack = notifier(slack_server, tmp_path)

    slack_server.error = "not_in_channel"
    with pytest.raises(SlackDeliveryError):
        deliver_digest("slack", "2026-11-26", warehouse=warehouse, options=OPTIONS, slack=slack, now=NOW)
    slack_server.error = None
    outcomes = [
        deliver_digest("slack", "2026-11-26", warehouse=warehouse, options=OPTIONS, slack=slack, now=NOW).status
        for _ in range(2)
    ]
    assert outcomes == ["sent", "already_sent"]
    assert len(slack_server.posted) == 1
    assert "p-0001?tab=automation|Open dashboard>" in str(slack_server.posted[0]["blocks"])
    row = deliveries(warehouse)[0]
    assert (row["status"], row["attempts"], row["actions_until"]) == ("sent", 2, NOW)
