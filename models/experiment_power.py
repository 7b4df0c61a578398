"""Can a comparison ever decide, and when (contract section 9.1), pure: its power against the target
minimum detectable effect (`EXPERIMENT_TARGET_MDE`), the journeys it still needs, and the days those
take at the slug's recent traffic. The standard two-sided power formula GrowthBook's mid-experiment
power uses, on the relative lift's variance V (σ = √V).
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from models.experiment_stats import ALPHA

if TYPE_CHECKING:
    import numpy as np

# journeys_needed aims at this power (z_0.8 in σ* = δ / (z_0.975 + z_0.8)).
TARGET_POWER = 0.8
# The daily rate is the mean journey count over this many UTC dates before the as-of date.
RATE_WINDOW_DAYS = 7
# Beyond any traffic, and within a bigint column, whatever a tiny target MDE asks for.
MAX_JOURNEYS_NEEDED = 2**62


def power(var, mde: float) -> np.ndarray:
    """Chance to detect a relative lift of `mde` at α = 0.05 two-sided with the journeys there are
    now: Φ(δ/σ − z) + Φ(−δ/σ − z), z = z_0.975."""
    import numpy as np
    from scipy.special import ndtr, ndtri

    z = ndtri(1 - ALPHA / 2)
    ratio = mde / np.sqrt(var)
    return ndtr(ratio - z) + ndtr(-ratio - z)


def journeys_needed(var, journeys, mde: float) -> np.ndarray:
    """More journeys (both arms together, same split) until the one-tailed approximation reaches
    80% power: N (σ/σ*)² − N with σ* = δ / (z_0.975 + z_0.8), V taken ∝ 1/N (N = n_A + n_B);
    rounded up, 0 when not positive. Integers (int64)."""
    import numpy as np
    from scipy.special import ndtri

    sigma_star = mde / (ndtri(1 - ALPHA / 2) + ndtri(TARGET_POWER))
    extra = np.ceil(journeys * (var / sigma_star**2) - journeys)
    return np.clip(extra, 0, MAX_JOURNEYS_NEEDED).astype(np.int64)


def rate_window(as_of: date) -> tuple[date, date]:
    """The UTC dates whose daily journey counts make the rate: the 7 before the as-of date
    (first, last), the as-of date itself excluded (its day is not over)."""
    return as_of - timedelta(days=RATE_WINDOW_DAYS), as_of - timedelta(days=1)


def days_needed(needed: int, pair_journeys: int, slug_journeys: int, window_journeys: int) -> int | None:
    """Days until `needed` more journeys reach the pair, rounded up: the rate is the slug's mean
    daily journeys over the rate window (`window_journeys` summed over its dates, a date without a
    row counted 0, divided by 7) times the pair's share of the slug's journeys (pair / slug).
    0 when nothing is needed; None when the rate is 0 and journeys are still needed.

    Integer arithmetic: ceil(needed / (window / 7 · pair / slug)) = ceil(needed · 7 · slug / (window · pair))."""
    if needed <= 0:
        return 0
    if window_journeys <= 0 or pair_journeys <= 0 or slug_journeys <= 0:
        return None
    return -(-(needed * RATE_WINDOW_DAYS * slug_journeys) // (window_journeys * pair_journeys))
