"""One challenger against control, every statistic of contract sections 9 and 9.1 from the two arms'
sums: which pairs can be compared, and all their columns computed at once for many pairs.

`compare_many` is the one place the columns are computed (numpy arrays, one element per pair: a
refresh of 10,000 slugs makes one call, not 80,000); `compare` is the same for a single pair.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from decimal import Decimal
from typing import TYPE_CHECKING, NamedTuple

from models.experiment_bayes import bayesian_effect
from models.experiment_power import journeys_needed, power
from models.experiment_stats import (
    AVERAGE_ORDER_VALUE,
    MIN_BOOKED_JOURNEYS,
    ArmSums,
    arm_moments,
    relative_lift,
    sequential_half_width,
    sequential_p_value,
    t_test,
    welch_degrees_of_freedom,
)

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np


@dataclass(frozen=True)
class Comparison:
    """Challenger B against control A: the relative lift, its fixed-horizon and always-valid
    intervals (section 9), the Bayesian view, power and journeys still needed (section 9.1)."""

    relative_lift: float
    ci_low: float
    ci_high: float
    p_value: float
    sequential_ci_low: float
    sequential_ci_high: float
    sequential_p_value: float
    chance_to_win: float
    credible_low: float
    credible_high: float
    risk_challenger: float
    risk_control: float
    power: float
    journeys_needed: int


COMPARISON_COLUMNS = tuple(f.name for f in fields(Comparison))


class ArmStatistic(NamedTuple):
    """An arm as a comparison sees it: journeys, mean and per-journey variance (None: undefined).
    A named tuple: a refresh makes one per arm and metric, 120,000 for 10,000 slugs."""

    journeys: int
    mean: float | None
    variance: float | None
    booked_journeys: int


def arm_statistic(metric: str, journeys: int, total: Decimal, total_squares: Decimal, booked: int) -> ArmStatistic:
    return ArmStatistic(journeys, *arm_moments(metric, journeys, total, total_squares, booked), booked)


def comparable(a: ArmStatistic, b: ArmStatistic, metric: str, min_journeys: int) -> bool:
    """Whether there is a comparison: both arms have `min_journeys` journeys (at least 1), the
    control mean is not 0, both variances are above 0, and for average order value both arms have
    2 or more booked journeys."""
    floor = max(min_journeys, 1)
    if a.journeys < floor or b.journeys < floor:
        return False
    if metric == AVERAGE_ORDER_VALUE and min(a.booked_journeys, b.booked_journeys) < MIN_BOOKED_JOURNEYS:
        return False
    if a.mean is None or b.mean is None or a.variance is None or b.variance is None:
        return False
    return a.mean != 0 and a.variance > 0 and b.variance > 0


def compare_many(controls: Sequence[ArmStatistic], challengers: Sequence[ArmStatistic], sequential_tuning: float,
                 target_mde: float) -> dict[str, np.ndarray]:
    """Every column of `Comparison` for comparable pairs (controls[i] against challengers[i]), as
    arrays in the pairs' order."""
    import numpy as np

    n_a = np.array([a.journeys for a in controls], dtype=np.float64)
    m_a = np.array([a.mean for a in controls], dtype=np.float64)
    v_a = np.array([a.variance for a in controls], dtype=np.float64)
    n_b = np.array([b.journeys for b in challengers], dtype=np.float64)
    m_b = np.array([b.mean for b in challengers], dtype=np.float64)
    v_b = np.array([b.variance for b in challengers], dtype=np.float64)
    lift, var = relative_lift(m_a, v_a, n_a, m_b, v_b, n_b)
    n = n_a + n_b
    seq_half = sequential_half_width(var, n, sequential_tuning)
    return {
        "relative_lift": lift,
        **t_test(lift, var, welch_degrees_of_freedom(v_a / n_a, v_b / n_b, n_a, n_b)),
        "sequential_ci_low": lift - seq_half,
        "sequential_ci_high": lift + seq_half,
        "sequential_p_value": sequential_p_value(lift, var, n, sequential_tuning),
        **bayesian_effect(lift, var),
        "power": power(var, target_mde),
        "journeys_needed": journeys_needed(var, n, target_mde),
    }


def compare(control: ArmSums, challenger: ArmSums, metric: str, sequential_tuning: float, min_journeys: int,
            target_mde: float = 0.05) -> Comparison | None:
    """The comparison of one pair, or None when there is nothing to compare (see `comparable`)."""
    a, b = (arm_statistic(metric, s.journeys, s.total, s.total_squares, s.booked_journeys)
            for s in (control, challenger))
    if not comparable(a, b, metric, min_journeys):
        return None
    columns = compare_many([a], [b], sequential_tuning, target_mde)
    return Comparison(**{name: columns[name].tolist()[0] for name in COMPARISON_COLUMNS})
