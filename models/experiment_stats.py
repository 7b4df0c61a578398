"""The formulas of GrowthBook's frequentist engine (gbstats) on per-arm sums, pure (contract section 9).

Inputs are exact sums (n, total, total_squares, booked journeys; Decimal); the statistics are double
precision (the t and chi-square distributions from scipy). Centred sums of squares are taken while
still exact (in Decimal), so a revenue metric with large totals and a small spread loses nothing to
cancellation, and a variance that is 0 is exactly 0.

The test functions take numpy arrays (one element per comparison) so that tens of thousands of
comparisons cost one call each (bench/bench_experiment_stats.py); a float works as well.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Sequence

    import numpy as np

ALPHA = 0.05
CONVERSION, REVENUE, LOYALTY_POINTS = "conversion", "revenue", "loyalty_points"
# Revenue per booked journey, a ratio metric derived from the revenue rows (section 9.1).
AVERAGE_ORDER_VALUE = "average_order_value"
# gbstats' RatioStatistic: its denominator's variance needs at least 2 booked journeys in an arm.
MIN_BOOKED_JOURNEYS = 2


@dataclass(frozen=True)
class ArmSums:
    """One arm's sums for one metric: n journeys, sum of y, sum of y^2 (exact), and how many of the
    journeys have a booked order (the denominator of `average_order_value`)."""

    journeys: int
    total: Decimal
    total_squares: Decimal
    booked_journeys: int = 0

    def statistic(self, metric: str) -> tuple[float | None, float | None]:
        """(mean, s^2) of the arm for `metric`: see `arm_moments`."""
        return arm_moments(metric, self.journeys, self.total, self.total_squares, self.booked_journeys)


def arm_moments(metric: str, n: int, total: Decimal, total_squares: Decimal,
                booked: int) -> tuple[float | None, float | None]:
    """(mean, s^2) of an arm for `metric`, s^2 being the per-journey variance (s^2/n is the variance
    of the mean), None where undefined:
    - conversion: gbstats' ProportionStatistic, m(1-m);
    - average_order_value: gbstats' RatioStatistic of revenue over booked (0/1, a
      SampleMeanStatistic) by the delta method; mean = revenue per booked journey;
    - otherwise gbstats' SampleMeanStatistic, the sample variance (n - 1)."""
    if metric == AVERAGE_ORDER_VALUE:
        return _ratio_statistic(n, booked, Decimal(total), Decimal(total_squares))
    if not n:
        return None, None
    if metric == CONVERSION:
        m = Decimal(total) / n
        return float(m), float(m * (1 - m))
    mean = float(total / n)
    if n < 2:
        return mean, None
    centred = Decimal(total_squares) - Decimal(total) * Decimal(total) / n
    return mean, max(float(centred / (n - 1)), 0.0)


def _ratio_statistic(n: int, booked: int, total: Decimal, squares: Decimal) -> tuple[float | None, float | None]:
    """Numerator y (revenue, 0 when not booked), denominator d (1 when booked): sum d = sum d^2 = B,
    sum y d = sum y = S. The delta-method variance
        var_y/d̄² - 2 cov(y, d) ȳ/d̄³ + ȳ² var_d/d̄⁴   (var and cov with n - 1)
    reduces to n² (Q B - S²) / ((n - 1) B³): exact in Decimal, 0 when every booked order is equal."""
    if not booked:
        return None, None
    mean = float(total / booked)
    if n < 2:
        return mean, None
    centred = squares * booked - total * total
    return mean, max(float(Decimal(n * n) * centred / (Decimal(n - 1) * Decimal(booked) ** 3)), 0.0)


def relative_lift(m_a, v_a, n_a, m_b, v_b, n_b):
    """The relative lift L = (m_B - m_A)/m_A and its delta-method variance
    V = s_B²/(m_A² n_B) + s_A² m_B²/(m_A⁴ n_A): what every column of a comparison starts from."""
    lift = (m_b - m_a) / m_a
    var = v_b / (m_a**2 * n_b) + v_a * m_b**2 / (m_a**4 * n_a)
    return lift, var


def welch_degrees_of_freedom(u_a, u_b, n_a, n_b):
    """Welch-Satterthwaite degrees of freedom from the arms' s^2/n."""
    return (u_a + u_b) ** 2 / (u_a**2 / (n_a - 1) + u_b**2 / (n_b - 1))


def t_test(lift, var, df) -> dict[str, np.ndarray]:
    """Two-sided p = 2 F_t(-|L|/√V, ν) (no cancellation for a small p) and the 95% interval."""
    import numpy as np
    from scipy.special import stdtr, stdtrit  # what scipy.stats.t evaluates, at a third of its import

    se = np.sqrt(var)
    half = stdtrit(df, 1 - ALPHA / 2) * se
    return {"ci_low": lift - half, "ci_high": lift + half,
            "p_value": np.minimum(1.0, 2 * stdtr(df, -np.abs(lift) / se))}


def _rho_squared(tuning: float) -> float:
    """gbstats' mixture tuning: rho^2 = (-2 ln a + ln(1 - 2 ln a)) / N*."""
    import math

    log_a = math.log(ALPHA)
    return (-2 * log_a + math.log(1 - 2 * log_a)) / tuning


def sequential_half_width(var, n, tuning: float):
    """Half-width of the always-valid (mixture sequential) interval around the lift."""
    import numpy as np

    rho2 = _rho_squared(tuning)
    spread = n * rho2 + 1
    return np.sqrt(var * n) * np.sqrt(2 * spread * np.log(np.sqrt(spread) / ALPHA) / (n * n * rho2))


def sequential_p_value(lift, var, n, tuning: float):
    """Always-valid p-value: min(1, sqrt(N rho^2 + 1) exp(-rho^2 N L^2 / V / (2 (N rho^2 + 1))))."""
    import numpy as np

    rho2 = _rho_squared(tuning)
    spread = n * rho2 + 1
    return np.minimum(1.0, np.sqrt(spread) * np.exp(-rho2 * n * lift * lift / var / (2 * spread)))


def srm_p_value(counts: Sequence[int], weights: Sequence[float] | None = None) -> float:
    """Pearson chi-square p-value of the arms' journey counts against the expected split (equal
    without weights), K-1 degrees of freedom. An arm expected to get nothing (weight 0) that got
    journeys is a mismatch beyond doubt (p 0); one that got none adds nothing."""
    from scipy.special import chdtrc  # what scipy.stats.chi2 evaluates

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
    return float(chdtrc(k - 1, chi2))
