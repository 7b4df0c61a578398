"""The two digests of contract section 6, pure: periods, the Slack Block Kit payload, the email.

`DigestContent` is everything one digest says, read from the marts and follow-ups by
`assets/digests.py`; the functions here only turn it into text. Escaping, link and label rules
come from `models/slack_format.py` so alerts and digests spell them once.

Ranking of "top conversion slugs": by the slug's largest booked-order count in any one currency,
then latest activity, then slug. Orders and revenue are never added across currencies (contract
section 3), so no cross-currency total is ever formed.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.utils import format_datetime
from typing import Literal

from models.experiment_digest import (
    SlugExperiment,
    email_html,
    email_text_lines,
    slack_heading,
    slack_lines,
    worth_telling,
)
from models.instants import as_utc
from models.slack_format import (
    conversion_link_label,
    conversions_url,
    escape_mrkdwn,
    provider_dashboard_url,
    slack_link,
)

DigestKind = Literal["slack", "email"]
DIGEST_KINDS: tuple[DigestKind, ...] = ("slack", "email")

# Block Kit: at most 50 blocks a message, 3000 characters in a section's text, 150 in a header.
MAX_BLOCKS = 50
MAX_SECTION_CHARS = 3000
MAX_HEADER_CHARS = 150
# Sections each list may use: with the 5 fixed blocks this stays far below 50, and keeps the
# message short enough to read in a channel.
MAX_SLUG_SECTIONS = 4
MAX_ACTION_SECTIONS = 12
MAX_EXPERIMENT_SECTIONS = 4
TOP_SLUGS_SLACK = 10
# Gmail clips an HTML body past ~102 KB: ten slug tables with charts and 100 providers stay under it.
TOP_SLUGS_EMAIL = 10
MAX_EMAIL_PROVIDERS = 100
CHART_DAYS = 10
# Long free text is cut before escaping, so a cut never splits an `&amp;` entity.
MAX_NAME_CHARS = 80
MAX_ACTIONS_PER_PROVIDER = 3

SPARK_GLYPHS = "▁▂▃▄▅▆▇█"
SUPPRESSED_NOTE = (
    "Conversion rows are suppressed: WEEKLY_DIGEST_ENABLED=false. "
    "They return in the next digest once the flag is restored."
)

_SLACK_PERIOD = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_EMAIL_PERIOD = re.compile(r"^(\d{4})-W(\d{2})$")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]+")


# Periods -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DigestPeriod:
    """One digest's period: a UTC date (Slack, `2026-11-26`) or an ISO week (email, `2026-W48`)."""

    kind: DigestKind
    label: str
    first_day: date
    last_day: date  # inclusive

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(0), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """Exclusive end instant (midnight UTC after the last day)."""
        return datetime.combine(self.last_day + timedelta(days=1), time(0), tzinfo=UTC)


def parse_period(kind: DigestKind, text: str) -> DigestPeriod:
    """`2026-11-26` for the Slack digest, `2026-W48` for the email; ValueError says the format."""
    value = text.strip()
    if kind == "slack":
        try:
            if not _SLACK_PERIOD.match(value):
                raise ValueError
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"period {text!r} is not a UTC date: the Slack digest's period is YYYY-MM-DD, e.g. 2026-11-26"
            ) from None
        return DigestPeriod("slack", day.isoformat(), day, day)
    if kind == "email":
        match = _EMAIL_PERIOD.match(value)
        try:
            if not match:
                raise ValueError
            monday = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
        except ValueError:
            raise ValueError(
                f"period {text!r} is not an ISO week: the email digest's period is YYYY-Www, e.g. 2026-W48"
            ) from None
        return DigestPeriod("email", value, monday, monday + timedelta(days=6))
    raise ValueError(f"digest kind {kind!r} is not one of {', '.join(DIGEST_KINDS)}")


def period_containing(kind: DigestKind, instant: datetime) -> DigestPeriod:
    """The period of `kind` that holds `instant` (taken in UTC whatever its zone)."""
    day = instant.astimezone(UTC).date()
    if kind == "slack":
        return parse_period("slack", day.isoformat())
    year, week, _ = day.isocalendar()
    return parse_period("email", f"{year:04d}-W{week:02d}")


def previous_period(period: DigestPeriod) -> DigestPeriod:
    return period_containing(period.kind, period.start - timedelta(seconds=1))


# Content -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ConversionRow:
    """One (slug, currency) row of `experiment_conversion_snapshot` (or its history)."""

    slug: str
    currency: str
    order_total: Decimal
    order_count: int
    journey_count: int
    loyalty_points: int
    last_activity: datetime | None


@dataclass(frozen=True)
class SlugConversion:
    """A slug's conversion rows (best currency first) and its daily assignments, oldest day first."""

    slug: str
    rows: tuple[ConversionRow, ...]
    daily_assignments: tuple[int, ...]


@dataclass(frozen=True)
class AutomationAction:
    """A follow-up by actor `automation` with action `pause` or `resume`."""

    followup_id: str
    provider_id: str
    provider_name: str | None
    slug: str | None
    action: str
    created_at: datetime


@dataclass(frozen=True)
class DigestContent:
    """Everything one digest says. `slugs` holds every slug, ranked; renderers cut the list."""

    period: DigestPeriod
    generated_at: datetime
    app_base_url: str
    actions_since: datetime | None  # None: no digest of this kind was sent before
    actions: tuple[AutomationAction, ...]
    slugs: tuple[SlugConversion, ...] = ()
    chart_days: tuple[date, ...] = ()
    conversions_suppressed: bool = False
    # Set when the digest shows a historical snapshot (a past period): the link says so.
    conversion_cursor: str | None = None
    snapshot_date: date | None = None
    notes: tuple[str, ...] = field(default=())
    # Experiment decisions and SRM warnings (section 9): both digests lead with them.
    experiments: tuple[SlugExperiment, ...] = ()


def rank_slugs(
    rows: Iterable[ConversionRow], assignments: dict[str, Sequence[int]] | None = None, chart_days: int = 0
) -> tuple[SlugConversion, ...]:
    """Group snapshot rows by slug and rank them (see the module docstring); a slug without
    assignments in the chart window gets `chart_days` zeros."""
    by_slug: dict[str, list[ConversionRow]] = {}
    for row in rows:
        by_slug.setdefault(row.slug, []).append(row)

    def best_first(r: ConversionRow) -> tuple:
        return (-r.order_count, -r.journey_count, r.currency)

    def rank(item: tuple[str, list[ConversionRow]]) -> tuple:
        slug, slug_rows = item
        activity = [r.last_activity.timestamp() for r in slug_rows if r.last_activity is not None]
        # Most orders first, then most recent activity (a slug with none last), then by name.
        return (-max(r.order_count for r in slug_rows), -max(activity) if activity else float("inf"), slug)

    ranked = sorted(by_slug.items(), key=rank)
    assignments = assignments or {}
    return tuple(
        SlugConversion(
            slug, tuple(sorted(slug_rows, key=best_first)), tuple(assignments.get(slug, (0,) * chart_days))
        )
        for slug, slug_rows in ranked
    )


def chart_window(period: DigestPeriod, today: date, days: int = CHART_DAYS) -> tuple[date, ...]:
    """The `days` UTC dates ending at the period's last day, or today when the period is not over."""
    end = min(period.last_day, today)
    return tuple(end - timedelta(days=offset) for offset in range(days - 1, -1, -1))


# Formatting helpers ------------------------------------------------------------------------------
def iso_z(instant: datetime | None) -> str:
    """ISO 8601 in UTC with `Z`, whole seconds (a naive value is taken as UTC); `-` for none."""
    if instant is None:
        return "-"
    return as_utc(instant).replace(microsecond=0, tzinfo=None).isoformat() + "Z"  # type: ignore[union-attr]




def money(amount: Decimal) -> str:
    """`1,234.50`: exact decimal, two places, thousands separators."""
    return f"{Decimal(amount).quantize(Decimal('0.01')):,.2f}"


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


def _conversion_facts(row: ConversionRow) -> str:
    return (
        f"{row.currency} {money(row.order_total)} · {plural(row.order_count, 'order')} / "
        f"{plural(row.journey_count, 'journey')} · {row.loyalty_points:,} loyalty pts · "
        f"last activity {iso_z(row.last_activity)}"
    )


def _assignments_summary(values: Sequence[int]) -> str:
    last3 = ", ".join(str(v) for v in values[-3:])
    return f"{len(values)}-day assignments, last 3: {last3}"


def _window_phrase(content: DigestContent) -> str:
    if content.actions_since is None:
        return "since automation began (first digest)"
    return f"since the previous digest ({iso_z(content.actions_since)})"


@dataclass(frozen=True)
class ProviderActions:
    """A provider's automatic actions in the digest window, oldest first."""

    provider_id: str
    provider_name: str | None
    actions: tuple[AutomationAction, ...]


def group_by_provider(actions: Iterable[AutomationAction]) -> tuple[ProviderActions, ...]:
    """One entry per provider, in the order of its first action in the window."""
    ordered = sorted(actions, key=lambda a: (a.created_at, a.followup_id))
    groups: dict[str, list[AutomationAction]] = {}
    for action in ordered:
        groups.setdefault(action.provider_id, []).append(action)
    return tuple(
        ProviderActions(pid, next((a.provider_name for a in reversed(acts) if a.provider_name), None), tuple(acts))
        for pid, acts in groups.items()
    )


def _past_tense(action: str) -> str:
    return {"pause": "paused", "resume": "resumed"}.get(action, action)


def _action_counts(actions: Sequence[AutomationAction]) -> str:
    paused = sum(1 for a in actions if a.action == "pause")
    resumed = sum(1 for a in actions if a.action == "resume")
    return f"{paused:,} paused, {resumed:,} resumed"


# Slack -------------------------------------------------------------------------------------------
def pack_sections(
    lines: Sequence[str], max_sections: int, more_noun: str, heading: str = "", also_hidden: int = 0
) -> list[str]:
    """Pack mrkdwn lines into at most `max_sections` section texts of at most 3000 characters.

    Lines that do not fit, plus `also_hidden` left out by the caller, are counted in a final
    `_+N more <noun>_` line. Every line must be shorter than the limit (callers shorten free text).
    """
    sections: list[list[str]] = [[heading]] if heading else [[]]
    used = len(heading)
    placed = 0
    for line in lines:
        if sections[-1] and used + 1 + len(line) > MAX_SECTION_CHARS:
            if len(sections) == max_sections:
                break
            sections.append([])
            used = -1
        sections[-1].append(line)
        used += 1 + len(line)
        placed += 1
    hidden = len(lines) - placed + also_hidden
    if hidden:
        last = sections[-1]
        while True:
            more = f"_+{hidden:,} more {more_noun}_"
            if len("\n".join(last + [more])) <= MAX_SECTION_CHARS or len(last) <= 1:
                break
            last.pop()
            hidden += 1
        last.append(more)
    return ["\n".join(section) for section in sections if section]


def _slack_slug_entry(slug: SlugConversion) -> str:
    head = f"*`{escape_mrkdwn(shorten(slug.slug))}`*"
    if slug.daily_assignments:
        head += f"  `{sparkline(slug.daily_assignments)}` {_assignments_summary(slug.daily_assignments)}"
    rows = [f"    • {escape_mrkdwn(_conversion_facts(row))}" for row in slug.rows]
    return "\n".join([head, *rows])


def _slack_provider_line(app_base_url: str, group: ProviderActions) -> str:
    name = escape_mrkdwn(shorten(group.provider_name or group.provider_id))
    shown = group.actions[-MAX_ACTIONS_PER_PROVIDER:]
    steps = "; ".join(
        f"{_past_tense(a.action)} `{escape_mrkdwn(shorten(a.slug or '-'))}` at {iso_z(a.created_at)}" for a in shown
    )
    earlier = len(group.actions) - len(shown)
    if earlier:
        steps = f"({earlier} earlier) " + steps
    link = slack_link(provider_dashboard_url(app_base_url, group.provider_id), "Open dashboard")
    return f"• *{name}* — {steps} · {link}"


def render_slack_digest(content: DigestContent, top_slugs: int = TOP_SLUGS_SLACK) -> dict:
    """The `chat.postMessage` arguments (`text`, `blocks`) of the provider automation digest."""
    period = content.period
    blocks: list[dict] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": f"Provider automation digest · {period.label}"[:MAX_HEADER_CHARS]},
        },
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"Period {period.label} (UTC) · generated {iso_z(content.generated_at)} · "
                    f"automatic actions {escape_mrkdwn(_window_phrase(content))}",
                }
            ],
        },
    ]

    # :test_tube: decided slugs and SRM warnings first; suppressed with the conversion rows.
    if worth_telling(content.experiments) and not content.conversions_suppressed:
        heading = slack_heading(content.experiments)
        lines = slack_lines(content.experiments)
        blocks += [_section(t) for t in pack_sections(lines, MAX_EXPERIMENT_SECTIONS, "experiment lines", heading)]
        blocks.append({"type": "divider"})

    # :moneybag: top conversion slugs
    if content.conversions_suppressed:
        money_sections = [f":moneybag: *Top conversion slugs*\n_{SUPPRESSED_NOTE}_"]
    elif not content.slugs:
        money_sections = [":moneybag: *Top conversion slugs*\n_No conversion data yet._"]
    else:
        shown = content.slugs[:top_slugs]
        entries = [_slack_slug_entry(s) for s in shown]
        heading = f":moneybag: *Top conversion slugs* ({len(shown)} of {plural(len(content.slugs), 'slug')})"
        if content.snapshot_date is not None:
            heading += f" · snapshot of {content.snapshot_date.isoformat()}"
        money_sections = pack_sections(
            entries, MAX_SLUG_SECTIONS, "slugs", heading, also_hidden=len(content.slugs) - len(shown)
        )
    blocks += [_section(text) for text in money_sections]
    blocks.append({"type": "divider"})

    # :robot_face: automatic pauses and resumes since the previous digest
    groups = group_by_provider(content.actions)
    if groups:
        heading = (
            f":robot_face: *Automatic pauses and resumes* {escape_mrkdwn(_window_phrase(content))}: "
            f"{plural(len(groups), 'provider')}, {_action_counts(content.actions)}"
        )
        lines = [_slack_provider_line(content.app_base_url, g) for g in groups]
        robot_sections = pack_sections(lines, MAX_ACTION_SECTIONS, "providers", heading)
    else:
        robot_sections = [
            f":robot_face: *Automatic pauses and resumes*\n_None {escape_mrkdwn(_window_phrase(content))}._"
        ]
    blocks += [_section(text) for text in robot_sections]
    blocks.append({"type": "divider"})

    label = conversion_link_label(content.conversion_cursor)
    link = slack_link(conversions_url(content.app_base_url, content.conversion_cursor), "Open conversions")
    blocks.append(_section(f"• {label}: {link}"))

    text = (
        f"Provider automation digest {period.label}: "
        + ("conversion rows suppressed" if content.conversions_suppressed else plural(len(content.slugs), "slug"))
        + f", {plural(len(content.actions), 'automatic action')}"
    )
    return {"text": text, "blocks": blocks}


def _section(text: str) -> dict:
    return {"type": "section", "text": {"type": "mrkdwn", "text": text}}


# Email -------------------------------------------------------------------------------------------
def header_safe(value: str, limit: int = 200) -> str:
    """A header value on one line: control characters (CR, LF, ...) become spaces."""
    return shorten(" ".join(one_line(value).split()), limit)


def email_subject(content: DigestContent) -> str:
    subject = f"Weekly pricing digest {content.period.label}"
    if content.conversions_suppressed:
        subject += " · conversion rows suppressed"
    elif content.slugs:
        subject += f" · top slug {content.slugs[0].slug}"
    subject += f" · {plural(len(content.actions), 'automatic action')}"
    return header_safe(subject)


def _email_slugs(content: DigestContent, top_slugs: int) -> tuple[tuple[SlugConversion, ...], int]:
    shown = content.slugs[:top_slugs]
    return shown, len(content.slugs) - len(shown)


def _email_experiments(content: DigestContent, render, after: Sequence[str] = ()) -> list:
    """The experiments block of the email, or nothing (nothing decided or flagged, or suppressed with
    the conversions)."""
    if not worth_telling(content.experiments) or content.conversions_suppressed:
        return []
    rendered = render(content.experiments)
    return [*(rendered if isinstance(rendered, list) else [rendered]), *after]


def render_email_text(content: DigestContent, top_slugs: int = TOP_SLUGS_EMAIL) -> str:
    """The plain-text part."""
    period = content.period
    out = [
        f"Weekly pricing digest {period.label} ({period.first_day.isoformat()} to {period.last_day.isoformat()}, UTC)",
        f"Generated {iso_z(content.generated_at)}",
        "",
        *_email_experiments(content, email_text_lines, [""]),
        "TOP CONVERSION SLUGS",
    ]
    if content.conversions_suppressed:
        out.append(SUPPRESSED_NOTE)
    elif not content.slugs:
        out.append("No conversion data yet.")
    else:
        shown, hidden = _email_slugs(content, top_slugs)
        if content.snapshot_date is not None:
            out.append(f"Snapshot of {content.snapshot_date.isoformat()}")
        for slug in shown:
            out.append("")
            out.append(one_line(slug.slug))
            for row in slug.rows:
                out.append(f"  {_conversion_facts(row)}")
            if slug.daily_assignments:
                out.append(
                    f"  {sparkline(slug.daily_assignments)}  {_assignments_summary(slug.daily_assignments)}"
                    f" ({content.chart_days[0].isoformat()} to {content.chart_days[-1].isoformat()})"
                )
        if hidden:
            out += ["", f"+{hidden:,} more slugs"]
    out += ["", f"AUTOMATIC PAUSES AND RESUMES {_window_phrase(content).upper()}"]
    groups = group_by_provider(content.actions)
    if not groups:
        out.append("None.")
    for group in groups[:MAX_EMAIL_PROVIDERS]:
        out.append(f"{one_line(group.provider_name or group.provider_id)} ({one_line(group.provider_id)})")
        for action in group.actions:
            out.append(f"  {_past_tense(action.action)} {one_line(action.slug or '-')} at {iso_z(action.created_at)}")
        out.append(f"  {provider_dashboard_url(content.app_base_url, group.provider_id)}")
    if len(groups) > MAX_EMAIL_PROVIDERS:
        out.append(f"+{len(groups) - MAX_EMAIL_PROVIDERS:,} more providers")
    out += [
        "",
        f"{conversion_link_label(content.conversion_cursor)}: "
        f"{conversions_url(content.app_base_url, content.conversion_cursor)}",
    ]
    return "\n".join(out) + "\n"


_CELL = 'style="padding:4px 8px;border-bottom:1px solid #e5e7eb;text-align:{align};"'
_BAR_COLOR = "#4f46e5"
_BAR_MAX_PX = 60


def _td(value: str, align: str = "left") -> str:
    return f"<td {_CELL.format(align=align)}>{html.escape(value)}</td>"


def _th(value: str, align: str = "left") -> str:
    return f"<th {_CELL.format(align=align)}>{html.escape(value)}</th>"


def chart_html(days: Sequence[date], values: Sequence[int], slug: str) -> str:
    """A vertical bar chart of daily assignments built from table cells (`bgcolor` + `height`), which
    Outlook, Gmail and Apple Mail all draw without images or CSS support."""
    top = max(values, default=0)
    bars = []
    labels = []
    for day, value in zip(days, values):
        height = 0 if top <= 0 or value <= 0 else max(2, round(value / top * _BAR_MAX_PX))
        color = _BAR_COLOR if height else "#d1d5db"
        height = height or 1
        bars.append(
            '<td valign="bottom" align="center" style="padding:0 3px;font-size:11px;color:#374151;">'
            f"{value:,}"
            '<table role="presentation" width="20" cellpadding="0" cellspacing="0" border="0"><tr>'
            f'<td height="{height}" bgcolor="{color}" style="height:{height}px;background:{color};'
            f'font-size:0;line-height:0;" title="{html.escape(day.isoformat())}: {value:,}">&nbsp;</td>'
            "</tr></table></td>"
        )
        labels.append(
            f'<td align="center" style="padding:2px 3px;font-size:10px;color:#6b7280;">{day.strftime("%m-%d")}</td>'
        )
    caption = html.escape(f"Daily assignments of {slug}, last {len(values)} days (UTC)")
    return (
        f'<table role="presentation" class="assignments-chart" data-chart="daily-assignments" '
        f'aria-label="{caption}" cellpadding="0" cellspacing="0" border="0" style="margin:6px 0 2px 0;">'
        f'<tr style="height:{_BAR_MAX_PX + 16}px;">{"".join(bars)}</tr><tr>{"".join(labels)}</tr></table>'
    )


def render_email_html(content: DigestContent, top_slugs: int = TOP_SLUGS_EMAIL) -> str:
    """The HTML part: every value escaped, tables and inline styles only."""
    esc = html.escape
    period = content.period
    parts = [
        "<!DOCTYPE html>",
        '<html><head><meta charset="utf-8"><title>'
        + esc(f"Weekly pricing digest {period.label}")
        + "</title></head>",
        '<body style="margin:0;padding:16px;background:#f9fafb;font-family:Arial,Helvetica,sans-serif;'
        'color:#111827;">',
        '<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        'style="max-width:720px;background:#ffffff;border:1px solid #e5e7eb;"><tr><td style="padding:20px;">',
        f'<h1 style="font-size:20px;margin:0 0 4px 0;">Weekly pricing digest {esc(period.label)}</h1>',
        f'<p style="margin:0 0 16px 0;color:#6b7280;font-size:13px;">{esc(period.first_day.isoformat())} to '
        f"{esc(period.last_day.isoformat())} (UTC) · generated {esc(iso_z(content.generated_at))}</p>",
        *_email_experiments(content, email_html),
        '<h2 style="font-size:16px;margin:16px 0 8px 0;">&#x1F4B0; Top conversion slugs</h2>',
    ]
    if content.conversions_suppressed:
        parts.append(
            '<p class="suppressed" style="padding:8px 12px;background:#fef3c7;border:1px solid #f59e0b;">'
            f"{esc(SUPPRESSED_NOTE)}</p>"
        )
    elif not content.slugs:
        parts.append("<p>No conversion data yet.</p>")
    else:
        shown, hidden = _email_slugs(content, top_slugs)
        if content.snapshot_date is not None:
            parts.append(f"<p>Snapshot of {esc(content.snapshot_date.isoformat())}</p>")
        for slug in shown:
            parts.append(
                f'<h3 style="font-size:14px;margin:14px 0 4px 0;font-family:Menlo,Consolas,monospace;">'
                f"{esc(slug.slug)}</h3>"
            )
            header = "".join(
                [_th("Currency"), _th("Revenue", "right"), _th("Orders", "right"), _th("Journeys", "right"),
                 _th("Loyalty points", "right"), _th("Last activity")]
            )
            rows = "".join(
                "<tr>"
                + _td(row.currency)
                + _td(money(row.order_total), "right")
                + _td(f"{row.order_count:,}", "right")
                + _td(f"{row.journey_count:,}", "right")
                + _td(f"{row.loyalty_points:,}", "right")
                + _td(iso_z(row.last_activity))
                + "</tr>"
                for row in slug.rows
            )
            parts.append(
                '<table class="conversions" cellpadding="0" cellspacing="0" border="0" '
                f'style="border-collapse:collapse;font-size:13px;"><tr>{header}</tr>{rows}</table>'
            )
            if slug.daily_assignments:
                parts.append(chart_html(content.chart_days, slug.daily_assignments, slug.slug))
        if hidden:
            parts.append(f"<p>+{hidden:,} more slugs</p>")
    parts.append(
        f'<h2 style="font-size:16px;margin:20px 0 8px 0;">&#x1F916; Automatic pauses and resumes '
        f"{esc(_window_phrase(content))}</h2>"
    )
    groups = group_by_provider(content.actions)
    if not groups:
        parts.append("<p>None.</p>")
    else:
        items = []
        for group in groups[:MAX_EMAIL_PROVIDERS]:
            url = provider_dashboard_url(content.app_base_url, group.provider_id)
            steps = "; ".join(
                f"{_past_tense(a.action)} <code>{esc(a.slug or '-')}</code> at {esc(iso_z(a.created_at))}"
                for a in group.actions
            )
            items.append(
                f"<li><strong>{esc(group.provider_name or group.provider_id)}</strong> — {steps} · "
                f'<a href="{esc(url)}">Open dashboard</a></li>'
            )
        parts.append(f'<ul class="automation-actions" style="padding-left:20px;">{"".join(items)}</ul>')
        if len(groups) > MAX_EMAIL_PROVIDERS:
            parts.append(f"<p>+{len(groups) - MAX_EMAIL_PROVIDERS:,} more providers</p>")
    url = conversions_url(content.app_base_url, content.conversion_cursor)
    parts += [
        f'<p style="margin-top:20px;">{esc(conversion_link_label(content.conversion_cursor))}: '
        f'<a href="{esc(url)}">Open conversions</a></p>',
        "</td></tr></table></body></html>",
    ]
    return "\n".join(parts)


def build_email(content: DigestContent, sender: str, recipients: Sequence[str]) -> EmailMessage:
    """The multipart/alternative message (plain text, then HTML).

    The Message-ID is derived from the period, so a copy sent twice by a retry is recognised as the
    same message by receiving servers.
    """
    message = EmailMessage()
    message["Subject"] = email_subject(content)
    message["From"] = header_safe(sender)
    message["To"] = ", ".join(header_safe(r) for r in recipients)
    message["Date"] = format_datetime(content.generated_at.astimezone(UTC))
    domain = header_safe(sender).rpartition("@")[2].strip("> ") or "pricing-ops.local"
    message["Message-ID"] = f"<weekly-digest.{content.period.label}@{domain}>"
    message["X-Pricing-Ops-Digest"] = f"email {content.period.label}"
    message.set_content(render_email_text(content))
    message.add_alternative(render_email_html(content), subtype="html")
    return message
