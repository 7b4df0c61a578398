"""The formulas of GrowthBook's frequentist engine (gbstats) on per-arm sums, pure (contract section 9).

Inputs are exact sums (n, total, total_squares, Decimal); the statistics are double precision (the
t and chi-square distributions from scipy). The centred sum of squares is taken while still exact
(total_squares - total^2/n in Decimal), so a revenue metric with large totals and a small spread
loses nothing to cancellation.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal

ALPHA = 0.05
CONVERSION = "conversion"


def _t_quantile(p: float, df: float) -> float:
    """Student t quantile. scipy.special's stdtrit/stdtr/chdtrc are the functions scipy.stats.t and
    scipy.stats.chi2 evaluate; imported on first use, they cost a third of scipy.stats' import (1-3 s
    here), which only the statistics step pays, not every process that loads the definitions."""
    from scipy.special import stdtrit

    return float(stdtrit(df, p))


def _t_two_sided_p(t: float, df: float) -> float:
    """2(1 - F_t(|t|)), taken as 2 F_t(-|t|) so a small p is not lost to cancellation."""
    from scipy.special import stdtr

    return 2 * float(stdtr(df, -abs(t)))


def _chi2_survival(x: float, df: int) -> float:
    from scipy.special import chdtrc

    return float(chdtrc(df, x))


@dataclass(frozen=True)
class ArmSums:
    """One arm's sums for one metric: n journeys, sum of y and sum of y^2 (exact)."""

    journeys: int
    total: Decimal
    total_squares: Decimal

    @property
    def mean(self) -> float | None:
        return float(self.total / self.journeys) if self.journeys else None

    def variance(self, metric: str) -> float | None:
        """s^2: m(1-m) for a proportion (gbstats' ProportionStatistic), else the sample variance."""
        n = self.journeys
        if metric == CONVERSION:
            if not n:
                return None
            m = self.total / n
            return float(m * (1 - m))
        if n < 2:
            return None
        centred = Decimal(self.total_squares) - Decimal(self.total) * Decimal(self.total) / n
        return max(float(centred / (n - 1)), 0.0)


@dataclass(frozen=True)
class Comparison:
    """Challenger B against control A: relative lift with its fixed-horizon and always-valid intervals."""

    relative_lift: float
    ci_low: float
    ci_high: float
    p_value: float
    sequential_ci_low: float
    sequential_ci_high: float
    sequential_p_value: float


def compare(control: ArmSums, challenger: ArmSums, metric: str, sequential_tuning: float,
            min_journeys: int) -> Comparison | None:
    """The relative-lift test of `challenger` against `control`, or None when there is nothing to
    compare: an arm under `min_journeys` journeys, a control mean of 0 or a variance of 0."""
    n_a, n_b = control.journeys, challenger.journeys
    if n_a < max(min_journeys, 1) or n_b < max(min_journeys, 1):
        return None
    m_a, m_b = control.mean, challenger.mean
    s2_a, s2_b = control.variance(metric), challenger.variance(metric)
    if m_a is None or m_b is None or s2_a is None or s2_b is None or m_a == 0 or s2_a == 0 or s2_b == 0:
        return None
    lift = (m_b - m_a) / m_a
    var = s2_b / (m_a**2 * n_b) + s2_a * m_b**2 / (m_a**4 * n_a)
    df = welch_degrees_of_freedom(s2_a / n_a, s2_b / n_b, n_a, n_b)
    se = math.sqrt(var)
    half = _t_quantile(1 - ALPHA / 2, df) * se
    p = _t_two_sided_p(lift / se, df)
    seq_half = sequential_half_width(var, n_a + n_b, sequential_tuning)
    return Comparison(
        relative_lift=lift,
        ci_low=lift - half,
        ci_high=lift + half,
        p_value=min(1.0, p),
        sequential_ci_low=lift - seq_half,
        sequential_ci_high=lift + seq_half,
        sequential_p_value=sequential_p_value(lift, var, n_a + n_b, sequential_tuning),
    )


def welch_degrees_of_freedom(u_a: float, u_b: float, n_a: int, n_b: int) -> float:
    """Welch-Satterthwaite degrees of freedom from the arms' s^2/n."""
    return (u_a + u_b) ** 2 / (u_a**2 / (n_a - 1) + u_b**2 / (n_b - 1))


def _rho_squared(tuning: float) -> float:
    """gbstats' mixture tuning: rho^2 = (-2 ln a + ln(1 - 2 ln a)) / N*."""
    log_a = math.log(ALPHA)
    return (-2 * log_a + math.log(1 - 2 * log_a)) / tuning


def sequential_half_width(var: float, n: int, tuning: float) -> float:
    """Half-width of the always-valid (mixture sequential) interval around the lift."""
    rho2 = _rho_squared(tuning)
    spread = n * rho2 + 1
    return math.sqrt(var * n) * math.sqrt(2 * spread * math.log(math.sqrt(spread) / ALPHA) / (n * n * rho2))


def sequential_p_value(lift: float, var: float, n: int, tuning: float) -> float:
    """Always-valid p-value: min(1, sqrt(N rho^2 + 1) exp(-rho^2 N L^2 / V / (2 (N rho^2 + 1))))."""
    rho2 = _rho_squared(tuning)
    spread = n * rho2 + 1
    exponent = -rho2 * n * lift * lift / var / (2 * spread)
    return min(1.0, math.sqrt(spread) * math.exp(exponent))


def srm_p_value(counts: Sequence[int], weights: Sequence[float] | None = None) -> float:
    """Pearson chi-square p-value of the arms' journey counts against the expected split (equal
    without weights), K-1 degrees of freedom. An arm expected to get nothing (weight 0) that got
    journeys is a mismatch beyond doubt (p 0); one that got none adds nothing."""
    k = len(counts)
    total = sum(counts)
    if k < 2 or total == 0:
        raise ValueError("an SRM test needs 2 or more arms and some journeys")
    weights = list(weights) if weights is not None else [1.0] * k
    weight_sum = sum(weights)
    if weight_sum <= 0:
        raise ValueError("allocation weights must add up to more than 0")
    chi2 = 0.0
    for observed, weight in zip(counts, weights):
        expected = total * weight / weight_sum
        if expected == 0:
            if observed:
                return 0.0
            continue
        chi2 += (observed - expected) ** 2 / expected
    return _chi2_survival(chi2, k - 1)
