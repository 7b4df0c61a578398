"""Guardrail records (contract sections 3 and 4), pure: the mart's status rows, automation state,
follow-ups, notifications and the plan an evaluation produces, with their stable ids. The rules that
fill them are in `models/guardrails.py`."""


from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

from models.instants import utc_z

CRITICAL, WARNING, OK = "critical", "warning", "ok"
SEVERITIES = (OK, WARNING, CRITICAL)
ACTIVE, PAUSED = "active", "paused"
AUTOMATION, OPERATOR = "automation", "operator"
OPERATOR_ACTIONS = ("pause", "resume", "escalate", "note")

AUTO_PAUSE_NOTES = "Auto pause triggered by provider automation alerts worker"
AUTO_RESUME_NOTES = (
    "Auto resume triggered by provider automation alerts worker: latest telemetry window is ok"
)
# A warning changes nothing; its message says so in the template's action slot.
WARNING_ACTION = "none"


# Names of automation's follow-ups are stable across retries of the same decision (same provider,
# action and window): a crashed run re-deciding cannot add a second row, and the app API can
# de-duplicate by id.
_ID_NAMESPACE = uuid.UUID("6f1d3c52-7c1e-4c8e-9a55-3b8f1f0e2a10")

# How many provider names the run summary spells out before "and N more".
SUMMARY_NAMES = 20


# Records ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class StatusRow:
    """One row of the `provider_guardrail_status` mart: a provider's latest telemetry window."""

    provider_id: str
    provider_name: str | None
    platform: str | None
    experiment_slug: str | None
    variant_key: str | None
    window_start: datetime | None
    window_end: datetime
    guardrail_failures: int
    replay_failures: int
    replay_total: int
    severity: str
    reasons: str | None = None


@dataclass(frozen=True)
class AutomationState:
    """A row of `provider_automation_state`; a provider without one is active."""

    provider_id: str
    status: str = ACTIVE
    paused_by: str | None = None
    updated_at: datetime | None = None
    last_followup_id: str | None = None

    @property
    def paused(self) -> bool:
        return self.status == PAUSED


FOLLOWUP_COLUMNS = (
    "id",
    "provider_id",
    "provider_name",
    "experiment_slug",
    "variant_key",
    "action",
    "status_after",
    "severity",
    "guardrail_failures",
    "replay_failures",
    "replay_total",
    "notes",
    "actor",
    "conversion_cursor",
    "conversion_link",
    "telemetry_window_end",
    "created_at",
)


@dataclass(frozen=True)
class FollowUp:
    """A row of `guardrail_followups` (contract section 3, same columns and order)."""

    id: str
    provider_id: str
    provider_name: str | None
    experiment_slug: str | None
    variant_key: str | None
    action: str
    status_after: str
    severity: str | None
    guardrail_failures: int | None
    replay_failures: int | None
    replay_total: int | None
    notes: str | None
    actor: str
    conversion_cursor: str | None
    conversion_link: str
    telemetry_window_end: datetime | None
    created_at: datetime

    def as_row(self) -> tuple:
        """The values in `FOLLOWUP_COLUMNS` order."""
        return (
            self.id,
            self.provider_id,
            self.provider_name,
            self.experiment_slug,
            self.variant_key,
            self.action,
            self.status_after,
            self.severity,
            self.guardrail_failures,
            self.replay_failures,
            self.replay_total,
            self.notes,
            self.actor,
            self.conversion_cursor,
            self.conversion_link,
            self.telemetry_window_end,
            self.created_at,
        )


@dataclass(frozen=True)
class Notification:
    """A Slack message to deliver, recorded before it is sent so a failure or a crash does not lose it.

    `kind` is `alert` (automation's pause), `resume`, `warning` or `operator`; a follow-up's
    notification also carries the follow-up to POST to the app API.
    """

    id: str
    kind: str
    provider_id: str
    followup_id: str | None
    telemetry_window_end: datetime | None
    text: str
    created_at: datetime


@dataclass(frozen=True)
class EvaluationTotals:
    """Counts over every provider's latest window, when the rows planned on are only those that may
    need an action (the store leaves out, in SQL, windows already evaluated and ok providers not paused)."""

    providers: int
    criticals: int
    warnings: int
    new_windows: int


@dataclass
class EvaluationPlan:
    """Everything one evaluation decided; applied in one transaction, then notified."""

    run_id: str
    ran_at: datetime
    providers_evaluated: int = 0
    warnings: int = 0
    criticals: int = 0
    new_windows: int = 0
    followups: list[FollowUp] = field(default_factory=list)
    states: list[AutomationState] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    unknown_severity: list[str] = field(default_factory=list)

    @property
    def paused(self) -> list[FollowUp]:
        return [f for f in self.followups if f.action == "pause"]

    @property
    def resumed(self) -> list[FollowUp]:
        return [f for f in self.followups if f.action == "resume"]

    @property
    def warned(self) -> list[Notification]:
        return [n for n in self.notifications if n.kind == "warning"]

    def summary(self) -> str:
        """The `automation_runs.summary` text: counts, then who was auto-paused and auto-resumed."""
        return (
            f"{self.providers_evaluated} providers evaluated ({self.new_windows} new windows): "
            f"{self.criticals} critical, {self.warnings} warning. "
            f"Auto-paused: {_names(self.paused)}. Auto-resumed: {_names(self.resumed)}. "
            f"Warnings sent: {len(self.warned)}."
        )


def _names(followups: list[FollowUp]) -> str:
    if not followups:
        return "none"
    shown = [f"{f.provider_name or f.provider_id} ({f.provider_id})" for f in followups[:SUMMARY_NAMES]]
    more = len(followups) - len(shown)
    return ", ".join(shown) + (f" and {more} more" if more else "")


def stable_id(*parts: object) -> str:
    """A UUID named by its parts: the same decision always gets the same id."""
    return str(
        uuid.uuid5(_ID_NAMESPACE, "|".join(iso_utc(p) if isinstance(p, datetime) else str(p) for p in parts))
    )


def iso_utc(value: datetime | None) -> str | None:
    """`models.instants.utc_z` with as many digits as the value has; None stays None."""
    return None if value is None else utc_z(value, "auto")
