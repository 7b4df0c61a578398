"""Guardrail automation: the `guardrail_actions` asset and the operator follow-up job.

One evaluation reads `provider_guardrail_status`, decides (rules in `models/guardrails.py`),
records follow-ups, state, messages to send and the run row in one warehouse transaction, and only
then delivers: Slack for every message, the app API for every follow-up. A delivery that fails
stays recorded as failed and the next run retries it; nothing is decided twice.
"""

# No `from __future__ import annotations`: Dagster reads the context, config and resource annotations at runtime.
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import dagster as dg
from pydantic import Field

from models.guardrails import (
    EvaluationPlan,
    FollowUp,
    OperatorFollowUp,
    followup_payload,
    operator_noop_reason,
    plan_evaluation,
    plan_operator_followup,
)
from models.markdown import markdown_table
from models.marts import PROVIDER_GUARDRAIL_STATUS
from resources.app_api import AppApi
from resources.slack import SlackNotifier
from resources.stores.guardrail_deliveries import (
    api_due,
    claim_deliveries,
    followup_from_prefixed,
    record_deliveries,
    release_claim,
    slack_due,
)
from resources.stores.guardrail_tables import begin_exclusive
from resources.stores.guardrails import (
    apply_plan,
    load_candidates,
    load_provider_name,
    load_states,
    load_status_rows,
    paused_providers,
    record_followup,
)
from resources.warehouse import Warehouse

GUARDRAILS_GROUP = "guardrails"
GUARDRAIL_ACTIONS_KEY = dg.AssetKey("guardrail_actions")
STATUS_MART_KEY = dg.AssetKey(PROVIDER_GUARDRAIL_STATUS)

# A channel that fails this many times in a row is left for the next run (a Slack or app outage
# should not hold the run for every remaining message's retries).
CONSECUTIVE_FAILURES_TO_STOP = 2
# Delivery outcomes are written back in small batches so a crash repeats at most this many messages.
FLUSH_EVERY = 500
FLUSH_SECONDS = 5.0


# Evaluation -------------------------------------------------------------------------------------------
def evaluate_guardrails(
    warehouse: Warehouse, *, run_id: str, ran_at: datetime, app_base_url: str | None, api_enabled: bool
) -> EvaluationPlan:
    """Evaluate every provider's latest window and record the outcome (one transaction); no sending."""
    with warehouse.connect() as conn:
        begin_exclusive(warehouse, conn)
        rows, evaluated, totals = load_candidates(warehouse, conn)
        plan = plan_evaluation(
            rows,
            load_states(warehouse, conn),
            evaluated,
            run_id=run_id,
            ran_at=ran_at,
            app_base_url=app_base_url,
            totals=totals,
        )
        apply_plan(warehouse, conn, plan, api_enabled)
    return plan


@dataclass
class DeliveryReport:
    slack_sent: int = 0
    slack_failed: int = 0
    api_sent: int = 0
    api_failed: int = 0
    left_for_next_run: int = 0
    errors: list[str] = field(default_factory=list)

    def text(self) -> str:
        return (
            f"Slack: {self.slack_sent} sent, {self.slack_failed} failed; app API: {self.api_sent} sent, "
            f"{self.api_failed} failed; {self.left_for_next_run} left for the next run"
        )


def deliver_pending(
    warehouse: Warehouse, slack: SlackNotifier, app_api: AppApi, log: Any | None = None
) -> DeliveryReport:
    """Send every recorded message not yet delivered (this run's and earlier failures), oldest first."""
    report = DeliveryReport()
    claim = str(uuid.uuid4())
    with warehouse.connect() as conn:
        begin_exclusive(warehouse, conn)
        pending = claim_deliveries(warehouse, conn, claim, datetime.now(UTC))
    results: list[dict[str, Any]] = []
    failures_in_a_row = {"slack": 0, "api": 0}
    last_flush = time.monotonic()

    def flush(final: bool = False) -> None:
        nonlocal last_flush
        if results or final:
            with warehouse.connect() as conn:
                record_deliveries(warehouse, conn, results)
                if final:
                    release_claim(warehouse, conn, claim)
            results.clear()
        last_flush = time.monotonic()

    try:
        for row in pending:
            if slack_due(row):
                if failures_in_a_row["slack"] >= CONSECUTIVE_FAILURES_TO_STOP:
                    report.left_for_next_run += 1
                else:
                    results.append(_send_slack(slack, row, report, failures_in_a_row, log))
            if api_due(row) and row["followup_id"] and app_api.enabled:
                if failures_in_a_row["api"] >= CONSECUTIVE_FAILURES_TO_STOP:
                    report.left_for_next_run += 1
                else:
                    results.append(_send_api(app_api, row, report, failures_in_a_row, log))
            if len(results) >= FLUSH_EVERY or time.monotonic() - last_flush > FLUSH_SECONDS:
                flush()
    finally:
        flush(final=True)
    return report


_CHANNEL_NAMES = {"slack": "Slack", "api": "app API"}


def _deliver(channel: str, send: Any, row: dict, what: str, report: DeliveryReport, in_a_row: dict, log: Any) -> dict:
    """Send one pending message on `channel` ('slack' or 'api'); the outcome is recorded either way."""
    at = datetime.now(UTC)
    try:
        ref = send()
    except Exception as exc:  # noqa: BLE001 - any failure is recorded and retried next run; texts name no secret
        in_a_row[channel] += 1
        setattr(report, f"{channel}_failed", getattr(report, f"{channel}_failed") + 1)
        error = f"{type(exc).__name__}: {exc}"
        report.errors.append(f"{what}: {error}")
        if log:
            log.warning(f"{_CHANNEL_NAMES[channel]} delivery failed, retried next run: {error}")
        return {"id": row["id"], "channel": channel, "ok": False, "ref": None, "error": error, "at": at}
    in_a_row[channel] = 0
    setattr(report, f"{channel}_sent", getattr(report, f"{channel}_sent") + 1)
    return {"id": row["id"], "channel": channel, "ok": True, "ref": ref, "error": None, "at": at}


def _send_slack(slack: SlackNotifier, row: dict, report: DeliveryReport, in_a_row: dict, log: Any) -> dict:
    what = f"Slack message {row['id']} ({row['kind']} for {row['provider_id']})"
    return _deliver("slack", lambda: slack.post_message(row["text"]), row, what, report, in_a_row, log)


def _send_api(app_api: AppApi, row: dict, report: DeliveryReport, in_a_row: dict, log: Any) -> dict:
    def send() -> None:
        app_api.post_followup(followup_payload(followup_from_prefixed(row)))

    what = f"app API follow-up {row['followup_id']} for {row['provider_id']}"
    return _deliver("api", send, row, what, report, in_a_row, log)


# What the UI shows --------------------------------------------------------------------------------------
def _followup_rows(followups: list[FollowUp], limit: int = 50) -> list[dict[str, Any]]:
    return [
        {
            "provider": f"{f.provider_name or ''} ({f.provider_id})",
            "action": f.action,
            "status_after": f.status_after,
            "severity": f.severity,
            "failures": f.guardrail_failures,
            "replays": f"{f.replay_failures}/{f.replay_total}",
            "window_end": f.telemetry_window_end,
            "actor": f.actor,
            "notes": f.notes,
        }
        for f in followups[:limit]
    ]


def paused_metadata(warehouse: Warehouse) -> dict[str, dg.MetadataValue]:
    with warehouse.connect() as conn:
        begin_exclusive(warehouse, conn)
        total, rows = paused_providers(warehouse, conn)
    shown = markdown_table(rows, "_no provider is paused_")
    if total > len(rows):
        shown += f"\n\n+{total - len(rows)} more"
    return {
        "paused_providers_count": dg.MetadataValue.int(total),
        "paused_providers": dg.MetadataValue.md(shown),
    }


def delivery_metadata(report: DeliveryReport) -> dict[str, dg.MetadataValue]:
    return {
        "slack_sent": dg.MetadataValue.int(report.slack_sent),
        "slack_failed": dg.MetadataValue.int(report.slack_failed),
        "app_api_sent": dg.MetadataValue.int(report.api_sent),
        "app_api_failed": dg.MetadataValue.int(report.api_failed),
        "deliveries_left_for_next_run": dg.MetadataValue.int(report.left_for_next_run),
        "delivery_errors": dg.MetadataValue.md("\n".join(f"- {e}" for e in report.errors[:20]) or "_none_"),
    }


# Operator follow-ups ----------------------------------------------------------------------------------
def record_operator_followup(
    warehouse: Warehouse,
    request: OperatorFollowUp,
    *,
    app_base_url: str | None,
    api_enabled: bool,
    now: datetime | None = None,
) -> tuple[FollowUp | None, str | None]:
    """Record an operator's follow-up (and the pause/resume it carries) in one transaction; no sending.

    Returns the follow-up, or None and the reason when it would repeat the provider's current state.
    """
    request.validate()
    now = now or datetime.now(UTC)
    with warehouse.connect() as conn:
        begin_exclusive(warehouse, conn)
        rows = (
            load_status_rows(warehouse, conn, request.provider_id)
            if conn.table_exists(warehouse.schema, PROVIDER_GUARDRAIL_STATUS)
            else []
        )
        known, name = load_provider_name(warehouse, conn, request.provider_id)
        state = load_states(warehouse, conn, request.provider_id).get(request.provider_id)
        if not rows and not known and state is None:
            raise LookupError(
                f"provider {request.provider_id!r} is not in {warehouse.schema}.provider_guardrail_status nor in "
                f"{warehouse.raw_schema}.fulfillment_providers on {warehouse.describe()}; check the id "
                "(fulfillment_providers.id) or run `pricing-ops refresh` to load new providers"
            )
        reason = operator_noop_reason(request, state)
        if reason:
            return None, reason
        followup, new_state, notification = plan_operator_followup(
            request,
            rows[0] if rows else None,
            name,
            state,
            followup_id=str(uuid.uuid4()),
            now=now,
            app_base_url=app_base_url,
        )
        record_followup(warehouse, conn, followup, new_state, notification, api_enabled)
    return followup, None


class OperatorFollowUpConfig(dg.Config):
    """An operator's follow-up, as entered in the launchpad."""

    provider_id: str = Field(description="fulfillment_providers.id of the provider")
    action: Literal["pause", "resume", "escalate", "note"] = Field(description="what the operator did")
    actor: str = Field(description="who (email or handle); `automation` is reserved")
    notes: str | None = Field(default=None, description="free text shown in Slack and the follow-up feed")
    conversion_cursor: str | None = Field(
        default=None,
        description="the ?conversionCursor= of the conversion slice reviewed (historical); empty: live",
    )


def _followup_metadata(f: FollowUp) -> dict[str, dg.MetadataValue]:
    return {
        "followup_id": dg.MetadataValue.text(f.id),
        "provider": dg.MetadataValue.text(f"{f.provider_name or ''} ({f.provider_id})"),
        "action": dg.MetadataValue.text(f.action),
        "status_after": dg.MetadataValue.text(f.status_after),
        "actor": dg.MetadataValue.text(f.actor),
        "notes": dg.MetadataValue.text(f.notes or ""),
        "conversion_link": dg.MetadataValue.url(f.conversion_link),
    }


# Dagster definitions ------------------------------------------------------------------------------------
def build_guardrail_definitions(app_base_url: str | None) -> tuple[dg.AssetsDefinition, dg.JobDefinition]:
    """The `guardrail_actions` asset and the `guardrail_operator_followup` job, with links to `app_base_url`."""

    @dg.asset(
        key=GUARDRAIL_ACTIONS_KEY,
        deps=[STATUS_MART_KEY],
        group_name=GUARDRAILS_GROUP,
        kinds={"python", "slack"},
        description=(
            "Evaluates each provider's latest guardrail window: auto-pauses critical providers, resumes "
            "those automation paused once their window is ok, warns once per window; records follow-ups, "
            "provider state and the run, then notifies Slack and the app API."
        ),
    )
    def guardrail_actions(
        context: dg.AssetExecutionContext, warehouse: Warehouse, slack: SlackNotifier, app_api: AppApi
    ) -> dg.MaterializeResult:
        started = time.perf_counter()
        try:
            plan = evaluate_guardrails(
                warehouse,
                run_id=context.run.run_id,
                ran_at=datetime.now(UTC),
                app_base_url=app_base_url,
                api_enabled=app_api.enabled,
            )
        except LookupError as exc:  # the mart is not built yet: say so, not a traceback
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        context.log.info(plan.summary())
        report = deliver_pending(warehouse, slack, app_api, context.log)
        context.log.info(f"deliveries: {report.text()} (via {slack.describe()})")
        return dg.MaterializeResult(
            metadata={
                "providers_evaluated": dg.MetadataValue.int(plan.providers_evaluated),
                "new_windows": dg.MetadataValue.int(plan.new_windows),
                "criticals": dg.MetadataValue.int(plan.criticals),
                "warnings": dg.MetadataValue.int(plan.warnings),
                "auto_paused": dg.MetadataValue.int(len(plan.paused)),
                "auto_resumed": dg.MetadataValue.int(len(plan.resumed)),
                "warnings_sent": dg.MetadataValue.int(len(plan.warned)),
                "summary": dg.MetadataValue.text(plan.summary()),
                "followups": dg.MetadataValue.md(
                    markdown_table(_followup_rows(plan.followups), "_no follow-up this run_")
                ),
                **paused_metadata(warehouse),
                **delivery_metadata(report),
                "seconds": dg.MetadataValue.float(round(time.perf_counter() - started, 3)),
            }
        )

    @dg.op(
        name="record_operator_followup",
        description="Records an operator's pause, resume, escalation or note; posts it to Slack and the app API.",
    )
    def operator_followup_op(
        context: dg.OpExecutionContext,
        config: OperatorFollowUpConfig,
        warehouse: Warehouse,
        slack: SlackNotifier,
        app_api: AppApi,
    ):
        request = OperatorFollowUp(
            provider_id=config.provider_id,
            action=config.action,
            actor=config.actor,
            notes=config.notes or None,
            conversion_cursor=config.conversion_cursor or None,
        )
        try:
            followup, unchanged = record_operator_followup(
                warehouse, request, app_base_url=app_base_url, api_enabled=app_api.enabled
            )
        except (LookupError, ValueError) as exc:
            raise dg.Failure(description=str(exc), allow_retries=False) from None
        if followup is None:
            context.log.info(unchanged)
        else:
            context.log.info(
                f"recorded {followup.action} by {followup.actor} for {followup.provider_id} ({followup.id})"
            )
        report = deliver_pending(warehouse, slack, app_api, context.log)
        context.log.info(f"deliveries: {report.text()}")
        metadata = (
            _followup_metadata(followup)
            if followup
            else {"unchanged": dg.MetadataValue.text(unchanged or "")}
        )
        yield dg.AssetObservation(
            asset_key=GUARDRAIL_ACTIONS_KEY,
            metadata={**metadata, **paused_metadata(warehouse), **delivery_metadata(report)},
        )
        yield dg.Output(
            {
                "status": "recorded" if followup else "unchanged",
                "followup": followup_payload(followup) if followup else None,
                "reason": unchanged,
                "deliveries": report.text(),
                "delivery_errors": report.errors,
            }
        )

    @dg.job(
        name="guardrail_operator_followup",
        description="An operator's follow-up (pause, resume, escalate, note) on a provider; config in the launchpad.",
        tags={"dagster/concurrency_key": "warehouse_writer"},
    )
    def guardrail_operator_followup():
        operator_followup_op()

    return guardrail_actions, guardrail_operator_followup
