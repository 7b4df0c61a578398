"""Delivering what a guardrail evaluation or a follow-up recorded: Slack for every message, the app
API for every follow-up, after the decision is committed. A delivery that fails stays recorded as
failed and the next run retries it; a channel that keeps failing is left for the next run."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from models.guardrails import followup_payload
from models.slack_format import text_blocks
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
from resources.warehouse import Warehouse

# A channel that fails this many times in a row is left for the next run (a Slack or app outage
# should not hold the run for every remaining message's retries).
CONSECUTIVE_FAILURES_TO_STOP = 2
# Delivery outcomes are written back in small batches so a crash repeats at most this many messages.
FLUSH_EVERY = 500
FLUSH_SECONDS = 5.0


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
    with warehouse.state_connect() as conn:
        begin_exclusive(warehouse, conn)
        pending = claim_deliveries(warehouse, conn, claim, datetime.now(UTC))
    results: list[dict[str, Any]] = []
    failures_in_a_row = {"slack": 0, "api": 0}
    last_flush = time.monotonic()

    def flush(final: bool = False) -> None:
        nonlocal last_flush
        if results or final:
            with warehouse.state_connect() as conn:
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
    return _deliver("slack", lambda: slack.post_message(row["text"], text_blocks(row["text"]) or None), row, what, report, in_a_row, log)


def _send_api(app_api: AppApi, row: dict, report: DeliveryReport, in_a_row: dict, log: Any) -> dict:
    def send() -> None:
        app_api.post_followup(followup_payload(followup_from_prefixed(row)))

    what = f"app API follow-up {row['followup_id']} for {row['provider_id']}"
    return _deliver("api", send, row, what, report, in_a_row, log)


def delivery_metadata(report: DeliveryReport) -> dict[str, dg.MetadataValue]:
    return {
        "slack_sent": dg.MetadataValue.int(report.slack_sent),
        "slack_failed": dg.MetadataValue.int(report.slack_failed),
        "app_api_sent": dg.MetadataValue.int(report.api_sent),
        "app_api_failed": dg.MetadataValue.int(report.api_failed),
        "deliveries_left_for_next_run": dg.MetadataValue.int(report.left_for_next_run),
        "delivery_errors": dg.MetadataValue.md("\n".join(f"- {e}" for e in report.errors[:20]) or "_none_"),
    }
