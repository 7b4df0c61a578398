"""The weekly email digest: subject, plain-text and HTML bodies, and the MIME message (contract section 6)."""

from __future__ import annotations

import html
from collections.abc import Sequence
from datetime import UTC, date
from email.message import EmailMessage
from email.utils import format_datetime

from models.digests.content import DigestContent, SlugConversion, group_by_provider
from models.digests.text import (
    SUPPRESSED_NOTE,
    assignments_summary,
    conversion_facts,
    header_safe,
    iso_z,
    money,
    one_line,
    past_tense,
    plural,
    sparkline,
    window_phrase,
)
from models.experiment_digest import email_html, email_text_lines, worth_telling
from models.slack_format import conversion_link_label, conversions_url, provider_dashboard_url

# Gmail clips an HTML body past ~102 KB: ten slug tables with charts and 100 providers stay under it.
TOP_SLUGS_EMAIL = 10


MAX_EMAIL_PROVIDERS = 100


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
                out.append(f"  {conversion_facts(row)}")
            if slug.daily_assignments:
                out.append(
                    f"  {sparkline(slug.daily_assignments)}  {assignments_summary(slug.daily_assignments)}"
                    f" ({content.chart_days[0].isoformat()} to {content.chart_days[-1].isoformat()})"
                )
        if hidden:
            out += ["", f"+{hidden:,} more slugs"]
    out += ["", f"AUTOMATIC PAUSES AND RESUMES {window_phrase(content).upper()}"]
    groups = group_by_provider(content.actions)
    if not groups:
        out.append("None.")
    for group in groups[:MAX_EMAIL_PROVIDERS]:
        out.append(f"{one_line(group.provider_name or group.provider_id)} ({one_line(group.provider_id)})")
        for action in group.actions:
            out.append(f"  {past_tense(action.action)} {one_line(action.slug or '-')} at {iso_z(action.created_at)}")
        out.append(f"  {provider_dashboard_url(content.app_base_url, group.provider_id)}")
    if len(groups) > MAX_EMAIL_PROVIDERS:
        out.append(f"+{len(groups) - MAX_EMAIL_PROVIDERS:,} more providers")
    out += [
        "",
        (f"{conversion_link_label(content.conversion_cursor)}: "
        f"{conversions_url(content.app_base_url, content.conversion_cursor)}"),
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
        ('<body style="margin:0;padding:16px;background:#f9fafb;font-family:Arial,Helvetica,sans-serif;'
        'color:#111827;">'),
        ('<table role="presentation" width="100%" cellpadding="0" cellspacing="0" border="0" '
        'style="max-width:720px;background:#ffffff;border:1px solid #e5e7eb;"><tr><td style="padding:20px;">'),
        f'<h1 style="font-size:20px;margin:0 0 4px 0;">Weekly pricing digest {esc(period.label)}</h1>',
        (f'<p style="margin:0 0 16px 0;color:#6b7280;font-size:13px;">{esc(period.first_day.isoformat())} to '
        f"{esc(period.last_day.isoformat())} (UTC) · generated {esc(iso_z(content.generated_at))}</p>"),
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
        f"{esc(window_phrase(content))}</h2>"
    )
    groups = group_by_provider(content.actions)
    if not groups:
        parts.append("<p>None.</p>")
    else:
        items = []
        for group in groups[:MAX_EMAIL_PROVIDERS]:
            url = provider_dashboard_url(content.app_base_url, group.provider_id)
            steps = "; ".join(
                f"{past_tense(a.action)} <code>{esc(a.slug or '-')}</code> at {esc(iso_z(a.created_at))}"
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
        (f'<p style="margin-top:20px;">{esc(conversion_link_label(content.conversion_cursor))}: '
        f'<a href="{esc(url)}">Open conversions</a></p>'),
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
