"""Slack text: escaping, the guardrail alert template (contract section 4) and the conversions-link rule.

Pure functions, shared by the guardrail alerts and the digests so a label or a link is spelled once.
Every value interpolated into Slack mrkdwn goes through `escape_mrkdwn`: Slack reads `<...>` as a
link or a mention (`<!channel>`), so a provider name must never be able to write one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

# APP_BASE_URL when unset (contract section 4); settings and the digests default to this one value.
DEFAULT_APP_BASE_URL = "https://app.smplat.local"

# Characters left as they are in a conversion cursor placed in a query string: the unreserved set
# plus the sub-delimiters a query may hold. `&`, `=`, `+`, `#`, `|`, `<`, `>` are percent-encoded so a
# cursor can neither end the query nor break out of a Slack link.
_CURSOR_SAFE = "-._~:@/!$'()*,;"

ALERT_HEADERS = {
    "alert": ":warning: Guardrail alert for",
    "warning": ":large_yellow_circle: Guardrail warning for",
    "resume": ":white_check_mark: Automation resumed for",
}


def escape_mrkdwn(value: object) -> str:
    """Escape `&`, `<` and `>` (Slack's three control characters); `None` becomes an empty string."""
    if value is None:
        return ""
    return str(value).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _base(app_base_url: str | None) -> str:
    return (app_base_url or DEFAULT_APP_BASE_URL).rstrip("/")


def conversions_url(app_base_url: str | None, conversion_cursor: str | None) -> str:
    """`{APP_BASE_URL}/admin/reports[?conversionCursor=<cursor>]#experiment-analytics`."""
    query = (
        ""
        if conversion_cursor is None
        else "?conversionCursor=" + quote(conversion_cursor, safe=_CURSOR_SAFE)
    )
    return f"{_base(app_base_url)}/admin/reports{query}#experiment-analytics"


def provider_dashboard_url(app_base_url: str | None, provider_id: str) -> str:
    """`{APP_BASE_URL}/admin/fulfillment/providers/{providerId}?tab=automation`."""
    return f"{_base(app_base_url)}/admin/fulfillment/providers/{quote(provider_id, safe='')}?tab=automation"


def is_historical(conversion_cursor: str | None) -> bool:
    """A conversion cursor in play means a historical slice; none means live data."""
    return conversion_cursor is not None


def conversion_link_label(conversion_cursor: str | None) -> str:
    """The digests' label of the conversions link: `Live conversion snapshot` or `Historical conversion slice`."""
    return "Historical conversion slice" if is_historical(conversion_cursor) else "Live conversion snapshot"


def alert_slice_label(conversion_cursor: str | None) -> str:
    """The alert template's `{Live/Historical} conversion slice`."""
    return ("Historical" if is_historical(conversion_cursor) else "Live") + " conversion slice"


def slack_link(url: str, label: str) -> str:
    """`<url|label>` with both parts escaped."""
    return f"<{escape_mrkdwn(url)}|{escape_mrkdwn(label)}>"


@dataclass(frozen=True)
class AlertContent:
    """What one guardrail message says; `kind` picks the first line (alert, warning, resume)."""

    kind: str
    provider_id: str
    provider_name: str | None
    slug: str | None
    guardrail_failures: int | None
    replay_failures: int | None
    replay_total: int | None
    action: str
    notes: str | None
    conversion_cursor: str | None = None


def _number(value: int | None) -> str:
    return "-" if value is None else str(value)


def render_alert(content: AlertContent, app_base_url: str | None) -> str:
    """The contract's alert template, filled and escaped:

    ```
    :warning: Guardrail alert for *{providerName}* `{slug}`
    • Failures: {guardrailFailures} · Replays: {replayFailures}/{replayTotal}
    • Action: {actionTaken} (notes: {notes})
    • {Live/Historical} conversion slice: <{conversions url}|Open conversions>
    <{provider dashboard url}|Open dashboard>
    ```
    A missing provider name falls back to the id; a missing slug, count or note prints `-`.
    """
    header = ALERT_HEADERS[content.kind]
    name = content.provider_name if content.provider_name else content.provider_id
    slug = content.slug if content.slug else "-"
    notes = content.notes if content.notes else "-"
    lines = [
        f"{header} *{escape_mrkdwn(name)}* `{escape_mrkdwn(slug)}`",
        (
            f"• Failures: {_number(content.guardrail_failures)} · Replays: "
            f"{_number(content.replay_failures)}/{_number(content.replay_total)}"
        ),
        f"• Action: {escape_mrkdwn(content.action)} (notes: {escape_mrkdwn(notes)})",
        f"• {alert_slice_label(content.conversion_cursor)}: "
        + slack_link(conversions_url(app_base_url, content.conversion_cursor), "Open conversions"),
        slack_link(provider_dashboard_url(app_base_url, content.provider_id), "Open dashboard"),
    ]
    return "\n".join(lines)


# Block Kit: at most 3000 characters in a section's text (contract section 6).
SECTION_CHARS = 3000


def text_blocks(text: str) -> list[dict[str, Any]]:
    """A mrkdwn message as Block Kit section blocks (the `text` stays the notification fallback):
    lines kept whole, each section at most 3000 characters (a longer line is cut)."""
    sections: list[str] = []
    for line in text.split("\n"):
        line = line[:SECTION_CHARS]
        if sections and len(sections[-1]) + 1 + len(line) <= SECTION_CHARS:
            sections[-1] += "\n" + line
        else:
            sections.append(line)
    return [{"type": "section", "text": {"type": "mrkdwn", "text": s}} for s in sections if s.strip()]
