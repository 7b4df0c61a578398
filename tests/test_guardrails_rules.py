"""The pure guardrail rules: severity, the alert template, escaping, links, decisions, payloads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from models.guardrails import (
    AUTO_PAUSE_NOTES,
    AUTO_RESUME_NOTES,
    AutomationState,
    EvaluationTotals,
    OperatorFollowUp,
    StatusRow,
    followup_payload,
    plan_evaluation,
    plan_operator_followup,
)
from models.slack_format import (
    AlertContent,
    conversion_link_label,
    conversions_url,
    escape_mrkdwn,
    provider_dashboard_url,
    render_alert,
)

T0 = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
BASE = "https://app.smplat.local"


def test_escape_mrkdwn_escapes_the_three_control_characters():
    assert escape_mrkdwn("<!channel> & <http://x|y>") == "&lt;!channel&gt; &amp; &lt;http://x|y&gt;"
    assert escape_mrkdwn("&amp;") == "&amp;amp;"  # escaped once more: the literal text survives
    assert escape_mrkdwn(None) == ""


def test_critical_alert_text_live():
    text = render_alert(
        AlertContent("alert", "prov-1", "Acme Ads", "spring-offer", 3, 1, 10, "pause", AUTO_PAUSE_NOTES), BASE
    )
    assert text == (
        ":warning: Guardrail alert for *Acme Ads* `spring-offer`\n"
        "• Failures: 3 · Replays: 1/10\n"
        "• Action: pause (notes: Auto pause triggered by provider automation alerts worker)\n"
        "• Live conversion slice: <https://app.smplat.local/admin/reports#experiment-analytics|Open conversions>\n"
        "<https://app.smplat.local/admin/fulfillment/providers/prov-1?tab=automation|Open dashboard>"
    )


def test_alert_text_historical_with_cursor_and_other_base_url():
    text = render_alert(
        AlertContent(
            "alert",
            "prov-2",
            "Beta",
            "winter-sale",
            0,
            5,
            7,
            "escalate",
            "checked the slice",
            "2026-11-01T00:00:00Z",
        ),
        "https://admin.example.test/",
    )
    assert text == (
        ":warning: Guardrail alert for *Beta* `winter-sale`\n"
        "• Failures: 0 · Replays: 5/7\n"
        "• Action: escalate (notes: checked the slice)\n"
        "• Historical conversion slice: "
        "<https://admin.example.test/admin/reports?conversionCursor=2026-11-01T00:00:00Z#experiment-analytics"
        "|Open conversions>\n"
        "<https://admin.example.test/admin/fulfillment/providers/prov-2?tab=automation|Open dashboard>"
    )


def test_warning_and_resume_first_lines():
    warning = render_alert(
        AlertContent("warning", "p", "P", "s", 1, 0, 3, "none", "guardrail_failures 1"), BASE
    )
    resume = render_alert(AlertContent("resume", "p", "P", "s", 0, 0, 3, "resume", AUTO_RESUME_NOTES), BASE)
    assert warning.splitlines()[0] == ":large_yellow_circle: Guardrail warning for *P* `s`"
    assert warning.splitlines()[2] == "• Action: none (notes: guardrail_failures 1)"
    assert resume.splitlines()[0] == ":white_check_mark: Automation resumed for *P* `s`"
    assert resume.splitlines()[2] == f"• Action: resume (notes: {AUTO_RESUME_NOTES})"


def test_every_interpolated_value_is_escaped():
    text = render_alert(
        AlertContent(
            "alert",
            "id<1>",
            "<!channel> & <http://x|y>",
            "a&b<c>",
            1,
            2,
            3,
            "note",
            "see <http://evil|here> & <!here>",
            "c&d=<e>|f",
        ),
        BASE,
    )
    assert (
        text.splitlines()[0]
        == ":warning: Guardrail alert for *&lt;!channel&gt; &amp; &lt;http://x|y&gt;* `a&amp;b&lt;c&gt;`"
    )
    assert text.splitlines()[2] == "• Action: note (notes: see &lt;http://evil|here&gt; &amp; &lt;!here&gt;)"
    # The cursor is percent-encoded in the URL, so it can neither end the query nor the Slack link.
    assert text.splitlines()[3] == (
        "• Historical conversion slice: <https://app.smplat.local/admin/reports?conversionCursor=c%26d%3D%3Ce%3E%7Cf"
        "#experiment-analytics|Open conversions>"
    )
    assert (
        text.splitlines()[4]
        == "<https://app.smplat.local/admin/fulfillment/providers/id%3C1%3E?tab=automation|Open dashboard>"
    )
    assert "<!" not in text


def test_link_rules():
    assert conversions_url(None, None) == "https://app.smplat.local/admin/reports#experiment-analytics"
    assert (
        conversions_url(BASE, "abc")
        == "https://app.smplat.local/admin/reports?conversionCursor=abc#experiment-analytics"
    )
    assert (
        provider_dashboard_url(BASE, "p 1")
        == "https://app.smplat.local/admin/fulfillment/providers/p%201?tab=automation"
    )
    assert conversion_link_label(None) == "Live conversion snapshot"
    assert conversion_link_label("abc") == "Historical conversion slice"


# Decisions ------------------------------------------------------------------------------------------
# The severity each (guardrail, replay) failure count below has in the mart, stated for these
# fixtures: the rule itself lives in the dbt model only (tests/test_dbt_models.py checks its boundaries).
SEVERITY = {(0, 0): "ok", (1, 0): "warning", (3, 0): "critical", (3, 1): "critical", (9, 9): "critical"}


def row(pid: str, gf: int, rf: int, end: datetime = T0, name: str | None = None) -> StatusRow:
    return StatusRow(
        pid,
        name or pid.upper(),
        "tiktok",
        "spring-offer",
        "b",
        end - timedelta(minutes=5),
        end,
        gf,
        rf,
        9,
        SEVERITY[(gf, rf)],
        "r",
    )


def plan(rows, states=None, evaluated=None):
    return plan_evaluation(rows, states or {}, evaluated or {}, run_id="run-1", ran_at=T0, app_base_url=BASE)


def test_critical_pauses_once_and_records_everything():
    p = plan([row("a", 3, 0)])
    assert [(f.provider_id, f.action, f.status_after, f.actor, f.notes) for f in p.followups] == [
        ("a", "pause", "paused", "automation", AUTO_PAUSE_NOTES)
    ]
    assert [(s.provider_id, s.status, s.paused_by) for s in p.states] == [("a", "paused", "automation")]
    assert [(n.kind, n.followup_id) for n in p.notifications] == [("alert", p.followups[0].id)]
    assert p.followups[0].conversion_cursor is None
    assert p.followups[0].conversion_link == "https://app.smplat.local/admin/reports#experiment-analytics"
    assert (p.criticals, p.warnings, len(p.paused), len(p.resumed)) == (1, 0, 1, 0)
    # The same window again: nothing, even though the provider is no longer recorded as paused.
    again = plan([row("a", 3, 0)], evaluated={"a": T0})
    assert (again.followups, again.states, again.notifications, again.new_windows) == ([], [], [], 0)
    assert again.criticals == 1  # still counted: it is the provider's current severity


def test_follow_up_ids_are_stable_for_the_same_decision():
    assert plan([row("a", 3, 0)]).followups[0].id == plan([row("a", 3, 0)]).followups[0].id
    assert (
        plan([row("a", 3, 0)]).followups[0].id
        != plan([row("a", 3, 0, T0 + timedelta(minutes=5))]).followups[0].id
    )


def test_critical_while_paused_does_nothing():
    for paused_by in ("automation", "operator"):
        p = plan(
            [row("a", 9, 9, T0 + timedelta(minutes=5))],
            {"a": AutomationState("a", "paused", paused_by)},
            {"a": T0},
        )
        assert (p.followups, p.notifications) == ([], [])
        assert p.new_windows == 1


def test_ok_resumes_only_what_automation_paused():
    later = T0 + timedelta(minutes=5)
    p = plan(
        [row("a", 0, 0, later), row("b", 0, 0, later)],
        {"a": AutomationState("a", "paused", "automation"), "b": AutomationState("b", "paused", "operator")},
        {"a": T0, "b": T0},
    )
    assert [(f.provider_id, f.action, f.status_after, f.notes) for f in p.followups] == [
        ("a", "resume", "active", AUTO_RESUME_NOTES)
    ]
    assert [(s.provider_id, s.status, s.paused_by) for s in p.states] == [("a", "active", None)]
    assert [n.kind for n in p.notifications] == ["resume"]


def test_warning_sends_one_message_per_window_and_changes_nothing():
    p = plan([row("a", 1, 0)])
    assert (p.followups, p.states) == ([], [])
    assert [(n.kind, n.provider_id, n.telemetry_window_end) for n in p.notifications] == [
        ("warning", "a", T0)
    ]
    assert (
        p.notifications[0].text.splitlines()[0]
        == ":large_yellow_circle: Guardrail warning for *A* `spring-offer`"
    )
    assert plan([row("a", 1, 0)], evaluated={"a": T0}).notifications == []
    assert len(plan([row("a", 1, 0, T0 + timedelta(minutes=5))], evaluated={"a": T0}).notifications) == 1


def test_operator_resume_of_a_critical_window_is_not_overruled_by_the_same_window():
    p = plan([row("a", 3, 0)], {"a": AutomationState("a", "active", None)}, {"a": T0})
    assert p.followups == []


def test_totals_from_the_store_override_the_counts_of_a_subset():
    p = plan_evaluation(
        [row("a", 3, 0)],
        {},
        {},
        run_id="r",
        ran_at=T0,
        app_base_url=BASE,
        totals=EvaluationTotals(providers=10_000, criticals=40, warnings=7, new_windows=12),
    )
    assert (p.providers_evaluated, p.criticals, p.warnings, p.new_windows, len(p.paused)) == (
        10_000,
        40,
        7,
        12,
        1,
    )


def test_summary_names_auto_paused_and_resumed_providers():
    later = T0 + timedelta(minutes=5)
    p = plan(
        [row("a", 3, 0, name="Acme"), row("b", 0, 0, later, name="Beta"), row("c", 1, 0)],
        {"b": AutomationState("b", "paused", "automation")},
        {"b": T0},
    )
    assert p.summary() == (
        "3 providers evaluated (3 new windows): 1 critical, 1 warning. "
        "Auto-paused: Acme (a). Auto-resumed: Beta (b). Warnings sent: 1."
    )


def test_operator_followups_set_state_and_keep_it_for_notes():
    now = T0 + timedelta(hours=1)
    f, state, note = plan_operator_followup(
        OperatorFollowUp("a", "pause", "ops@smplat", "looks wrong", "cur-1"),
        row("a", 1, 0),
        None,
        None,
        followup_id="f-1",
        now=now,
        app_base_url=BASE,
    )
    assert (f.action, f.status_after, f.actor, f.conversion_cursor, f.severity) == (
        "pause",
        "paused",
        "ops@smplat",
        "cur-1",
        "warning",
    )
    assert (
        f.conversion_link
        == "https://app.smplat.local/admin/reports?conversionCursor=cur-1#experiment-analytics"
    )
    assert (state.status, state.paused_by, state.last_followup_id) == ("paused", "operator", "f-1")
    assert note.kind == "operator" and "• Historical conversion slice: " in note.text
    f2, state2, _ = plan_operator_followup(
        OperatorFollowUp("a", "note", "ops@smplat"),
        None,
        "Acme",
        state,
        followup_id="f-2",
        now=now,
        app_base_url=BASE,
    )
    assert (f2.status_after, f2.provider_name, f2.severity, state2.paused_by, state2.last_followup_id) == (
        "paused",
        "Acme",
        None,
        "operator",
        "f-2",
    )
    with pytest.raises(ValueError, match="reserved for automation"):
        OperatorFollowUp("a", "pause", "automation").validate()
    with pytest.raises(ValueError, match="is not one of pause, resume, escalate, note"):
        OperatorFollowUp("a", "delete", "x").validate()


def test_followup_payload_is_camel_case_with_utc_instants():
    f = plan([row("a", 3, 1)]).followups[0]
    payload = followup_payload(f)
    assert list(payload) == [
        "id",
        "providerId",
        "providerName",
        "experimentSlug",
        "variantKey",
        "action",
        "statusAfter",
        "severity",
        "guardrailFailures",
        "replayFailures",
        "replayTotal",
        "notes",
        "actor",
        "conversionCursor",
        "conversionLink",
        "telemetryWindowEnd",
        "createdAt",
    ]
    assert payload["telemetryWindowEnd"] == "2026-11-26T10:00:00Z"
    assert (payload["guardrailFailures"], payload["replayFailures"], payload["replayTotal"]) == (3, 1, 9)
    # An instant in another offset comes out in UTC.
    shifted = followup_payload(
        {"created_at": datetime(2026, 11, 26, 15, 30, tzinfo=timezone(timedelta(hours=5, minutes=30)))}
    )
    assert shifted["createdAt"] == "2026-11-26T10:00:00Z"
