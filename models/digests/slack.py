"""The Slack digest as a Block Kit payload, packed within Block Kit's limits (contract section 6)."""

from __future__ import annotations

from collections.abc import Sequence

from models.digests.content import DigestContent, ProviderActions, SlugConversion, group_by_provider
from models.digests.text import (
    SUPPRESSED_NOTE,
    action_counts,
    assignments_summary,
    conversion_facts,
    iso_z,
    past_tense,
    plural,
    shorten,
    sparkline,
    window_phrase,
)
from models.experiment_digest import slack_heading, slack_lines, worth_telling
from models.slack_format import (
    SECTION_CHARS,
    conversion_link_label,
    conversions_url,
    escape_mrkdwn,
    provider_dashboard_url,
    slack_link,
)

# Block Kit: at most 50 blocks a message, 3000 characters in a section's text, 150 in a header.
MAX_BLOCKS = 50


MAX_SECTION_CHARS = SECTION_CHARS


MAX_HEADER_CHARS = 150


# Sections each list may use: with the 5 fixed blocks this stays far below 50, and keeps the
# message short enough to read in a channel.
MAX_SLUG_SECTIONS = 4


MAX_ACTION_SECTIONS = 12


MAX_EXPERIMENT_SECTIONS = 4


TOP_SLUGS_SLACK = 10


MAX_ACTIONS_PER_PROVIDER = 3


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
        head += f"  `{sparkline(slug.daily_assignments)}` {assignments_summary(slug.daily_assignments)}"
    rows = [f"    • {escape_mrkdwn(conversion_facts(row))}" for row in slug.rows]
    return "\n".join([head, *rows])


def _slack_provider_line(app_base_url: str, group: ProviderActions) -> str:
    name = escape_mrkdwn(shorten(group.provider_name or group.provider_id))
    shown = group.actions[-MAX_ACTIONS_PER_PROVIDER:]
    steps = "; ".join(
        f"{past_tense(a.action)} `{escape_mrkdwn(shorten(a.slug or '-'))}` at {iso_z(a.created_at)}" for a in shown
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
                    f"automatic actions {escape_mrkdwn(window_phrase(content))}",
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
            f":robot_face: *Automatic pauses and resumes* {escape_mrkdwn(window_phrase(content))}: "
            f"{plural(len(groups), 'provider')}, {action_counts(content.actions)}"
        )
        lines = [_slack_provider_line(content.app_base_url, g) for g in groups]
        robot_sections = pack_sections(lines, MAX_ACTION_SECTIONS, "providers", heading)
    else:
        robot_sections = [
            f":robot_face: *Automatic pauses and resumes*\n_None {escape_mrkdwn(window_phrase(content))}._"
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
