"""What the digests say about experiments (contract sections 6, 9 and 9.1), pure: the decided slugs
(a challenger winning or losing, with its lift and always-valid interval), one warning per slug in
sample ratio mismatch, then the inconclusive slugs. A line per decided comparison and per challenger
with an inconclusive one (led by its conversion), each with its chance to win, the days an
inconclusive one still needs (or that it cannot decide at this traffic), and the risk of its
revenue in money per 1,000 journeys. For Slack (mrkdwn lines) and the email (text lines, HTML with
a small interval chart per slug built from table cells, which every mail client draws). Every
figure is read from `experiment_results`; nothing is recomputed here.

`models/digests/` places these lines first in both digests and packs them within Block Kit limits;
with WEEKLY_DIGEST_ENABLED=false it leaves them out, as it does the conversion rows.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from itertools import pairwise

from models.money import money
from models.slack_format import escape_mrkdwn

WINNING, LOSING, INCONCLUSIVE, SRM = "winning", "losing", "inconclusive", "srm"
CONVERSION, REVENUE = "conversion", "revenue"
# An inconclusive comparison needing more days than this (or any, at no traffic) cannot decide.
MAX_DAYS_TO_DECIDE = 90
# Revenue risk is told per this many journeys.
RISK_JOURNEYS = 1000
# The email lists at most this many experiment lines (Gmail clips an HTML body past ~102 KB).
MAX_EMAIL_LINES = 100
MAX_SLUG_CHARS = 80
MAX_CHART_SLUGS = 10
MAX_CHART_ROWS = 8
_COLORS = {WINNING: "#16a34a", LOSING: "#dc2626"}
_NEUTRAL = "#9ca3af"
_TRACK = "#eef2f7"
_CHART_PX = 240
_ICONS = {WINNING: ":large_green_circle:", LOSING: ":red_circle:", INCONCLUSIVE: ":white_circle:"}


@dataclass(frozen=True)
class ChallengerResult:
    """One row of `experiment_results` as the digests show it."""

    variant_key: str
    metric: str
    currency: str | None
    journeys: int
    relative_lift: float | None
    sequential_ci_low: float | None
    sequential_ci_high: float | None
    decision: str
    chance_to_win: float | None = None
    risk_challenger: float | None = None
    control_mean: float | None = None
    days_needed: int | None = None

    @property
    def metric_label(self) -> str:
        return self.metric + (f" {self.currency}" if self.currency else "")


@dataclass(frozen=True)
class SlugExperiment:
    """A slug's health and its challengers' results."""

    slug: str
    status: str
    control_variant_key: str | None
    control_journeys: int
    srm_p_value: float | None
    as_of_date: date | None
    challengers: tuple[ChallengerResult, ...] = ()

    @property
    def decided(self) -> tuple[ChallengerResult, ...]:
        return tuple(c for c in self.challengers if c.decision in (WINNING, LOSING))

    @property
    def inconclusive(self) -> tuple[ChallengerResult, ...]:
        return tuple(c for c in self.challengers if c.decision == INCONCLUSIVE)

    @property
    def arm_journeys(self) -> tuple[tuple[str, int], ...]:
        """(variant, journeys) of control and challengers, from the conversion rows."""
        arms = [(self.control_variant_key or "?", self.control_journeys)]
        arms += [(c.variant_key, c.journeys) for c in self.challengers if c.metric == CONVERSION]
        return tuple(arms)


def _slug(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_SLUG_CHARS else text[: MAX_SLUG_CHARS - 1] + "…"


def pct(value: float) -> str:
    """`+15.2%` / `-3.0%`: a relative lift, signed, one decimal."""
    return f"{value:+.1%}"


def probability(value: float) -> str:
    """`94.6%`; `>99.9%` / `<0.1%` rather than a rounded 100% or 0% that would claim certainty."""
    if value >= 0.9995:
        return ">99.9%"
    if value < 0.0005:
        return "<0.1%"
    return f"{value:.1%}"


def decision_phrase(c: ChallengerResult) -> str:
    """`b +15.2% conversion (+4.1% … +27.0%)`: the lift and its always-valid interval."""
    return (f"{c.variant_key} {pct(c.relative_lift or 0.0)} {c.metric_label} "
            f"({pct(c.sequential_ci_low or 0.0)} … {pct(c.sequential_ci_high or 0.0)})")


def days_phrase(c: ChallengerResult) -> str:
    """`needs ~12 more days` (`~1 more day`), or `cannot decide at this traffic` past 90 days or
    with no traffic."""
    if c.days_needed is None or c.days_needed > MAX_DAYS_TO_DECIDE:
        return "cannot decide at this traffic"
    return f"needs ~{c.days_needed:,} more {'day' if c.days_needed == 1 else 'days'}"


def revenue_risk(c: ChallengerResult) -> Decimal | None:
    """The expected revenue lost by shipping the challenger if it is worse, per 1,000 journeys, in
    the row's currency: risk_challenger × control mean × 1000 (revenue rows only)."""
    if c.metric != REVENUE or c.currency is None or c.risk_challenger is None or c.control_mean is None:
        return None
    return Decimal(repr(c.risk_challenger)) * Decimal(repr(c.control_mean)) * RISK_JOURNEYS


def comparison_phrase(c: ChallengerResult, revenue_rows: Sequence[ChallengerResult] | None = None) -> str:
    """decision_phrase, then `· chance to win 94.6%`, `· needs ~12 more days` when inconclusive and
    `· risk if shipped USD 1.48 / EUR 2.10 per 1,000 journeys` for the revenue rows told with it
    (the row itself when it is one)."""
    parts = [decision_phrase(c)]
    if c.chance_to_win is not None:
        parts.append(f"chance to win {probability(c.chance_to_win)}")
    if c.decision == INCONCLUSIVE:
        parts.append(days_phrase(c))
    risks = [(r.currency, revenue_risk(r)) for r in ((c,) if revenue_rows is None else revenue_rows)]
    told = " / ".join(f"{currency} {money(risk)}" for currency, risk in risks if risk is not None)
    if told:
        parts.append(f"risk if shipped {told} per {RISK_JOURNEYS:,} journeys")
    return " · ".join(parts)


def srm_phrase(e: SlugExperiment) -> str:
    arms = " · ".join(f"{key}={n:,}" for key, n in e.arm_journeys)
    p = "-" if e.srm_p_value is None else f"{e.srm_p_value:.2g}"
    return f"sample ratio mismatch: arms {arms} (p={p}); its results are not to be trusted"


@dataclass(frozen=True)
class _Told:
    """The slugs the digests tell, each list by slug: decided, in SRM, inconclusive."""

    decided: list[SlugExperiment]
    srm: list[SlugExperiment]
    inconclusive: list[SlugExperiment]


def ordered(experiments: Sequence[SlugExperiment]) -> _Told:
    """Decided slugs (a winning or losing challenger), slugs in SRM, and inconclusive slugs (no
    decided challenger, one inconclusive or more), each by slug."""
    by_slug = sorted(experiments, key=lambda e: e.slug)
    return _Told(
        decided=[e for e in by_slug if e.status != SRM and e.decided],
        srm=[e for e in by_slug if e.status == SRM],
        inconclusive=[e for e in by_slug if e.status != SRM and not e.decided and e.inconclusive],
    )


# Which inconclusive row leads a challenger's line, by metric.
_LEAD_ORDER = {CONVERSION: 0, REVENUE: 1}
# A digest line: the slug, the row it leads with, and the revenue rows whose risk it tells.
_Line = tuple[SlugExperiment, ChallengerResult, tuple[ChallengerResult, ...]]


def _inconclusive_lines(e: SlugExperiment) -> list[_Line]:
    """One line per challenger with an inconclusive comparison, with the revenue risk of its
    inconclusive revenue rows: led by its conversion (the rate a test is sized on) when that is
    inconclusive, else by a revenue row, else by its first inconclusive row. Order value and
    loyalty points otherwise stay in the table."""
    by_variant: dict[str, list[ChallengerResult]] = {}
    for c in e.inconclusive:
        by_variant.setdefault(c.variant_key, []).append(c)
    out = []
    for rows in by_variant.values():
        lead = min(rows, key=lambda c: _LEAD_ORDER.get(c.metric, len(_LEAD_ORDER)))  # min keeps the first of equals
        out.append((e, lead, tuple(c for c in rows if c.metric == REVENUE)))
    return out


def _told_lines(told: _Told) -> tuple[list[_Line], list[_Line]]:
    """The lines of the decided slugs (each decided comparison, then its inconclusive challengers)
    and those of the inconclusive slugs; the SRM warnings go between the two."""
    decided = [line for e in told.decided
               for line in [*((e, c, (c,)) for c in e.decided), *_inconclusive_lines(e)]]
    return decided, [line for e in told.inconclusive for line in _inconclusive_lines(e)]


def worth_telling(experiments: Sequence[SlugExperiment]) -> bool:
    """Whether the digests show an experiments block: a slug decided, inconclusive or in SRM (slugs
    with too few journeys add nothing above the conversion rows)."""
    told = ordered(experiments)
    return bool(told.decided or told.srm or told.inconclusive)


def _summary(experiments: Sequence[SlugExperiment]) -> str:
    told = ordered(experiments)
    as_of = max((e.as_of_date for e in experiments if e.as_of_date), default=None)
    text = (f"{len(told.decided)} of {len(experiments)} slugs decided, {len(told.inconclusive)} inconclusive, "
            f"{len(told.srm)} in sample ratio mismatch")
    return text + (f" · as of {as_of.isoformat()}" if as_of else "")


def slack_heading(experiments: Sequence[SlugExperiment]) -> str:
    if not experiments:
        return ":test_tube: *Experiment decisions*\n_No experiment results yet._"
    return f":test_tube: *Experiment decisions* ({escape_mrkdwn(_summary(experiments))})"


def _slack_line(line: _Line) -> str:
    e, c, revenue = line
    phrase = escape_mrkdwn(comparison_phrase(c, revenue))
    return f"• {_ICONS[c.decision]} *`{escape_mrkdwn(_slug(e.slug))}`* {c.decision}: {phrase}"


def slack_lines(experiments: Sequence[SlugExperiment]) -> list[str]:
    """One mrkdwn line per decided comparison (then one per inconclusive challenger of the same
    slug), one warning per slug in SRM, then one line per challenger of the inconclusive slugs: the
    decided and the SRM warnings lead, as section 9 says."""
    told = ordered(experiments)
    decided, inconclusive = _told_lines(told)
    lines = [_slack_line(line) for line in decided]
    lines += [f"• :warning: *`{escape_mrkdwn(_slug(e.slug))}`* {escape_mrkdwn(srm_phrase(e))}" for e in told.srm]
    lines += [_slack_line(line) for line in inconclusive]
    if experiments and not lines:
        lines.append("_No challenger is winning or losing yet._")
    return lines


def email_text_lines(experiments: Sequence[SlugExperiment]) -> list[str]:
    out = ["EXPERIMENT DECISIONS"]
    if not experiments:
        return out + ["No experiment results yet."]
    out.append(_summary(experiments))
    told = ordered(experiments)
    decided, inconclusive = _told_lines(told)
    lines = [f"  {_slug(e.slug)} {c.decision}: {comparison_phrase(c, revenue)}" for e, c, revenue in decided]
    lines += [f"  WARNING {_slug(e.slug)}: {srm_phrase(e)}" for e in told.srm]
    lines += [f"  {_slug(e.slug)} {c.decision}: {comparison_phrase(c, revenue)}" for e, c, revenue in inconclusive]
    out += _capped(lines, lambda hidden: f"  +{hidden:,} more experiment lines")
    if not lines:
        out.append("  No challenger is winning or losing yet.")
    return out


def _capped(lines: list[str], more) -> list[str]:
    """The first MAX_EMAIL_LINES lines, then `more(hidden)` when some are left out."""
    if len(lines) <= MAX_EMAIL_LINES:
        return lines
    return [*lines[:MAX_EMAIL_LINES], more(len(lines) - MAX_EMAIL_LINES)]


def email_html(experiments: Sequence[SlugExperiment]) -> str:
    """The experiments block of the email: decided lines, SRM warnings, inconclusive lines, then per
    slug an interval chart."""
    esc = html.escape
    parts = ['<h2 style="font-size:16px;margin:16px 0 8px 0;">&#x1F9EA; Experiment decisions</h2>']
    if not experiments:
        return parts[0] + "<p>No experiment results yet.</p>"
    parts.append(f'<p style="margin:0 0 8px 0;color:#6b7280;font-size:13px;">{esc(_summary(experiments))}</p>')
    told = ordered(experiments)
    decided, inconclusive = _told_lines(told)
    items = [_html_item(line) for line in decided]
    items += [
        f'<li class="srm-warning" style="color:#b45309;">&#x26A0;&#xFE0F; <code>{esc(e.slug)}</code> '
        f"{esc(srm_phrase(e))}</li>"
        for e in told.srm
    ]
    items += [_html_item(line) for line in inconclusive]
    items = _capped(items, lambda hidden: f'<li class="more">+{hidden:,} more experiment lines</li>')
    parts.append(f'<ul class="experiment-decisions" style="padding-left:20px;">{"".join(items)}</ul>'
                 if items else "<p>No challenger is winning or losing yet.</p>")
    charted = [e for e in [*told.decided, *told.srm, *sorted(experiments, key=lambda e: e.slug)]
               if any(c.sequential_ci_low is not None for c in e.challengers)]
    seen: set[str] = set()
    for e in charted:
        if e.slug in seen or len(seen) == MAX_CHART_SLUGS:
            continue
        seen.add(e.slug)
        parts.append(interval_chart_html(e))
    return "\n".join(parts)


def _html_item(line: _Line) -> str:
    e, c, revenue = line
    color = _COLORS.get(c.decision, _NEUTRAL)
    return (f'<li class="decision-{c.decision}"><code>{html.escape(e.slug)}</code> '
            f'<strong style="color:{color};">{c.decision}</strong>: {html.escape(comparison_phrase(c, revenue))}</li>')


def interval_chart_html(e: SlugExperiment) -> str:
    """Each challenger's always-valid interval of the lift as a bar on one scale with a mark at 0."""
    rows = [c for c in e.challengers if c.sequential_ci_low is not None][:MAX_CHART_ROWS]
    lo = min([0.0, *(c.sequential_ci_low for c in rows)])
    hi = max([0.0, *(c.sequential_ci_high for c in rows)])
    span = (hi - lo) or 1.0

    def px(value: float) -> int:
        return round((value - lo) / span * _CHART_PX)

    body = []
    for c in rows:
        a, b, zero = px(c.sequential_ci_low), px(c.sequential_ci_high), px(0.0)
        color = _COLORS.get(c.decision, _NEUTRAL)
        stops = sorted({0, a, b, zero, min(zero + 2, _CHART_PX + 2), _CHART_PX})
        cells = []
        for start, end in pairwise(stops):
            if start == zero:
                fill = "#111827"  # the 0 mark
            elif a <= start and end <= b:
                fill = color
            else:
                fill = _TRACK
            cells.append(f'<td width="{end - start}" height="10" bgcolor="{fill}" '
                         f'style="width:{end - start}px;height:10px;background:{fill};font-size:0;line-height:0;">&nbsp;</td>')
        label = html.escape(f"{c.variant_key} {c.metric_label}")
        values = html.escape(f"{pct(c.relative_lift or 0.0)} ({pct(c.sequential_ci_low)} … {pct(c.sequential_ci_high)})")
        body.append(
            f'<tr><td style="padding:2px 8px 2px 0;font-size:12px;white-space:nowrap;">{label}</td>'
            '<td style="padding:2px 0;"><table role="presentation" cellpadding="0" cellspacing="0" border="0"><tr>'
            f'{"".join(cells)}</tr></table></td>'
            f'<td style="padding:2px 0 2px 8px;font-size:12px;color:#374151;white-space:nowrap;">{values} {c.decision}</td></tr>'
        )
    caption = html.escape(f"Lift of each challenger of {e.slug} against {e.control_variant_key}: always-valid 95% interval")
    return (
        f'<h3 style="font-size:13px;margin:10px 0 2px 0;font-family:Menlo,Consolas,monospace;">{html.escape(e.slug)}</h3>'
        f'<table role="presentation" class="interval-chart" data-chart="lift-intervals" aria-label="{caption}" '
        f'cellpadding="0" cellspacing="0" border="0">{"".join(body)}</table>'
    )
