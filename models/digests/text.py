"""The words and numbers both digests share: UTC times, money, cut names, sparklines, phrases.

Escaping, link and label rules come from `models/slack_format.py` so alerts and digests spell them once.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime

from models.digests.content import AutomationAction, ConversionRow, DigestContent
from models.instants import utc_z
from models.money import money  # also re-exported: mail.py imports it from here

# Long free text is cut before escaping, so a cut never splits an `&amp;` entity.
MAX_NAME_CHARS = 80


SPARK_GLYPHS = "▁▂▃▄▅▆▇█"


SUPPRESSED_NOTE = (
    "Conversion rows are suppressed: WEEKLY_DIGEST_ENABLED=false. "
    "They return in the next digest once the flag is restored."
)


_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")


# Formatting helpers ------------------------------------------------------------------------------
def iso_z(instant: datetime | None) -> str:
    """ISO 8601 in UTC with `Z`, whole seconds (a naive value is taken as UTC); `-` for none."""
    return "-" if instant is None else utc_z(instant, "seconds")


def one_line(value: str | None) -> str:
    """Free text on one line: control characters (CR, LF, tab, ...) become spaces."""
    return "" if value is None else _CONTROL_CHARS.sub(" ", value)


def shorten(value: str | None, limit: int = MAX_NAME_CHARS) -> str:
    """One line of at most `limit` characters, cut with `…`."""
    text = one_line(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def sparkline(values: Sequence[int]) -> str:
    """One glyph per value, scaled to the largest (all `▁` when every value is 0)."""
    top = max(values, default=0)
    if top <= 0:
        return SPARK_GLYPHS[0] * len(values)
    last = len(SPARK_GLYPHS) - 1
    return "".join(SPARK_GLYPHS[round(v / top * last)] if v > 0 else SPARK_GLYPHS[0] for v in values)


def plural(count: int, word: str, words: str | None = None) -> str:
    return f"{count:,} {word if count == 1 else (words or word + 's')}"


def conversion_facts(row: ConversionRow) -> str:
    return (
        f"{row.currency} {money(row.order_total)} · {plural(row.order_count, 'order')} / "
        f"{plural(row.journey_count, 'journey')} · {row.loyalty_points:,} loyalty pts · "
        f"last activity {iso_z(row.last_activity)}"
    )


def assignments_summary(values: Sequence[int]) -> str:
    last3 = ", ".join(str(v) for v in values[-3:])
    return f"{len(values)}-day assignments, last 3: {last3}"


def window_phrase(content: DigestContent) -> str:
    if content.actions_since is None:
        return "since automation began (first digest)"
    return f"since the previous digest ({iso_z(content.actions_since)})"


def past_tense(action: str) -> str:
    return {"pause": "paused", "resume": "resumed"}.get(action, action)


def action_counts(actions: Sequence[AutomationAction]) -> str:
    paused = sum(1 for a in actions if a.action == "pause")
    resumed = sum(1 for a in actions if a.action == "resume")
    return f"{paused:,} paused, {resumed:,} resumed"


def header_safe(value: str, limit: int = 200) -> str:
    """A header value on one line: control characters (CR, LF, ...) become spaces."""
    return shorten(" ".join(one_line(value).split()), limit)
