"""Slack text of the export's notices (contract section 5): success, failure, and the escalation
after two failures in a row. Pure; every interpolated value is escaped for Slack mrkdwn."""

from __future__ import annotations

from models.export_rows import ExportRunRecord, format_instant
from models.slack_format import escape_mrkdwn, slack_link


def _when(record: ExportRunRecord) -> str:
    started = format_instant(record.started_at)
    finished = format_instant(record.finished_at) if record.finished_at else "-"
    return f"• Started {started} · finished {finished}"


def _run_line(record: ExportRunRecord, run_url: str | None) -> str:
    if run_url:
        return f"• Run: {slack_link(run_url, record.run_id)}"
    return f"• Run: `{escape_mrkdwn(record.run_id)}`"


def render_success(record: ExportRunRecord, run_url: str | None) -> str:
    """`:white_check_mark:` notice: rows, batches, where, next cursor, timestamps, run link."""
    lines = [
        (
            f":white_check_mark: Onboarding experiment export succeeded: *{record.rows_exported}* rows in "
            f"{record.batches} batches to {escape_mrkdwn(record.destination or record.sink)} "
            f"({escape_mrkdwn(record.format)})"
        ),
        f"• Next cursor: `{escape_mrkdwn(record.cursor_after_text)}` (was `{escape_mrkdwn(record.cursor_before_text)}`)",
        _when(record),
        _run_line(record, run_url),
    ]
    return "\n".join(lines)


def render_failure(record: ExportRunRecord, run_url: str | None) -> str:
    """`:x:` notice: the error, what was still delivered, where the cursor stays."""
    lines = [
        (
            f":x: Onboarding experiment export failed after {record.rows_exported} rows in {record.batches} "
            f"batches to {escape_mrkdwn(record.destination or record.sink)}"
        ),
        f"• Error: {escape_mrkdwn(record.error or 'unknown error')}",
        f"• Cursor stays at: `{escape_mrkdwn(record.cursor_after_text)}` (next run resumes there)",
        _when(record),
        _run_line(record, run_url),
    ]
    return "\n".join(lines)


def render_escalation(record: ExportRunRecord, failures_in_a_row: int, run_url: str | None) -> str:
    """`:rotating_light:` notice after two (or more) failed runs in a row, with the runbook's checks."""
    lines = [
        (
            f":rotating_light: Onboarding experiment export has failed *{failures_in_a_row} times in a row*; "
            "rows are piling up behind the cursor"
        ),
        f"• Last error: {escape_mrkdwn(record.error or 'unknown error')}",
        f"• Cursor stuck at: `{escape_mrkdwn(record.cursor_after_text)}`",
        (
            "• Check: database / API connectivity and credentials, the sink (webhook receiver, bucket, "
            "folder), and that the cursor is readable; then run `pricing-ops export` (it resumes from the cursor)"
        ),
        _run_line(record, run_url),
    ]
    return "\n".join(lines)
