"""A small source written by hand, with the marts it must produce worked out by hand.

As-of date 2026-11-20. Two slugs: `spring-offer` (variants a = control, b) and `winter` (x; y only
ever appears as a duplicate slug in one event, so it is not an exposure). The arithmetic behind each
expected value is written next to it.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal as D

from handmade_source import ts

AS_OF = "2026-11-20"
T0 = ts("2026-11-01T00:00:00Z")


def _order(id_, status, total, currency, points, updated="2026-11-01T00:00:00Z"):
    return {
        "id": id_, "order_number": f"N-{id_}", "provider_id": "p1", "status": status, "total": D(total),
        "currency": currency, "loyalty_projection_points": points, "platform": "tiktok", "channel": "web",
        "created_at": T0, "updated_at": ts(updated),
    }


def _journey(id_, order_id, status, updated="2026-11-01T00:00:00Z"):
    return {"id": id_, "order_id": order_id, "status": status, "progress_pct": 10, "referral_risk": None,
            "created_at": T0, "updated_at": ts(updated)}


def _exp(slug, variant, name=None, control=None, **extra):
    entry = {"slug": slug, "variantKey": variant}
    if name is not None:
        entry["variantName"] = name
    if control is not None:
        entry["isControl"] = control
    entry.update(extra)
    return entry


def _event(id_, journey, recorded, entries=None, ingested=None, event_type="pricing_experiment_segment", payload=None):
    if payload is None:
        payload = {"surface": "checkout", "pricingExperiments": entries}
    return {"id": id_, "journey_id": journey, "event_type": event_type, "payload": payload,
            "recorded_at": ts(recorded), "ingested_at": ts(ingested or recorded)}


def _window(id_, provider, end, gf, rf, total=10):
    return {"id": id_, "provider_id": provider, "experiment_slug": "spring-offer", "variant_key": "b",
            "window_start": ts(end) - timedelta(hours=1), "window_end": ts(end),
            "guardrail_checks": 20, "guardrail_failures": gf, "replay_total": total, "replay_failures": rf,
            "recorded_at": ts(end)}


SOURCE = {
    "fulfillment_providers": [
        {"id": "p1", "name": "Alpha", "platform": "tiktok", "created_at": T0},
        {"id": "p2", "name": "Beta", "platform": "instagram", "created_at": T0},
        {"id": "p3", "name": "Gamma", "platform": "youtube", "created_at": T0},
    ],
    "orders": [
        _order("o1", "paid", "100.00", "USD", 10),
        _order("o2", "fulfilled", "50.50", "USD", 5),
        _order("o3", "refunded", "70.00", "USD", 7),
        _order("o4", "paid", "20.00", "EUR", 2),
        _order("o5", "pending", "30.00", "GBP", 3),
    ],
    "onboarding_journeys": [
        _journey("j1", "o1", "active"),
        _journey("j2", "o2", "stalled"),
        _journey("j3", "o3", "completed"),
        _journey("j4", "o4", "active"),
        _journey("j5", "o5", "stalled"),
        _journey("j6", "o1", "completed"),  # a second journey on order o1
    ],
    "onboarding_journey_events": [
        _event(1, "j1", "2026-11-15T10:00:00Z", [_exp("spring-offer", "a", "Control", True)]),
        _event(2, "j1", "2026-11-16T10:00:00Z", [_exp("spring-offer", "b", "Spring 15% off", False)]),
        _event(3, "j2", "2026-11-16T10:00:00Z", [_exp("spring-offer", "a", "Control")]),
        _event(4, "j2", "2026-11-16T10:00:00Z", [_exp("spring-offer", "b")]),  # same instant as 3
        _event(5, "j3", "2026-11-17T23:30:00Z", [_exp("spring-offer", "a")]),  # 11-18 in Kolkata
        _event(6, "j4", "2026-11-15T12:00:00Z", [_exp("spring-offer", "b")]),
        _event(7, "j5", "2026-11-18T01:00:00Z", [_exp("spring-offer", "a")]),
        _event(8, "j6", "2026-11-18T02:00:00Z", [_exp("spring-offer", "a")]),
        _event(9, "j1", "2026-11-18T03:00:00Z", [_exp("spring-offer", "b")]),
        _event(10, "j1", "2026-11-19T00:00:00Z", [_exp("winter", "x", "Cold"), _exp("winter", "y")]),
        # late: happened on 11-10, reached the source on 11-19
        _event(11, "j4", "2026-11-10T08:00:00Z", [_exp("spring-offer", "a")], ingested="2026-11-19T12:00:00Z"),
        # after the as-of date: in every mart but the daily assignments
        _event(12, "j5", "2026-11-21T00:00:00Z", [_exp("spring-offer", "b", "Spring 20% off")]),
        _event(13, "j2", "2026-11-16T11:00:00Z", event_type="task_completed", payload={"task": "upload"}),
        _event(14, "j3", "2026-11-16T12:00:00Z", payload={"pricingExperiments": "not json"}),
    ],
    "provider_guardrail_telemetry": [
        _window(1, "p1", "2026-11-19T10:00:00Z", 1, 0),
        _window(2, "p1", "2026-11-19T11:00:00Z", 3, 0),  # latest for p1: 3 > 2 -> critical
        _window(3, "p2", "2026-11-19T11:00:00Z", 0, 5),
        _window(4, "p2", "2026-11-19T11:00:00Z", 2, 4),  # same end, larger id: latest; 2 and 4 -> warning
    ],
}

# ---- expected marts -------------------------------------------------------------------------------
# Current spring-offer variant per journey (latest recorded_at, then larger event id):
#   j1: e1 a(11-15) e2 b(11-16) e9 b(11-18) -> b      j2: e3 a / e4 b at the same instant -> e4 -> b
#   j3: a        j4: e11 a(11-10, late) e6 b(11-15) -> b      j5: e7 a(11-18) e12 b(11-21) -> b     j6: a
VARIANT_JOURNEYS = {
    # (slug, variant): (variant_name, is_control, journey_count, active, stalled, completed)
    ("spring-offer", "a"): ("Control", True, 2, 0, 0, 2),  # j3, j6 both completed
    ("spring-offer", "b"): ("Spring 20% off", False, 4, 2, 2, 0),  # j1, j4 active; j2, j5 stalled
    ("winter", "x"): ("Cold", False, 1, 1, 0, 0),  # j1
}

SLUG_SUMMARY = {
    # slug: (journey_count, variant_count, exposure_count, first_exposure_at, last_exposure_at)
    "spring-offer": (6, 2, 11, ts("2026-11-10T08:00:00Z"), ts("2026-11-21T00:00:00Z")),  # e1-e9, e11, e12
    "winter": (1, 1, 1, ts("2026-11-19T00:00:00Z"), ts("2026-11-19T00:00:00Z")),
}

DAILY = {
    # (slug, date): (exposure_count, journey_count); spring spine 11-10 .. 11-20, e12 (11-21) left out
    ("spring-offer", "2026-11-10"): (1, 1),  # e11, late
    ("spring-offer", "2026-11-11"): (0, 0),
    ("spring-offer", "2026-11-12"): (0, 0),
    ("spring-offer", "2026-11-13"): (0, 0),
    ("spring-offer", "2026-11-14"): (0, 0),
    ("spring-offer", "2026-11-15"): (2, 2),  # e1 j1, e6 j4
    ("spring-offer", "2026-11-16"): (3, 2),  # e2 j1, e3 + e4 j2
    ("spring-offer", "2026-11-17"): (1, 1),  # e5 at 23:30Z
    ("spring-offer", "2026-11-18"): (3, 3),  # e7 j5, e8 j6, e9 j1
    ("spring-offer", "2026-11-19"): (0, 0),
    ("spring-offer", "2026-11-20"): (0, 0),
    ("winter", "2026-11-19"): (1, 1),
    ("winter", "2026-11-20"): (0, 0),
}

CONVERSION = {
    # (slug, currency): (order_total, order_count, journey_count, loyalty_points, last_activity)
    # USD: j1, j6 -> o1 paid (counted once), j2 -> o2 fulfilled, j3 -> o3 refunded (not booked)
    #      100.00 + 50.50 = 150.50; 10 + 5 = 15 points; latest exposure e9 11-18T03:00
    ("spring-offer", "USD"): (D("150.50"), 2, 4, 15, ts("2026-11-18T03:00:00Z")),
    ("spring-offer", "EUR"): (D("20.00"), 1, 1, 2, ts("2026-11-15T12:00:00Z")),  # j4 -> o4 paid
    ("spring-offer", "GBP"): (D("0.00"), 0, 1, 0, ts("2026-11-21T00:00:00Z")),  # j5 -> o5 pending
    ("winter", "USD"): (D("100.00"), 1, 1, 10, ts("2026-11-19T00:00:00Z")),  # j1 -> o1
}

GUARDRAIL_STATUS = {
    # provider: (provider_name, guardrail_failures, replay_failures, severity)
    "p1": ("Alpha", 3, 0, "critical"),
    "p2": ("Beta", 2, 4, "warning"),
}

REJECTS = {(10, 2, "duplicate_slug"), (14, None, "pricing_experiments_string")}

# ---- a second batch: new and changed source rows, written after everything above (e12 reached the
# source at 2026-11-21T00:00Z, so these come later) ----------------------------------------------
CHANGES = {
    "orders": [_order("o3", "paid", "70.00", "USD", 7, updated="2026-11-21T01:00:00Z")],  # now booked
    "onboarding_journeys": [_journey("j5", "o5", "completed", updated="2026-11-21T01:00:00Z")],
    "onboarding_journey_events": [
        _event(15, "j3", "2026-11-19T05:00:00Z", [_exp("spring-offer", "b")], ingested="2026-11-21T01:00:00Z"),
    ],
    "provider_guardrail_telemetry": [_window(5, "p1", "2026-11-19T12:00:00Z", 0, 0)],
}
