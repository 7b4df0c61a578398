"""What one digest says (`DigestContent`) and how its lists are ordered.

Ranking of "top conversion slugs": by the slug's largest booked-order count in any one currency,
then latest activity, then slug. Orders and revenue are never added across currencies (contract
section 3), so no cross-currency total is ever formed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal

from models.digests.periods import DigestPeriod
from models.experiment_digest import SlugExperiment

CHART_DAYS = 10


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
