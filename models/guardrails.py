"""Guardrail automation rules (contract section 4), pure: what to do given what is known.

Inputs are the latest window of each provider (the `provider_guardrail_status` mart), the current
automation state of each provider and the last window automation already evaluated for it. Output
is a plan: follow-ups to record, state changes, Slack notifications and the run summary. Nothing here reads or writes anything; the guardrail asset applies the plan in one
warehouse transaction and only then notifies.

Automation acts on a window once: a window already evaluated is left alone, so evaluating the same
window twice changes nothing and sends nothing twice, and an operator who resumes a provider whose
latest window is still critical is not overruled until a new window says so.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

# The records these rules read and fill; re-exported, since callers know them from here.
from models.guardrail_records import (  # noqa: F401
    ACTIVE,
    AUTO_PAUSE_NOTES,
    AUTO_RESUME_NOTES,
    AUTOMATION,
    CRITICAL,
    FOLLOWUP_COLUMNS,
    OK,
    OPERATOR,
    OPERATOR_ACTIONS,
    PAUSED,
    SEVERITIES,
    SUMMARY_NAMES,
    WARNING,
    WARNING_ACTION,
    AutomationState,
    EvaluationPlan,
    EvaluationTotals,
    FollowUp,
    Notification,
    StatusRow,
    iso_utc,
    stable_id,
)
from models.slack_format import AlertContent, conversions_url, render_alert


# Decisions --------------------------------------------------------------------------------------------
def plan_evaluation(
    rows: list[StatusRow],
    states: dict[str, AutomationState],
    evaluated: dict[str, datetime],
    *,
    run_id: str,
    ran_at: datetime,
    app_base_url: str | None,
    totals: EvaluationTotals | None = None,
) -> EvaluationPlan:
    """Decide what automation does about each provider's latest window.

    - a window at or before the last one evaluated for the provider: nothing;
    - critical and not paused (by anyone): pause, follow-up `pause` by `automation`, alert;
    - ok while paused by automation: resume, follow-up `resume`, resume notice;
    - warning: one warning message, no state change;
    - an operator's pause is never resumed here.
    Counts come from `totals` when given (rows are then a subset), else from `rows`.
    """
    plan = EvaluationPlan(run_id=run_id, ran_at=ran_at, providers_evaluated=len(rows))
    # Provider order, so follow-ups, messages and the summary come out the same whatever the mart's order.
    for row in sorted(rows, key=lambda r: r.provider_id):
        if row.severity == CRITICAL:
            plan.criticals += 1
        elif row.severity == WARNING:
            plan.warnings += 1
        elif row.severity != OK:
            plan.unknown_severity.append(row.provider_id)
            continue
        last = evaluated.get(row.provider_id)
        if last is not None and row.window_end <= last:
            continue
        plan.new_windows += 1
        state = states.get(row.provider_id) or AutomationState(row.provider_id)
        if row.severity == CRITICAL and not state.paused:
            _act(plan, row, "pause", PAUSED, AUTO_PAUSE_NOTES, "alert", app_base_url)
        elif row.severity == OK and state.paused and state.paused_by == AUTOMATION:
            _act(plan, row, "resume", ACTIVE, AUTO_RESUME_NOTES, "resume", app_base_url)
        elif row.severity == WARNING:
            content = _content(row, "warning", WARNING_ACTION, row.reasons or "guardrail failures above 0")
            plan.notifications.append(
                Notification(
                    id=stable_id("warning", row.provider_id, row.window_end),
                    kind="warning",
                    provider_id=row.provider_id,
                    followup_id=None,
                    telemetry_window_end=row.window_end,
                    text=render_alert(content, app_base_url),
                    created_at=ran_at,
                )
            )
    if totals is not None:
        plan.providers_evaluated = totals.providers
        plan.criticals, plan.warnings, plan.new_windows = (
            totals.criticals,
            totals.warnings,
            totals.new_windows,
        )
    return plan


def _content(row: StatusRow, kind: str, action: str, notes: str | None) -> AlertContent:
    return AlertContent(
        kind=kind,
        provider_id=row.provider_id,
        provider_name=row.provider_name,
        slug=row.experiment_slug,
        guardrail_failures=row.guardrail_failures,
        replay_failures=row.replay_failures,
        replay_total=row.replay_total,
        action=action,
        notes=notes,
        conversion_cursor=None,  # automation looks at live data
    )


def _act(
    plan: EvaluationPlan,
    row: StatusRow,
    action: str,
    status_after: str,
    notes: str,
    kind: str,
    app_base_url: str | None,
) -> None:
    followup = FollowUp(
        id=stable_id(AUTOMATION, row.provider_id, action, row.window_end),
        provider_id=row.provider_id,
        provider_name=row.provider_name,
        experiment_slug=row.experiment_slug,
        variant_key=row.variant_key,
        action=action,
        status_after=status_after,
        severity=row.severity,
        guardrail_failures=row.guardrail_failures,
        replay_failures=row.replay_failures,
        replay_total=row.replay_total,
        notes=notes,
        actor=AUTOMATION,
        conversion_cursor=None,
        conversion_link=conversions_url(app_base_url, None),
        telemetry_window_end=row.window_end,
        created_at=plan.ran_at,
    )
    plan.followups.append(followup)
    plan.states.append(
        AutomationState(
            provider_id=row.provider_id,
            status=status_after,
            paused_by=AUTOMATION if status_after == PAUSED else None,
            updated_at=plan.ran_at,
            last_followup_id=followup.id,
        )
    )
    plan.notifications.append(
        Notification(
            id=stable_id("notification", followup.id),
            kind=kind,
            provider_id=row.provider_id,
            followup_id=followup.id,
            telemetry_window_end=row.window_end,
            text=render_alert(_content(row, kind, action, notes), app_base_url),
            created_at=plan.ran_at,
        )
    )


@dataclass(frozen=True)
class OperatorFollowUp:
    """What an operator records: a pause, resume, escalation or note about a provider."""

    provider_id: str
    action: str
    actor: str
    notes: str | None = None
    conversion_cursor: str | None = None

    def validate(self) -> None:
        if self.action not in OPERATOR_ACTIONS:
            raise ValueError(f"action {self.action!r} is not one of {', '.join(OPERATOR_ACTIONS)}")
        if not self.provider_id.strip():
            raise ValueError("provider id is empty; pass the provider's id (fulfillment_providers.id)")
        if not self.actor.strip():
            raise ValueError("actor is empty; pass who takes the action (e.g. an email or handle)")
        if self.actor.strip() == AUTOMATION:
            raise ValueError(f"actor {AUTOMATION!r} is reserved for automation; pass the operator's name")


def operator_noop_reason(request: OperatorFollowUp, state: AutomationState | None) -> str | None:
    """Why a repeated pause or resume records nothing (so running the same command twice is safe), or None.

    A pause of a provider automation paused is not a repeat: the operator takes the pause over and
    automation will no longer resume it.
    """
    state = state or AutomationState(request.provider_id)
    if request.action == "pause" and state.paused and state.paused_by == OPERATOR:
        return f"provider {request.provider_id} is already paused by an operator; nothing recorded"
    if request.action == "resume" and not state.paused:
        return f"provider {request.provider_id} is not paused; nothing recorded"
    return None


def plan_operator_followup(
    request: OperatorFollowUp,
    row: StatusRow | None,
    provider_name: str | None,
    state: AutomationState | None,
    *,
    followup_id: str,
    now: datetime,
    app_base_url: str | None,
) -> tuple[FollowUp, AutomationState, Notification]:
    """An operator's follow-up, the provider's state after it and the Slack message announcing it.

    `row` is the provider's latest window when it has telemetry (its counts go into the record);
    pause and resume change the state (`paused_by` operator), escalate and note keep it.
    """
    request.validate()
    state = state or AutomationState(request.provider_id)
    if request.action == "pause":
        new_state = AutomationState(request.provider_id, PAUSED, OPERATOR, now, followup_id)
    elif request.action == "resume":
        new_state = AutomationState(request.provider_id, ACTIVE, None, now, followup_id)
    else:
        new_state = replace(state, updated_at=now, last_followup_id=followup_id)
    name = (row.provider_name if row else None) or provider_name
    followup = FollowUp(
        id=followup_id,
        provider_id=request.provider_id,
        provider_name=name,
        experiment_slug=row.experiment_slug if row else None,
        variant_key=row.variant_key if row else None,
        action=request.action,
        status_after=new_state.status,
        severity=row.severity if row else None,
        guardrail_failures=row.guardrail_failures if row else None,
        replay_failures=row.replay_failures if row else None,
        replay_total=row.replay_total if row else None,
        notes=request.notes,
        actor=request.actor.strip(),
        conversion_cursor=request.conversion_cursor,
        conversion_link=conversions_url(app_base_url, request.conversion_cursor),
        telemetry_window_end=row.window_end if row else None,
        created_at=now,
    )
    content = AlertContent(
        kind="alert",
        provider_id=request.provider_id,
        provider_name=name,
        slug=followup.experiment_slug,
        guardrail_failures=followup.guardrail_failures,
        replay_failures=followup.replay_failures,
        replay_total=followup.replay_total,
        action=request.action,
        notes=request.notes,
        conversion_cursor=request.conversion_cursor,
    )
    notification = Notification(
        id=stable_id("notification", followup_id),
        kind="operator",
        provider_id=request.provider_id,
        followup_id=followup_id,
        telemetry_window_end=followup.telemetry_window_end,
        text=render_alert(content, app_base_url),
        created_at=now,
    )
    return followup, new_state, notification


# The app API's view of a follow-up ------------------------------------------------------------------
def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def followup_payload(followup: dict[str, Any] | FollowUp) -> dict[str, Any]:
    """The JSON body POSTed to the app: every follow-up column in camelCase, instants as ISO `Z`."""
    values = followup if isinstance(followup, dict) else {n: getattr(followup, n) for n in FOLLOWUP_COLUMNS}
    out: dict[str, Any] = {}
    for name in FOLLOWUP_COLUMNS:
        value = values.get(name)
        out[camel_case(name)] = iso_utc(value) if isinstance(value, datetime) else value
    return out
