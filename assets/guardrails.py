"""Guardrail automation: the `guardrail_actions` asset and the operator follow-up job.

One evaluation reads `provider_guardrail_status`, decides (rules in `models/guardrails.py`),
records follow-ups, state, messages to send and the run row in one warehouse transaction, and only
then delivers: Slack for every message, the app API for every follow-up. A delivery that fails
stays recorded as failed and the next run retries it; nothing is decided twice.
"""

# No `from __future__ import annotations`: Dagster reads the context, config and resource annotations at runtime.
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import dagster as dg
from pydantic import Field

from assets.guardrail_deliveries import DeliveryReport, deliver_pending, delivery_metadata  # noqa: F401
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
from resources.stores.guardrail_tables import begin_exclusive
from resources.stores.guardrails import (
    apply_plan,
    evaluated_telemetry,
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
# Metadata of each evaluation: the telemetry it covered (a `TelemetryCursor`), which the sensor reads
# so that windows a CLI run already evaluated start no second run.
EVALUATED_TELEMETRY = "evaluated_telemetry"
STATUS_MART_KEY = dg.AssetKey(PROVIDER_GUARDRAIL_STATUS)


def _mart_reads(warehouse: Warehouse) -> list[tuple[str, str]]:
    """Warehouse tables the automation reads beside its state (copied next to it where state lives apart)."""
    return [(warehouse.schema, PROVIDER_GUARDRAIL_STATUS), (warehouse.raw_schema, "fulfillment_providers")]



# Evaluation -------------------------------------------------------------------------------------------
def evaluate_guardrails(
    warehouse: Warehouse, *, run_id: str, ran_at: datetime, app_base_url: str | None, api_enabled: bool
) -> EvaluationPlan:
    """Evaluate every provider's latest window and record the outcome (one transaction); no sending."""
    with warehouse.state_with_copies(_mart_reads(warehouse)) as conn:
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
    with warehouse.state_connect() as conn:
        begin_exclusive(warehouse, conn)
        total, rows = paused_providers(warehouse, conn)
    shown = markdown_table(rows, "_no provider is paused_")
    if total > len(rows):
        shown += f"\n\n+{total - len(rows)} more"
    return {
        "paused_providers_count": dg.MetadataValue.int(total),
        "paused_providers": dg.MetadataValue.md(shown),
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
    with warehouse.state_with_copies(_mart_reads(warehouse)) as conn:
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
def build_guardrail_definitions(
    app_base_url: str | None, lookback: timedelta
) -> tuple[dg.AssetsDefinition, dg.JobDefinition]:
    """The `guardrail_actions` asset and the `guardrail_operator_followup` job, with links to
    `app_base_url`; `lookback` (EXTRACT_LOOKBACK) bounds the telemetry ids each evaluation records."""

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
        evaluated = evaluated_telemetry(warehouse, lookback)
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
                EVALUATED_TELEMETRY: dg.MetadataValue.text(evaluated.serialize() if evaluated else ""),
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
