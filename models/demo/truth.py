"""The demo experiments whose truth is known (contract section 9): a clear winner, a clear loser, a
sample ratio mismatch and a neutral one, so `pricing-ops demo` shows every decision. Pure data;
`resources/demo_source.py` applies it in its SQL. Every other experiment has no effect by
construction (outcomes are independent of the variant).
"""

from __future__ import annotations

from dataclasses import dataclass

from models.demo.plan import EXPERIMENTS


@dataclass(frozen=True)
class KnownEffect:
    """Orders of journeys whose usual variant of `slug` is `variant_key` are moved: `to_booked`
    re-books that share (per cent) of the unbooked ones (a winner); `to_refunded` refunds that share
    of the booked ones (a loser)."""

    slug: str
    variant_key: str
    to_booked_percent: int = 0
    to_refunded_percent: int = 0


WINNER = KnownEffect("spring-offer", "b", to_booked_percent=40)  # ~66% booked -> ~80%: +20% conversion
LOSER = KnownEffect("loyalty-boost", "double", to_refunded_percent=35)  # ~66% -> ~43%: -35% conversion
KNOWN_EFFECTS: tuple[KnownEffect, ...] = (WINNER, LOSER)
# Assigned 40/30/30 where the allocation (none in the seed) says equal: a sample ratio mismatch.
SRM_SLUG = "annual-prepay-discount"
SRM_VARIANT_WEIGHTS: tuple[int, ...] = (4, 3, 3)
NEUTRAL_SLUG = "free-shipping-threshold"  # no effect, fair split: inconclusive


def slug_number(slug: str) -> int:
    return next(i for i, e in enumerate(EXPERIMENTS) if e.slug == slug)


def variant_number(slug: str, variant_key: str) -> int:
    return next(i for i, v in enumerate(EXPERIMENTS[slug_number(slug)].variants) if v.key == variant_key)
