"""Multiple-comparison corrections of p-values (contract section 9.1, `EXPERIMENT_CORRECTION`), as
GrowthBook's back end applies them across a result's comparisons: Holm-Bonferroni (the default,
controls the family-wise error rate) or Benjamini-Hochberg (controls the false discovery rate).

Both are step procedures on the p-values sorted ascending (p_(1) <= ... <= p_(m)):
  Holm  adj_(i) = max over j <= i of min(1, (m - j + 1) p_(j))   (monotone non-decreasing)
  BH    adj_(i) = min over j >= i of min(1, m p_(j) / j)         (monotone non-decreasing)
"""

from __future__ import annotations

from collections.abc import Sequence

HOLM, BENJAMINI_HOCHBERG, NO_CORRECTION = "holm", "bh", "none"
CORRECTIONS = (HOLM, BENJAMINI_HOCHBERG, NO_CORRECTION)


def adjust_p_values(p_values: Sequence[float], method: str) -> list[float]:
    """The corrected p-values, in the order given (ties keep equal values)."""
    if method not in CORRECTIONS:
        raise ValueError(f"unknown p-value correction {method!r}: use one of {', '.join(CORRECTIONS)}")
    m = len(p_values)
    if method == NO_CORRECTION or m == 0:
        return list(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    if method == HOLM:
        running = 0.0
        for rank, i in enumerate(order):  # rank 0 is the smallest p: multiplied by m
            running = max(running, min(1.0, (m - rank) * p_values[i]))
            adjusted[i] = running
    else:
        running = 1.0
        for rank in range(m - 1, -1, -1):  # from the largest p down
            i = order[rank]
            running = min(running, m * p_values[i] / (rank + 1))
            adjusted[i] = running
    return adjusted
