"""One export run as `export_runs` stores it and the Slack notice reports it, and the one rule of
how many runs in a row have failed (export notices escalate on it, readiness reports it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from models.export_cursor import ExportCursor

# Two failed exports in a row is when the export is failing (contract section 5): the Slack notice
# escalates and readiness reports the export as failing. The one threshold of both.
FAILING_AFTER_FAILURES = 2


@dataclass
class ExportRunRecord:
    """One export run as `export_runs` stores it and the Slack notice reports it."""

    run_id: str
    started_at: datetime
    sink: str
    format: str
    finished_at: datetime | None = None
    status: Literal["success", "failed"] | None = None
    rows_exported: int = 0
    batches: int = 0
    cursor_before: ExportCursor | None = None
    cursor_after: ExportCursor | None = None
    destination: str = ""
    error: str | None = None

    @property
    def cursor_before_text(self) -> str:
        return self.cursor_before.position if self.cursor_before else "beginning (no cursor yet)"

    @property
    def cursor_after_text(self) -> str:
        return self.cursor_after.position if self.cursor_after else "beginning (no cursor yet)"


def failures_in_a_row(statuses_newest_first: list[str]) -> int:
    """How many runs failed since the last success."""
    count = 0
    for status in statuses_newest_first:
        if status != "failed":
            break
        count += 1
    return count


def export_is_failing(failures_in_a_row: int) -> bool:
    """Whether that many failed runs in a row make the export failing (escalate, not ready)."""
    return failures_in_a_row >= FAILING_AFTER_FAILURES
