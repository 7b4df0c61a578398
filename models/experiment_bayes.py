"""GrowthBook's Bayesian engine on a relative lift, pure (contract section 9.1): gbstats 0.8.0's
`EffectBayesianABTest` with its default flat (improper) prior, whose posterior of the lift is the
data's Normal(L, V), L and V being the frequentist lift and its delta-method variance.

Arrays in, arrays out (one element per comparison); floats work too.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from models.experiment_stats import ALPHA

if TYPE_CHECKING:
    import numpy as np


def bayesian_effect(lift, var) -> dict[str, np.ndarray]:
    """chance_to_win P(lift > 0); the 95% credible interval; the expected losses
    risk_control = E[max(0, lift)] (keeping control when the challenger is better) and
    risk_challenger = E[max(0, -lift)] (shipping it when it is worse), relative like the lift.

    For X ~ N(μ, σ²): E[max(0, X)] = μ Φ(μ/σ) + σ φ(μ/σ), and E[max(0, -X)] = -μ Φ(-μ/σ) + σ φ(μ/σ)."""
    import numpy as np
    from scipy.special import ndtr, ndtri

    se = np.sqrt(var)
    z = lift / se
    density = np.exp(-0.5 * z * z) / np.sqrt(2 * np.pi)
    half = ndtri(1 - ALPHA / 2) * se
    return {
        "chance_to_win": ndtr(z),
        "credible_low": lift - half,
        "credible_high": lift + half,
        # Clipped at 0: far from 0 both terms are tiny and their difference may round below it.
        "risk_challenger": np.maximum(0.0, -lift * ndtr(-z) + se * density),
        "risk_control": np.maximum(0.0, lift * ndtr(z) + se * density),
    }
