"""Statuses and decisions of contract section 9, pure: from the per-arm sums of
`experiment_variant_metrics`, the controls of `experiment_variant_journeys`, the allocation seed and
the multiple-exposure counts to the rows of `experiment_health` and `experiment_results`.

Every slug is evaluated from the small metrics mart (a handful of rows per arm): cheap, so no
incremental state is kept here; resources/experiment_tables.py rewrites only the slugs that differ.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from models.experiment_stats import CONVERSION, ArmSums, compare, srm_p_value

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
        row = asdict(self)
        row.pop("arm_journeys")
        return row


@dataclass(frozen=True)
class ResultRow:
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

    def to_row(self) -> dict[str, Any]:
        return asdict(self)


HEALTH_COLUMNS = tuple(name for name in HealthRow.__dataclass_fields__ if name != "arm_journeys")
RESULT_COLUMNS = tuple(ResultRow.__dataclass_fields__)


def evaluate(
    metrics: Iterable[MetricRow],
    controls: Mapping[str, Iterable[str]],
    allocations: Mapping[str, Mapping[str, float]],
    multiple_exposures: Mapping[str, int],
    as_of: date,
    settings: ExperimentSettings,
) -> tuple[list[HealthRow], list[ResultRow]]:
    """Health per slug and one result row per challenger, metric and currency.

    controls: slug -> variant keys flagged is_control; allocations: slug -> {variant_key: weight}
    (the seed; a slug absent splits equally); multiple_exposures: slug -> journeys left out.
    """
    by_slug: dict[str, list[MetricRow]] = defaultdict(list)
    for row in metrics:
        by_slug[row.slug].append(row)
    health: list[HealthRow] = []
    results: list[ResultRow] = []
    for slug in sorted(by_slug):
        slug_health = slug_status(slug, by_slug[slug], set(controls.get(slug, ())), allocations.get(slug),
                                  multiple_exposures.get(slug, 0), as_of, settings)
        health.append(slug_health)
        if slug_health.control_variant_key is not None:
            results.extend(_comparisons(slug_health, by_slug[slug], as_of, settings))
    return health, results


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


def _comparisons(health: HealthRow, rows: list[MetricRow], as_of: date,
                 settings: ExperimentSettings) -> list[ResultRow]:
    control_key = health.control_variant_key
    control_rows = {(r.metric, r.currency): r for r in rows if r.variant_key == control_key}
    out = []
    for row in sorted(rows, key=lambda r: (r.variant_key, r.metric, r.currency or "")):
        control = control_rows.get((row.metric, row.currency))
        if row.variant_key == control_key or control is None:
            continue
        a = ArmSums(control.journeys, control.total, control.total_squares)
        b = ArmSums(row.journeys, row.total, row.total_squares)
        comparison = compare(a, b, row.metric, settings.sequential_tuning, settings.min_journeys)
        values = asdict(comparison) if comparison else dict.fromkeys(
            ("relative_lift", "ci_low", "ci_high", "p_value",
             "sequential_ci_low", "sequential_ci_high", "sequential_p_value"))
        out.append(ResultRow(
            slug=row.slug, variant_key=row.variant_key, metric=row.metric, currency=row.currency,
            control_variant_key=control_key, control_journeys=a.journeys, control_mean=a.mean,
            journeys=b.journeys, mean=b.mean, **values,
            decision=decide(health.status, comparison), as_of_date=as_of,
        ))
    return out


def decide(slug_status: str, comparison: Any) -> str:
    """srm when the slug is in SRM; not_enough_data without a comparison; else by the always-valid
    interval: wholly above 0 winning, wholly below losing, else inconclusive."""
    if slug_status == SRM:
        return SRM
    if comparison is None:
        return NOT_ENOUGH_DATA
    if comparison.sequential_ci_low > 0:
        return WINNING
    if comparison.sequential_ci_high < 0:
        return LOSING
    return INCONCLUSIVE


def srm_slugs(health: Iterable[HealthRow]) -> list[HealthRow]:
    return [h for h in health if h.status == SRM]


def srm_description(row: HealthRow) -> str:
    """One line naming the slug, its arms' journey counts and the p-value."""
    arms = ", ".join(f"{key}={n}" for key, n in row.arm_journeys)
    return f"{row.slug}: sample ratio mismatch (arms {arms}; p={row.srm_p_value:.3g})"


def decisions_markdown(health: Iterable[HealthRow], results: Iterable[ResultRow]) -> str:
    """The decisions as a markdown table (asset metadata): slug status, then each comparison."""
    lines = ["| slug | status | variant | metric | lift | always-valid interval | decision |",
             "|---|---|---|---|---|---|---|"]
    by_slug: dict[str, list[ResultRow]] = defaultdict(list)
    for r in results:
        by_slug[r.slug].append(r)
    for h in health:
        rows = by_slug.get(h.slug) or []
        if not rows:
            lines.append(f"| {_md(h.slug)} | {h.status} | | | | | |")
        for r in rows:
            metric = r.metric + (f" {r.currency}" if r.currency else "")
            lift = "" if r.relative_lift is None else f"{r.relative_lift:+.1%}"
            interval = "" if r.sequential_ci_low is None else f"{r.sequential_ci_low:+.1%} … {r.sequential_ci_high:+.1%}"
            lines.append(f"| {_md(h.slug)} | {h.status} | {_md(r.variant_key)} | {metric} | {lift} | {interval} | {r.decision} |")
    return "\n".join(lines) if len(lines) > 2 else "_no experiments_"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")
