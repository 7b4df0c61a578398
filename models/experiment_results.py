"""Statuses and decisions of contract sections 9 and 9.1, pure: from the per-arm sums of
`experiment_variant_metrics`, the controls of `experiment_variant_journeys`, the allocation seed,
the multiple-exposure counts and the slugs' recent daily journeys to the rows of `experiment_health`
and `experiment_results` (the comparisons themselves: models/experiment_comparison.py).

Every slug is evaluated from the small metrics mart (a handful of rows per arm): cheap, so no
incremental state is kept here; resources/experiment_tables.py rewrites only the slugs that differ.
"""

from __future__ import annotations

import gc
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any, NamedTuple

from models.experiment_comparison import (
    COMPARISON_COLUMNS,
    ArmStatistic,
    arm_statistic,
    comparable,
    compare_many,
)
from models.experiment_digest import probability
from models.experiment_power import days_needed
from models.experiment_stats import AVERAGE_ORDER_VALUE, CONVERSION, REVENUE, srm_p_value
from models.p_value_corrections import CORRECTIONS, HOLM, adjust_p_values

# Slug statuses and comparison decisions, as the contract names them.
OK, SRM, NO_CONTROL, MULTIPLE_CONTROLS, NOT_ENOUGH_DATA = "ok", "srm", "no_control", "multiple_controls", "not_enough_data"
WINNING, LOSING, INCONCLUSIVE = "winning", "losing", "inconclusive"
# The SRM test needs at least this many journeys per arm on average (gbstats' rule of thumb).
SRM_MIN_JOURNEYS_PER_ARM = 8


@dataclass(frozen=True)
class ExperimentSettings:
    srm_p_threshold: float = 0.001
    sequential_tuning: float = 5000
    min_journeys: int = 100
    correction: str = HOLM  # EXPERIMENT_CORRECTION: holm, bh or none
    target_mde: float = 0.05  # EXPERIMENT_TARGET_MDE: the relative lift power and journeys_needed aim at

    def __post_init__(self) -> None:
        if self.correction not in CORRECTIONS:
            raise ValueError(f"correction must be one of {', '.join(CORRECTIONS)}, got {self.correction!r}")
        if not self.target_mde > 0:
            raise ValueError(f"target_mde must be above 0, got {self.target_mde}")


@dataclass(frozen=True)
class MetricRow:
    """One row of `experiment_variant_metrics`."""

    slug: str
    variant_key: str
    metric: str
    currency: str | None
    journeys: int
    total: Decimal
    total_squares: Decimal
    booked_journeys: int

    def statistic(self, metric: str) -> ArmStatistic:
        """The row's arm as a comparison of `metric` sees it (revenue rows also serve order value)."""
        return arm_statistic(metric, self.journeys, self.total, self.total_squares, self.booked_journeys)


@dataclass(frozen=True)
class HealthRow:
    slug: str
    control_variant_key: str | None
    status: str
    arms: int
    journeys: int
    multiple_exposure_journeys: int
    srm_p_value: float | None
    as_of_date: date
    arm_journeys: tuple[tuple[str, int], ...] = ()  # (variant_key, journeys) per arm: for messages, not a column

    def to_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in HEALTH_COLUMNS}


class ResultRow(NamedTuple):
    """One row of `experiment_results`. A named tuple: a refresh of 10,000 slugs makes 80,000 of them
    (built positionally by `_results`, whose field order this is)."""

    slug: str
    variant_key: str
    metric: str
    currency: str | None
    control_variant_key: str
    control_journeys: int
    control_mean: float | None
    journeys: int
    mean: float | None
    relative_lift: float | None
    ci_low: float | None
    ci_high: float | None
    p_value: float | None
    sequential_ci_low: float | None
    sequential_ci_high: float | None
    sequential_p_value: float | None
    decision: str
    as_of_date: date
    # Section 9.1 (after as_of_date: a table made before them gets them added at its end).
    chance_to_win: float | None = None
    credible_low: float | None = None
    credible_high: float | None = None
    risk_challenger: float | None = None
    risk_control: float | None = None
    adjusted_p_value: float | None = None
    power: float | None = None
    journeys_needed: int | None = None
    days_needed: int | None = None

    def to_row(self) -> dict[str, Any]:
        return self._asdict()


HEALTH_COLUMNS = tuple(name for name in HealthRow.__dataclass_fields__ if name != "arm_journeys")
RESULT_COLUMNS = ResultRow._fields
# How _results lays a row out: the pair's keys and arms, section 9's comparison columns, decision and
# date, the Bayesian columns, the corrected p-value, power and journeys needed, days needed.
_KEYS = ("slug", "variant_key", "metric", "currency", "control_variant_key", "control_journeys", "control_mean",
         "journeys", "mean")
if RESULT_COLUMNS != (*_KEYS, *COMPARISON_COLUMNS[:7], "decision", "as_of_date", *COMPARISON_COLUMNS[7:12],
                      "adjusted_p_value", *COMPARISON_COLUMNS[12:], "days_needed"):
    raise RuntimeError("ResultRow and Comparison columns are out of step: _results builds rows positionally")


def evaluate(
    metrics: Iterable[MetricRow],
    controls: Mapping[str, Iterable[str]],
    allocations: Mapping[str, Mapping[str, float]],
    multiple_exposures: Mapping[str, int],
    as_of: date,
    settings: ExperimentSettings,
    window_journeys: Mapping[str, int] | None = None,
) -> tuple[list[HealthRow], list[ResultRow]]:
    """Health per slug and one result row per challenger, metric and currency (revenue rows also
    give the slug's average_order_value rows).

    controls: slug -> variant keys flagged is_control; allocations: slug -> {variant_key: weight}
    (the seed; a slug absent splits equally); multiple_exposures: slug -> journeys left out;
    window_journeys: slug -> its daily journey counts summed over `experiment_power.rate_window`
    (absent: 0, so days_needed is null wherever journeys are still needed).
    """
    with _cycle_collector_paused():
        by_slug: dict[str, list[MetricRow]] = defaultdict(list)
        for row in metrics:
            by_slug[row.slug].append(row)
        health: list[HealthRow] = []
        pairs: list[_Pair] = []
        for slug in sorted(by_slug):
            slug_health = slug_status(slug, by_slug[slug], set(controls.get(slug, ())), allocations.get(slug),
                                      multiple_exposures.get(slug, 0), as_of, settings)
            health.append(slug_health)
            if slug_health.control_variant_key is not None:
                pairs.extend(_pairs(slug_health, by_slug[slug], settings))
        return health, _results(pairs, as_of, settings, window_journeys or {})


@contextmanager
def _cycle_collector_paused() -> Iterator[None]:
    """Python's cycle collector off while the rows are built: they are hundreds of thousands of
    small acyclic tuples, and the collector's passes over them were 40% of the step at 10,000
    slugs (bench/bench_experiment_stats.py). Reference counting still frees everything."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def slug_status(slug: str, rows: list[MetricRow], controls: set[str], weights: Mapping[str, float] | None,
                multiple: int, as_of: date, settings: ExperimentSettings) -> HealthRow:
    """One slug's health: its control, arms, journeys, SRM p-value and status."""
    arms = sorted((r.variant_key, r.journeys) for r in rows if r.metric == CONVERSION)
    counts = [n for _, n in arms]
    journeys = sum(counts)
    arm_controls = sorted(controls & {key for key, _ in arms})
    p = None
    if len(arms) >= 2 and journeys >= SRM_MIN_JOURNEYS_PER_ARM * len(arms):
        arm_weights = None if not weights else [float(weights.get(key, 0)) for key, _ in arms]
        p = srm_p_value(counts, arm_weights) if not arm_weights or sum(arm_weights) > 0 else 0.0
    if not arm_controls:
        status = NO_CONTROL
    elif len(arm_controls) > 1:
        status = MULTIPLE_CONTROLS
    elif p is None:
        status = NOT_ENOUGH_DATA
    elif p < settings.srm_p_threshold:
        status = SRM
    else:
        status = OK
    return HealthRow(
        slug=slug,
        control_variant_key=arm_controls[0] if len(arm_controls) == 1 else None,
        status=status,
        arms=len(arms),
        journeys=journeys,
        multiple_exposure_journeys=multiple,
        srm_p_value=p,
        as_of_date=as_of,
        arm_journeys=tuple(arms),
    )


class _Pair(NamedTuple):
    """A challenger's row to be: its slug's health, keys, and both arms' statistics."""

    health: HealthRow
    variant_key: str
    metric: str
    currency: str | None
    control: ArmStatistic
    challenger: ArmStatistic
    comparable: bool


def _pairs(health: HealthRow, rows: list[MetricRow], settings: ExperimentSettings) -> list[_Pair]:
    """One pair per challenger row whose metric and currency the control has; each revenue row
    also makes the average_order_value pair of its currency."""
    control_key = health.control_variant_key
    control_rows = {(r.metric, r.currency): r for r in rows if r.variant_key == control_key}
    control_stats: dict[tuple[str, str | None], ArmStatistic] = {}
    out = []
    for row in rows:
        control = control_rows.get((row.metric, row.currency))
        if row.variant_key == control_key or control is None:
            continue
        for metric in (row.metric, AVERAGE_ORDER_VALUE) if row.metric == REVENUE else (row.metric,):
            a = control_stats.get((metric, row.currency))
            if a is None:
                a = control_stats[(metric, row.currency)] = control.statistic(metric)
            b = row.statistic(metric)
            out.append(_Pair(health, row.variant_key, metric, row.currency, a, b,
                             comparable(a, b, metric, settings.min_journeys)))
    out.sort(key=lambda p: (p.variant_key, p.metric, p.currency or ""))
    return out


def _results(pairs: list[_Pair], as_of: date, settings: ExperimentSettings,
             window_journeys: Mapping[str, int]) -> list[ResultRow]:
    """The result rows of every pair: the comparable ones computed together (compare_many), the
    p-values corrected within each slug, then days_needed from the slug's recent traffic."""
    compared = [p for p in pairs if p.comparable]
    arrays = compare_many([p.control for p in compared], [p.challenger for p in compared],
                          settings.sequential_tuning, settings.target_mde)
    # Python numbers, one tuple per compared pair in COMPARISON_COLUMNS order.
    values = list(zip(*(arrays[name].tolist() for name in COMPARISON_COLUMNS), strict=True)) if compared else []
    p_index = COMPARISON_COLUMNS.index("p_value")
    by_slug: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(compared):
        by_slug[p.health.slug].append(i)
    adjusted = [0.0] * len(compared)
    for indices in by_slug.values():
        for i, q in zip(indices, adjust_p_values([values[i][p_index] for i in indices], settings.correction)):
            adjusted[i] = q
    needed_index, low_index, high_index = (COMPARISON_COLUMNS.index(name) for name in (
        "journeys_needed", "sequential_ci_low", "sequential_ci_high"))
    blank = (None,) * len(COMPARISON_COLUMNS)
    rows = []
    i = 0
    for p in pairs:
        h, a, b = p.health, p.control, p.challenger
        keys = (h.slug, p.variant_key, p.metric, p.currency, h.control_variant_key, a.journeys, a.mean,
                b.journeys, b.mean)
        if p.comparable:
            v, q = values[i], adjusted[i]
            days = days_needed(v[needed_index], a.journeys + b.journeys, h.journeys, window_journeys.get(h.slug, 0))
            decision = decide(h.status, v[low_index], v[high_index])
            i += 1
        else:
            v, q, days, decision = blank, None, None, decide(h.status, None, None)
        rows.append(ResultRow(*keys, *v[:7], decision, as_of, *v[7:12], q, *v[12:], days))
    return rows


def decide(slug_status: str, sequential_ci_low: float | None, sequential_ci_high: float | None) -> str:
    """srm when the slug is in SRM; not_enough_data without a comparison; else by the always-valid
    interval: wholly above 0 winning, wholly below losing, else inconclusive."""
    if slug_status == SRM:
        return SRM
    if sequential_ci_low is None or sequential_ci_high is None:
        return NOT_ENOUGH_DATA
    if sequential_ci_low > 0:
        return WINNING
    if sequential_ci_high < 0:
        return LOSING
    return INCONCLUSIVE


def srm_slugs(health: Iterable[HealthRow]) -> list[HealthRow]:
    return [h for h in health if h.status == SRM]


def srm_description(row: HealthRow) -> str:
    """One line naming the slug, its arms' journey counts and the p-value."""
    arms = ", ".join(f"{key}={n}" for key, n in row.arm_journeys)
    return f"{row.slug}: sample ratio mismatch (arms {arms}; p={row.srm_p_value:.3g})"


def decisions_markdown(health: Iterable[HealthRow], results: Iterable[ResultRow]) -> str:
    """The decisions as a markdown table (asset metadata): slug status, then each comparison with
    the columns a merchandiser acts on (section 9.1), read from the rows, never recomputed."""
    header = ("| slug | status | variant | metric | lift | always-valid interval | chance to win | adjusted p "
              "| power | days needed | decision |")
    lines = [header, "|---|---|---|---|---|---|---|---|---|---|---|"]
    by_slug: dict[str, list[ResultRow]] = defaultdict(list)
    for r in results:
        by_slug[r.slug].append(r)
    for h in health:
        rows = by_slug.get(h.slug) or []
        if not rows:
            lines.append(f"| {_md(h.slug)} | {h.status} | | | | | | | | | |")
        for r in rows:
            metric = r.metric + (f" {r.currency}" if r.currency else "")
            lift = "" if r.relative_lift is None else f"{r.relative_lift:+.1%}"
            interval = "" if r.sequential_ci_low is None else f"{r.sequential_ci_low:+.1%} … {r.sequential_ci_high:+.1%}"
            chance = "" if r.chance_to_win is None else probability(r.chance_to_win)
            adjusted = "" if r.adjusted_p_value is None else f"{r.adjusted_p_value:.3g}"
            power = "" if r.power is None else f"{r.power:.0%}"
            days = "" if r.days_needed is None else f"{r.days_needed:,}"
            lines.append(f"| {_md(h.slug)} | {h.status} | {_md(r.variant_key)} | {metric} | {lift} | {interval} "
                         f"| {chance} | {adjusted} | {power} | {days} | {r.decision} |")
    return "\n".join(lines) if len(lines) > 2 else "_no experiments_"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
