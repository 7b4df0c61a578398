"""Guardrail automation end to end through the Dagster asset and the operator job, on the embedded
default (DuckDB) and on Postgres: pause, stay paused, resume, operator pauses, warnings, thresholds,
escaping, the app API (500, down) and Slack (slack-sdk `WebClient` against a local server).

`provider_guardrail_status` is written by hand here (what dbt builds); the test through the real
extract -> dbt -> guardrail_actions chain is in test_guardrails_pipeline.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from conftest import socket_url
from guardrails_support import RecordingServer, Reply, Window, table_rows, unused_port_url, write_status_mart

from assets.guardrails import build_guardrail_definitions
from resources.app_api import FOLLOWUPS_PATH, AppApi
from resources.slack import SlackNotifier
from resources.stores.guardrail_tables import NOTIFICATIONS
from resources.warehouse import Warehouse

BASE = "https://app.smplat.local"
T1 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
T2, T3 = T1 + timedelta(minutes=5), T1 + timedelta(minutes=10)
POST = "/api/chat.postMessage"
KEY = "checkout-secret-key"

guardrail_actions, operator_job = build_guardrail_definitions(BASE, timedelta(minutes=10))

ENGINES = [
    "duckdb",
    pytest.param(
        "postgres",
        marks=[
            pytest.mark.postgres,
        ],
    ),
]


@pytest.fixture(params=ENGINES)
def warehouse(request, tmp_path) -> Warehouse:
    if request.param == "duckdb":
        return Warehouse(url=f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    # Over the local socket (the Postgres pipeline test covers both, TCP and socket).
    return Warehouse(url=socket_url(request.getfixturevalue("pg_url")))


class Harness:
    """The resources wired to local servers, and the two ways to run automation."""

    def __init__(self, warehouse: Warehouse, slack_url: str, api_url: str):
        self.warehouse = warehouse
        self.instance = dg.DagsterInstance.ephemeral()
        self.set_servers(slack_url, api_url)

    def set_servers(self, slack_url: str, api_url: str) -> None:
        self.resources = {
            "warehouse": self.warehouse,
            "slack": SlackNotifier(
                bot_token="xoxb-secret", channel="#concierge-automation", api_base_url=slack_url + "/api"
            ),
            "app_api": AppApi(base_url=api_url, api_key=KEY, backoff_seconds=0.02, max_attempts=2),
        }

    def evaluate(self) -> dict:
        result = dg.materialize([guardrail_actions], resources=self.resources, instance=self.instance)
        assert result.success
        [materialization] = result.asset_materializations_for_node("guardrail_actions")
        return {k: v.value for k, v in materialization.metadata.items()}

    def operator(self, **config) -> dg.ExecuteInProcessResult:
        return operator_job.execute_in_process(
            run_config={"ops": {"record_operator_followup": {"config": config}}},
            resources=self.resources,
            instance=self.instance,
            raise_on_error=False,
        )

    def rows(self, table: str, order_by: str) -> list[dict]:
        return table_rows(self.warehouse, table, order_by)


def texts(server: RecordingServer) -> list[str]:
    return [r.json()["text"] for r in server.to(POST)]


def alert(
    provider_name,
    slug,
    failures,
    replays,
    action,
    notes,
    provider_id,
    header=":warning: Guardrail alert for",
    slice_="Live conversion slice",
    query="",
):
    return (
        f"{header} *{provider_name}* `{slug}`\n"
        f"• Failures: {failures} · Replays: {replays}\n"
        f"• Action: {action} (notes: {notes})\n"
        f"• {slice_}: <{BASE}/admin/reports{query}#experiment-analytics|Open conversions>\n"
        f"<{BASE}/admin/fulfillment/providers/{provider_id}?tab=automation|Open dashboard>"
    )


AUTO = "Auto pause triggered by provider automation alerts worker"
AUTO_RESUME = "Auto resume triggered by provider automation alerts worker: latest telemetry window is ok"

FIRST_WINDOWS = [
    Window("prov-crit", "Acme Ads", T1, guardrail_failures=3, replay_failures=1, severity="critical"),
    Window("prov-g2", "Gamma", T1, guardrail_failures=2, severity="warning"),  # exactly the threshold: warning
    Window("prov-r4", "Rho", T1, replay_failures=4, severity="warning"),  # exactly the threshold: warning
    Window("prov-r5", "Rhea", T1, replay_failures=5, replay_total=12, severity="critical"),  # above: critical
    Window("prov-esc", "<!channel> & <http://x|y>", T1, guardrail_failures=4, slug="a&b", severity="critical"),
    Window("prov-op", "Opal", T1),
    Window("prov-ok", "Okay", T1),
]


def test_pause_stay_resume_operator_and_warnings(warehouse):
    with RecordingServer() as slack, RecordingServer() as app:
        h = Harness(warehouse, slack.url, app.url)
        write_status_mart(warehouse, FIRST_WINDOWS)

        # An operator pauses prov-op while reviewing a historical slice.
        result = h.operator(
            provider_id="prov-op",
            action="pause",
            actor="lee@ops",
            notes="Holding <refunds> & chargebacks",
            conversion_cursor="2026-11-25T00:00:00Z",
        )
        assert result.success
        assert texts(slack) == [
            alert(
                "Opal",
                "spring-offer",
                0,
                "0/10",
                "pause",
                "Holding &lt;refunds&gt; &amp; chargebacks",
                "prov-op",
                slice_="Historical conversion slice",
                query="?conversionCursor=2026-11-25T00:00:00Z",
            )
        ]
        [observation] = [
            e.event_specific_data.asset_observation
            for e in result.all_events
            if e.event_type_value == "ASSET_OBSERVATION"
        ]
        assert observation.metadata["paused_providers_count"].value == 1

        # First evaluation: three critical -> paused; three warnings; the operator's pause stays.
        # The app answers the first follow-up with a 500, then accepts it on the retry.
        app.script(FOLLOWUPS_PATH, Reply(500, {"detail": "try again"}))
        meta = h.evaluate()
        assert (meta["providers_evaluated"], meta["criticals"], meta["warnings"]) == (7, 3, 2)
        assert (meta["auto_paused"], meta["auto_resumed"], meta["warnings_sent"]) == (3, 0, 2)
        assert meta["paused_providers_count"] == 4
        assert (meta["slack_sent"], meta["slack_failed"], meta["app_api_sent"], meta["app_api_failed"]) == (
            5,
            0,
            3,
            0,
        )
        sent = texts(slack)[1:]
        assert sorted(sent) == sorted(
            [
                alert("Acme Ads", "spring-offer", 3, "1/10", "pause", AUTO, "prov-crit"),
                alert("Rhea", "spring-offer", 0, "5/12", "pause", AUTO, "prov-r5"),
                alert(
                    "&lt;!channel&gt; &amp; &lt;http://x|y&gt;",
                    "a&amp;b",
                    4,
                    "0/10",
                    "pause",
                    AUTO,
                    "prov-esc",
                ),
                alert(
                    "Gamma",
                    "spring-offer",
                    2,
                    "0/10",
                    "none",
                    "guardrail_failures 2; replay_failures 0",
                    "prov-g2",
                    header=":large_yellow_circle: Guardrail warning for",
                ),
                alert(
                    "Rho",
                    "spring-offer",
                    0,
                    "4/10",
                    "none",
                    "guardrail_failures 0; replay_failures 4",
                    "prov-r4",
                    header=":large_yellow_circle: Guardrail warning for",
                ),
            ]
        )
        assert all("<!channel>" not in t for t in texts(slack))
        states = {
            r["provider_id"]: (r["status"], r["paused_by"])
            for r in h.rows("provider_automation_state", "provider_id")
        }
        assert states == {
            "prov-crit": ("paused", "automation"),
            "prov-esc": ("paused", "automation"),
            "prov-op": ("paused", "operator"),
            "prov-r5": ("paused", "automation"),
        }
        followups = h.rows("guardrail_followups", "created_at, provider_id")
        assert [(f["provider_id"], f["action"], f["actor"], f["status_after"]) for f in followups] == [
            ("prov-op", "pause", "lee@ops", "paused"),
            ("prov-crit", "pause", "automation", "paused"),
            ("prov-esc", "pause", "automation", "paused"),
            ("prov-r5", "pause", "automation", "paused"),
        ]
        crit = followups[1]
        assert crit["notes"] == AUTO and crit["conversion_cursor"] is None
        assert crit["conversion_link"] == f"{BASE}/admin/reports#experiment-analytics"
        assert (
            crit["severity"],
            crit["guardrail_failures"],
            crit["replay_failures"],
            crit["replay_total"],
        ) == ("critical", 3, 1, 10)
        assert crit["telemetry_window_end"] == T1
        # Every follow-up reached the app once (the 500 was retried), camelCase, with the key.
        posts = app.to(FOLLOWUPS_PATH)
        assert len(posts) == 5
        assert sorted({p.json()["id"] for p in posts}) == sorted(f["id"] for f in followups)
        assert all(p.headers["x-api-key"] == KEY for p in posts)
        crit_post = next(p.json() for p in posts if p.json()["id"] == crit["id"])
        assert crit_post == {
            "id": crit["id"],
            "providerId": "prov-crit",
            "providerName": "Acme Ads",
            "experimentSlug": "spring-offer",
            "variantKey": "b",
            "action": "pause",
            "statusAfter": "paused",
            "severity": "critical",
            "guardrailFailures": 3,
            "replayFailures": 1,
            "replayTotal": 10,
            "notes": AUTO,
            "actor": "automation",
            "conversionCursor": None,
            "conversionLink": f"{BASE}/admin/reports#experiment-analytics",
            "telemetryWindowEnd": "2026-11-26T10:00:00Z",
            "createdAt": crit_post["createdAt"],
        }
        assert crit_post["createdAt"].endswith("Z")

        # The same windows again: nothing changes, nothing is sent.
        meta = h.evaluate()
        assert (
            meta["new_windows"],
            meta["auto_paused"],
            meta["warnings_sent"],
            meta["slack_sent"],
            meta["app_api_sent"],
        ) == (0, 0, 0, 0, 0)
        assert len(texts(slack)) == 6 and len(app.to(FOLLOWUPS_PATH)) == 5

        # prov-crit stays critical over new windows: nothing more. prov-op's telemetry clears: stays paused.
        windows = {w.provider_id: w for w in FIRST_WINDOWS}
        windows["prov-crit"] = Window("prov-crit", "Acme Ads", T2, guardrail_failures=7, replay_failures=6, severity="critical")
        windows["prov-op"] = Window("prov-op", "Opal", T2)
        write_status_mart(warehouse, windows.values())
        meta = h.evaluate()
        assert (meta["new_windows"], meta["auto_paused"], meta["auto_resumed"], meta["slack_sent"]) == (
            2,
            0,
            0,
            0,
        )

        # prov-crit clears: resumed once, one follow-up, one message. prov-op still stays paused.
        windows["prov-crit"] = Window("prov-crit", "Acme Ads", T3, replay_total=11)
        windows["prov-op"] = Window("prov-op", "Opal", T3)
        write_status_mart(warehouse, windows.values())
        meta = h.evaluate()
        assert (meta["auto_paused"], meta["auto_resumed"], meta["slack_sent"], meta["app_api_sent"]) == (
            0,
            1,
            1,
            1,
        )
        assert texts(slack)[-1] == alert(
            "Acme Ads",
            "spring-offer",
            0,
            "0/11",
            "resume",
            AUTO_RESUME,
            "prov-crit",
            header=":white_check_mark: Automation resumed for",
        )
        h.evaluate()  # and again: nothing
        assert len(texts(slack)) == 7

        states = {
            r["provider_id"]: (r["status"], r["paused_by"])
            for r in h.rows("provider_automation_state", "provider_id")
        }
        assert states["prov-crit"] == ("active", None)
        assert states["prov-op"] == ("paused", "operator")
        followups = h.rows("guardrail_followups", "created_at, provider_id")
        assert [(f["provider_id"], f["action"]) for f in followups][-1] == ("prov-crit", "resume")
        assert len(followups) == 5
        runs = h.rows("automation_runs", "ran_at")
        assert [
            (r["providers_evaluated"], r["criticals"], r["warnings"], r["auto_paused"], r["auto_resumed"])
            for r in runs
        ] == [
            (7, 3, 2, 3, 0),
            (7, 3, 2, 0, 0),
            (7, 3, 2, 0, 0),
            (7, 2, 2, 0, 1),
            (7, 2, 2, 0, 0),
        ]
        assert runs[0]["summary"] == (
            "7 providers evaluated (7 new windows): 3 critical, 2 warning. Auto-paused: Acme Ads (prov-crit), "
            "<!channel> & <http://x|y> (prov-esc), Rhea (prov-r5). Auto-resumed: none. Warnings sent: 2."
        )
        assert runs[3]["summary"].endswith(
            "Auto-paused: none. Auto-resumed: Acme Ads (prov-crit). Warnings sent: 0."
        )


def test_app_down_then_back_and_slack_down_then_back(warehouse):
    """A failed delivery is recorded and retried by the next run; nothing is decided twice."""
    write_status_mart(warehouse, [Window("prov-1", "Acme", T1, guardrail_failures=3, severity="critical")])
    h = Harness(warehouse, unused_port_url(), unused_port_url())
    h.resources["slack"] = SlackNotifier(
        bot_token="xoxb-secret", api_base_url=unused_port_url() + "/api", max_retries=0
    )
    meta = h.evaluate()
    assert (meta["auto_paused"], meta["slack_failed"], meta["app_api_failed"]) == (1, 1, 1)
    [note] = h.rows(NOTIFICATIONS, "id")
    assert (note["slack_status"], note["api_status"], note["slack_attempts"], note["api_attempts"]) == (
        "failed",
        "failed",
        1,
        1,
    )
    assert "unreachable" in note["api_error"] and KEY not in note["api_error"]
    assert "xoxb-secret" not in note["slack_error"]

    with RecordingServer() as slack, RecordingServer() as app:
        h.set_servers(slack.url, app.url)
        meta = h.evaluate()
        assert (meta["auto_paused"], meta["slack_sent"], meta["app_api_sent"]) == (0, 1, 1)
        assert texts(slack) == [alert("Acme", "spring-offer", 3, "0/10", "pause", AUTO, "prov-1")]
        [post] = app.to(FOLLOWUPS_PATH)
        meta = h.evaluate()
        assert (meta["slack_sent"], meta["app_api_sent"]) == (0, 0)
        assert len(texts(slack)) == 1 and len(app.to(FOLLOWUPS_PATH)) == 1
    [followup] = h.rows("guardrail_followups", "id")
    assert post.json()["id"] == followup["id"] and followup["action"] == "pause"
    [note] = h.rows(NOTIFICATIONS, "id")
    assert (note["slack_status"], note["api_status"], note["slack_attempts"], note["api_attempts"]) == (
        "sent",
        "sent",
        2,
        2,
    )
    assert note["slack_ref"] == "1764180000.000001"


def test_operator_followups_resume_escalate_note_and_unknown_provider(warehouse):
    write_status_mart(warehouse, [Window("prov-1", "Acme", T1, guardrail_failures=3, severity="critical")])
    with RecordingServer() as slack, RecordingServer() as app:
        h = Harness(warehouse, slack.url, app.url)
        h.evaluate()  # automation pauses prov-1
        assert h.operator(provider_id="prov-1", action="resume", actor="kim", notes="false alarm").success
        again = h.operator(provider_id="prov-1", action="resume", actor="kim", notes="false alarm")
        assert again.output_for_node("record_operator_followup")["status"] == "unchanged"
        assert (
            again.output_for_node("record_operator_followup")["reason"]
            == "provider prov-1 is not paused; nothing recorded"
        )
        assert h.operator(provider_id="prov-1", action="escalate", actor="kim").success
        # The operator resumed on the same critical window: automation does not overrule it.
        meta = h.evaluate()
        assert (meta["auto_paused"], meta["slack_sent"]) == (0, 0)
        assert h.operator(provider_id="prov-1", action="pause", actor="kim", notes="holding").success
        twice = h.operator(provider_id="prov-1", action="pause", actor="kim", notes="holding")
        assert twice.output_for_node("record_operator_followup")["status"] == "unchanged"
        bad = h.operator(provider_id="prov-404", action="note", actor="kim", notes="?")
        assert not bad.success
        [failure] = [e for e in bad.all_events if e.event_type_value == "STEP_FAILURE"]
        assert failure.event_specific_data.user_failure_data.description.startswith(
            "provider 'prov-404' is not in analytics.provider_guardrail_status nor in analytics_raw.fulfillment_providers"
        )
        assert texts(slack)[1:] == [
            alert("Acme", "spring-offer", 3, "0/10", "resume", "false alarm", "prov-1"),
            alert("Acme", "spring-offer", 3, "0/10", "escalate", "-", "prov-1"),
            alert("Acme", "spring-offer", 3, "0/10", "pause", "holding", "prov-1"),
        ]
        assert [p.json()["action"] for p in app.to(FOLLOWUPS_PATH)] == [
            "pause",
            "resume",
            "escalate",
            "pause",
        ]
    followups = h.rows("guardrail_followups", "created_at")
    assert [(f["action"], f["actor"], f["status_after"]) for f in followups] == [
        ("pause", "automation", "paused"),
        ("resume", "kim", "active"),
        ("escalate", "kim", "active"),
        ("pause", "kim", "paused"),
    ]
    [state] = h.rows("provider_automation_state", "provider_id")
    assert (state["status"], state["paused_by"], state["last_followup_id"]) == (
        "paused",
        "operator",
        followups[-1]["id"],
    )


def test_evaluation_without_the_mart_says_how_to_fix(tmp_path):
    warehouse = Warehouse(url=f"duckdb:///{tmp_path / 'w.duckdb'}")
    h = Harness(warehouse, unused_port_url(), unused_port_url())
    result = dg.materialize(
        [guardrail_actions], resources=h.resources, instance=h.instance, raise_on_error=False
    )
    assert not result.success
    [failure] = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    message = failure.event_specific_data.user_failure_data.description
    assert (
        f"table analytics.provider_guardrail_status does not exist on duckdb file {tmp_path / 'w.duckdb'}"
        in message
    )
    assert "build it with `pricing-ops refresh`" in message


def test_a_message_claimed_by_another_live_pass_is_not_sent_twice(warehouse):
    from datetime import datetime as dt

    from assets.guardrails import deliver_pending, evaluate_guardrails
    from resources.stores.guardrail_deliveries import claim_deliveries
    from resources.stores.guardrail_tables import begin_exclusive

    write_status_mart(warehouse, [Window("prov-1", "Acme", T1, guardrail_failures=3, severity="critical")])
    evaluate_guardrails(warehouse, run_id="r1", ran_at=dt.now(UTC), app_base_url=BASE, api_enabled=False)
    with warehouse.connect() as conn:  # another pass (another process) claims the message now
        begin_exclusive(warehouse, conn)
        assert len(claim_deliveries(warehouse, conn, "other-pass", dt.now(UTC))) == 1
    with RecordingServer() as slack:
        notifier = SlackNotifier(bot_token="xoxb-secret", api_base_url=slack.url + "/api")
        assert deliver_pending(warehouse, notifier, AppApi()).slack_sent == 0
        assert slack.to(POST) == []
        # A claim older than ten minutes belongs to a pass that died: its message is sent.
        with warehouse.connect() as conn:
            conn.execute(
                "update analytics.guardrail_notifications set claimed_at = :t",
                {"t": dt.now(UTC) - timedelta(minutes=11)},
            )
        assert deliver_pending(warehouse, notifier, AppApi()).slack_sent == 1
        assert deliver_pending(warehouse, notifier, AppApi()).slack_sent == 0
        assert len(slack.to(POST)) == 1
    [note] = table_rows(warehouse, NOTIFICATIONS, "id")
    assert (note["slack_status"], note["claimed_by"], note["api_status"]) == ("sent", None, "skipped")
