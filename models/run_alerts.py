"""The run-failure message (contract section 8): `:rotating_light: {job} failed: {root cause in one
line}` and a link to the run in the Dagster UI. Pure: the sensor and the CLI both render it here."""

from __future__ import annotations

from typing import Any

from models.readiness import redact
from models.slack_format import escape_mrkdwn

# Where the UI is when DAGSTER_UI_URL is unset (contract section 8): `dg dev`'s default address.
DEFAULT_DAGSTER_UI_URL = "http://127.0.0.1:3000"
# A root cause longer than this is cut: the run page has the rest.
REASON_LIMIT = 300


def run_url(ui_url: str | None, run_id: str) -> str:
    """The run's page in the Dagster UI."""
    return f"{(ui_url or DEFAULT_DAGSTER_UI_URL).rstrip('/')}/runs/{run_id}"


def run_failure_message(job_name: str, reason: str, run_id: str, ui_url: str | None) -> dict[str, Any]:
    """`text` and Block Kit `blocks` of the message for a failed run. The reason is data: one line,
    URLs (which may carry tokens) removed, Slack's control characters escaped."""
    cause = redact(reason, REASON_LIMIT) or "see the run's logs in the Dagster UI"
    headline = f":rotating_light: {escape_mrkdwn(job_name)} failed: {escape_mrkdwn(cause)}"
    link = f"<{run_url(ui_url, run_id)}|Run {run_id[:8]} in the Dagster UI>"
    text = f"{headline}\n{link}"
    return {"text": text, "blocks": [{"type": "section", "text": {"type": "mrkdwn", "text": text}}]}
