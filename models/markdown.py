"""Markdown tables for what people read in the Dagster UI (asset metadata previews): one renderer."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from models.instants import utc_z


def markdown_cell(value: Any) -> str:
    """One cell: instants as UTC `Z`, None empty, and no character that would break the row."""
    if isinstance(value, datetime):
        value = utc_z(value, "auto")
    return ("" if value is None else str(value)).replace("|", "\\|").replace("\n", " ")


def markdown_table(rows: Sequence[dict[str, Any]], empty: str = "_no rows_") -> str:
    """Rows (dicts with the same keys) as a markdown table, the keys as its header; `empty` when none."""
    if not rows:
        return empty
    names = list(rows[0])
    lines = ["| " + " | ".join(names) + " |", "|" + "---|" * len(names)]
    lines += ["| " + " | ".join(markdown_cell(v) for v in row.values()) + " |" for row in rows]
    return "\n".join(lines)
