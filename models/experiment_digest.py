"""What the digests say about experiments (contract sections 6 and 9), pure: the decided slugs
(a challenger winning or losing, with its lift and always-valid interval) and one warning per slug
in sample ratio mismatch, for Slack (mrkdwn lines) and the email (text lines, HTML with a small
interval chart per slug built from table cells, which every mail client draws).

`models/digests/` places these lines first in both digests and packs them within Block Kit limits;
with WEEKLY_DIGEST_ENABLED=false it leaves them out, as it does the conversion rows.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from itertools import pairwise

from models.slack_format import escape_mrkdwn

WINNING, LOSING, SRM = "winning", "losing", "srm"
MAX_SLUG_CHARS = 80
MAX_CHART_SLUGS = 10
MAX_CHART_ROWS = 8
_COLORS = {WINNING: "#16a34a", LOSING: "#dc2626"}
_NEUTRAL = "#9ca3af"
_TRACK = "#eef2f7"
_CHART_PX = 240


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
    def arm_journeys(self) -> tuple[tuple[str, int], ...]:
        """(variant, journeys) of control and challengers, from the conversion rows."""
        arms = [(self.control_variant_key or "?", self.control_journeys)]
        arms += [(c.variant_key, c.journeys) for c in self.challengers if c.metric == "conversion"]
        return tuple(arms)


def _slug(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= MAX_SLUG_CHARS else text[: MAX_SLUG_CHARS - 1] + "…"


def pct(value: float) -> str:
    """`+15.2%` / `-3.0%`: a relative lift, signed, one decimal."""
    return f"{value:+.1%}"


def decision_phrase(c: ChallengerResult) -> str:
    """`b +15.2% conversion (+4.1% … +27.0%)`: the lift and its always-valid interval."""
    return (f"{c.variant_key} {pct(c.relative_lift or 0.0)} {c.metric_label} "
            f"({pct(c.sequential_ci_low or 0.0)} … {pct(c.sequential_ci_high or 0.0)})")


def srm_phrase(e: SlugExperiment) -> str:
    arms = " · ".join(f"{key}={n:,}" for key, n in e.arm_journeys)
    p = "-" if e.srm_p_value is None else f"{e.srm_p_value:.2g}"
    return f"sample ratio mismatch: arms {arms} (p={p}); its results are not to be trusted"


def ordered(experiments: Sequence[SlugExperiment]) -> tuple[list[SlugExperiment], list[SlugExperiment]]:
    """Decided slugs (with a winning or losing challenger) by slug, and the slugs in SRM by slug."""
    decided = sorted((e for e in experiments if e.status != SRM and e.decided), key=lambda e: e.slug)
    srm = sorted((e for e in experiments if e.status == SRM), key=lambda e: e.slug)
    return decided, srm


def worth_telling(experiments: Sequence[SlugExperiment]) -> bool:
    """Whether the digests show an experiments block: a slug decided or in SRM (an all-inconclusive
    week adds nothing above the conversion rows)."""
    decided, srm = ordered(experiments)
    return bool(decided or srm)


def _summary(experiments: Sequence[SlugExperiment]) -> str:
    decided, srm = ordered(experiments)
    as_of = max((e.as_of_date for e in experiments if e.as_of_date), default=None)
    text = f"{len(decided)} of {len(experiments)} slugs decided, {len(srm)} in sample ratio mismatch"
    return text + (f" · as of {as_of.isoformat()}" if as_of else "")


def slack_heading(experiments: Sequence[SlugExperiment]) -> str:
    if not experiments:
        return ":test_tube: *Experiment decisions*\n_No experiment results yet._"
    return f":test_tube: *Experiment decisions* ({escape_mrkdwn(_summary(experiments))})"


def slack_lines(experiments: Sequence[SlugExperiment]) -> list[str]:
    """One mrkdwn line per decided comparison, then one warning per slug in SRM."""
    decided, srm = ordered(experiments)
    lines = []
    for e in decided:
        for c in e.decided:
            icon = ":large_green_circle:" if c.decision == WINNING else ":red_circle:"
            lines.append(f"• {icon} *`{escape_mrkdwn(_slug(e.slug))}`* {c.decision}: {escape_mrkdwn(decision_phrase(c))}")
    for e in srm:
        lines.append(f"• :warning: *`{escape_mrkdwn(_slug(e.slug))}`* {escape_mrkdwn(srm_phrase(e))}")
    if experiments and not lines:
        lines.append("_No challenger is winning or losing yet._")
    return lines


def email_text_lines(experiments: Sequence[SlugExperiment]) -> list[str]:
    out = ["EXPERIMENT DECISIONS"]
    if not experiments:
        return out + ["No experiment results yet."]
    out.append(_summary(experiments))
    decided, srm = ordered(experiments)
    for e in decided:
        for c in e.decided:
            out.append(f"  {_slug(e.slug)} {c.decision}: {decision_phrase(c)}")
    for e in srm:
        out.append(f"  WARNING {_slug(e.slug)}: {srm_phrase(e)}")
    if not decided and not srm:
        out.append("  No challenger is winning or losing yet.")
    return out


def email_html(experiments: Sequence[SlugExperiment]) -> str:
    """The experiments block of the email: decided lines, SRM warnings, then per slug an interval chart."""
    esc = html.escape
    parts = ['<h2 style="font-size:16px;margin:16px 0 8px 0;">&#x1F9EA; Experiment decisions</h2>']
    if not experiments:
        return parts[0] + "<p>No experiment results yet.</p>"
    parts.append(f'<p style="margin:0 0 8px 0;color:#6b7280;font-size:13px;">{esc(_summary(experiments))}</p>')
    decided, srm = ordered(experiments)
    items = [
        f'<li class="decision-{c.decision}"><code>{esc(e.slug)}</code> <strong style="color:{_COLORS[c.decision]};">'
        f"{c.decision}</strong>: {esc(decision_phrase(c))}</li>"
        for e in decided for c in e.decided
    ]
    items += [
        f'<li class="srm-warning" style="color:#b45309;">&#x26A0;&#xFE0F; <code>{esc(e.slug)}</code> '
        f"{esc(srm_phrase(e))}</li>"
        for e in srm
    ]
    parts.append(f'<ul class="experiment-decisions" style="padding-left:20px;">{"".join(items)}</ul>'
                 if items else "<p>No challenger is winning or losing yet.</p>")
    charted = [e for e in [*decided, *srm, *sorted(experiments, key=lambda e: e.slug)]
               if any(c.sequential_ci_low is not None for c in e.challengers)]
    seen: set[str] = set()
    for e in charted:
        if e.slug in seen or len(seen) == MAX_CHART_SLUGS:
            continue
        seen.add(e.slug)
        parts.append(interval_chart_html(e))
    return "\n".join(parts)


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
