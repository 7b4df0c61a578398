"""What the demo source contains: experiments, category mixes, dirty payload kinds, provider profiles.

Pure data and pure helpers (no I/O). `resources/demo_source.py` turns this plan into vectorised
DuckDB SQL. Weights are integers (parts of their sum) so every pick is integer arithmetic on a
hash, the same on every machine.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

DAY_S = 86_400
HISTORY_DAYS = 30  # orders, journeys and events spread over the 30 days before `now`
EVENTS_PER_JOURNEY = 8
JOURNEY_ACTIVE_DAYS = 10  # a journey's events fall within this many days of its creation
JOURNEYS_PER_EXTRA_ORDER = 25  # one order that never started a journey per 25 journeys

# Per-mille rates of the event mix.
OTHER_EVENT_PERMILLE = 350  # task_completed, nudge_sent, ...: not exposures
DIRTY_PAYLOAD_PERMILLE = 40  # of pricing_experiment_segment events
LATE_EVENT_PERMILLE = 30  # recorded days or weeks before ingested
VARIANT_SWITCH_PERMILLE = 100  # an exposure showing another variant than the journey's usual one
TWO_SLUG_PERMILLE = 150  # exposures naming two of the journey's experiments at once
PROVIDER_MISSING_PERCENT = 3  # orders without a fulfillment provider

LATE_MIN_S = 1 * DAY_S
LATE_MAX_S = 21 * DAY_S
INGEST_DELAY_MAX_S = 90  # ordinary events reach the database within seconds

EXPOSURE_EVENT_TYPE = "pricing_experiment_segment"


@dataclass(frozen=True)
class Variant:
    key: str
    name: str
    is_control: bool = False


@dataclass(frozen=True)
class Experiment:
    slug: str
    strategy: str  # sequential | random_split | feature_flag
    feature_flag_key: str | None
    launched_days_ago: int
    weight: int  # popularity among journeys
    variants: tuple[Variant, ...]


def _v(key: str, name: str, control: bool = False) -> Variant:
    return Variant(key, name, control)


# Twenty experiments, 2-4 variants each, exactly one control. Names carry a comma, quotes, `&`
# and non-ASCII on purpose: they travel through CSV COPY, JSON, Slack and e-mail.
EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment("spring-offer", "random_split", None, 30, 20, (
        _v("a", "Spring list price", True), _v("b", "Spring 15% off"), _v("c", "Spring 25% off"))),
    Experiment("loyalty-boost", "feature_flag", "pricing.loyalty_boost", 30, 12, (
        _v("control", "Standard points", True), _v("double", "Double points"))),
    Experiment("annual-prepay-discount", "sequential", None, 28, 9, (
        _v("monthly", "Monthly billing", True), _v("annual-10", "Annual prepay 10% off"),
        _v("annual-20", "Annual prepay 20% off"))),
    Experiment("free-shipping-threshold", "random_split", None, 27, 8, (
        _v("a", "$50 threshold", True), _v("b", "$35 threshold"), _v("c", "$25 threshold"),
        _v("d", "No threshold"))),
    Experiment("bundle-builder", "random_split", "pricing.bundles", 25, 7, (
        _v("control", "Single items", True), _v("bundle-3", 'Buy 2, get "1" free'),
        _v("bundle-5", "Buy 4 & save 30%"))),
    Experiment("rentree-promo", "sequential", None, 24, 4, (
        _v("base", "Prix de base", True), _v("promo", "Rentrée 10 € off"))),
    Experiment("starter-tier-price", "feature_flag", "pricing.starter_tier", 23, 6, (
        _v("a", "$19 starter", True), _v("b", "$24 starter"), _v("c", "$29 starter"))),
    Experiment("concierge-upsell", "random_split", None, 22, 5, (
        _v("control", "No upsell", True), _v("addon", "Concierge add-on $49"))),
    Experiment("referral-credit", "feature_flag", "growth.referral_credit", 21, 5, (
        _v("a", "$10 credit", True), _v("b", "$20 credit"), _v("c", "$25 credit"))),
    Experiment("checkout-urgency", "sequential", None, 20, 4, (
        _v("control", "No timer", True), _v("timer", "15-minute timer"))),
    Experiment("creator-pack-pricing", "random_split", None, 19, 4, (
        _v("a", "Creator pack $99", True), _v("b", "Creator pack $79"), _v("c", "Creator pack $129"))),
    Experiment("trial-length", "feature_flag", "onboarding.trial_length", 18, 4, (
        _v("7d", "7-day trial", True), _v("14d", "14-day trial"), _v("30d", "30-day trial"))),
    Experiment("volume-discount", "random_split", None, 16, 3, (
        _v("flat", "Flat price", True), _v("tiered", "Tiered volume discount"))),
    Experiment("payment-plan-split", "feature_flag", "checkout.pay_in_3", 15, 3, (
        _v("full", "Pay in full", True), _v("split-3", "Pay in 3"))),
    Experiment("addon-price-anchor", "random_split", None, 14, 3, (
        _v("a", "No anchor", True), _v("b", "Anchor $99"), _v("c", "Anchor $149"))),
    Experiment("vip-early-access", "sequential", None, 12, 2, (
        _v("control", "Regular access", True), _v("vip", "VIP early access $5 off"))),
    Experiment("welcome-coupon", "random_split", None, 11, 3, (
        _v("none", "No coupon", True), _v("pct-10", "10% welcome coupon"), _v("usd-15", "$15 welcome coupon"),
        _v("free-month", "Free first month"))),
    Experiment("currency-localised-pricing", "feature_flag", "pricing.localised", 10, 2, (
        _v("list", "USD list price", True), _v("local", "Local list price"))),
    Experiment("holiday-flash-sale", "sequential", None, 8, 2, (
        _v("a", "Regular price", True), _v("flash", "Flash 30% off"))),
    Experiment("winback-offer", "random_split", None, 5, 2, (
        _v("control", "No offer", True), _v("winback-20", "Win-back 20% off"))),
)

SURFACES: tuple[tuple[str, int], ...] = (("checkout", 40), ("pdp", 25), ("success", 20), ("account", 15))

ORDER_STATUSES: tuple[tuple[str, int], ...] = (
    ("pending", 14), ("paid", 34), ("fulfilled", 32), ("refunded", 10), ("cancelled", 10))
CURRENCIES: tuple[tuple[str, int], ...] = (("USD", 55), ("EUR", 24), ("GBP", 12), ("CAD", 6), ("AUD", 3))
CHANNELS: tuple[tuple[str, int], ...] = (("web", 50), ("mobile_app", 25), ("concierge", 15), ("referral", 10))
# Journeys younger than JOURNEY_ACTIVE_DAYS are mostly active, older ones mostly settled.
JOURNEY_STATUSES_NEW: tuple[tuple[str, int], ...] = (("active", 70), ("stalled", 10), ("completed", 20))
JOURNEY_STATUSES_SETTLED: tuple[tuple[str, int], ...] = (("active", 15), ("stalled", 35), ("completed", 50))
REFERRAL_RISKS: tuple[tuple[str | None, int], ...] = (("low", 40), ("medium", 20), ("high", 10), (None, 30))
PLATFORMS: tuple[tuple[str | None, int], ...] = (
    ("instagram", 30), ("tiktok", 25), ("youtube", 20), ("twitch", 8), ("facebook", 8), ("x", 5), (None, 4))

# Other event types (not exposures) and the share of the non-exposure events each takes.
# `checkout_viewed` carries a pricingExperiments list too: it must still not count as an exposure.
OTHER_EVENT_TYPES: tuple[tuple[str, int], ...] = (
    ("task_completed", 40), ("nudge_sent", 25), ("progress_updated", 15), ("referral_submitted", 8),
    ("journey_started", 7), ("checkout_viewed", 5))
DECOY_EVENT_TYPE = "checkout_viewed"
OTHER_PAYLOAD_PICKS = 6  # distinct payloads per other event type


def _other_payloads(event_type: str) -> tuple[Any, ...]:
    if event_type == "task_completed":
        tasks = ("connect_instagram", "upload_brand_kit", "verify_payout", "book_kickoff_call",
                 "approve_content_plan", "invite_teammate")
        return tuple({"task": t, "durationSeconds": 30 + 47 * i} for i, t in enumerate(tasks))
    if event_type == "nudge_sent":
        return tuple({"channel": c, "template": t} for c, t in (
            ("email", "stalled-48h"), ("sms", "stalled-48h"), ("in_app", "finish-setup"),
            ("email", "payout-reminder"), ("email", "kickoff-reminder"), ("in_app", "referral-ask")))
    if event_type == "progress_updated":
        return tuple({"progressPct": p, "previousPct": max(0, p - 20)} for p in (10, 25, 40, 60, 80, 100))
    if event_type == "referral_submitted":
        return tuple({"referralCode": c, "risk": r} for c, r in (
            ("FRIEND-7K2Q", "low"), ("FRIEND-Q9ZD", "medium"), ("PARTNER-11", "high"),
            ("FRIEND-3MXA", None), ("CREATOR-42", "low"), ("FRIEND-P0P0", "medium")))
    if event_type == "journey_started":
        return tuple({"source": s} for s in (
            "checkout_success", "account_page", "concierge_call", "email_link", "mobile_app", "admin_import"))
    raise ValueError(f"no payloads for event type {event_type!r}")


def other_event_payloads() -> list[tuple[int, int, str, str]]:
    """(type_no, pick_no, event_type, payload JSON) for every non-exposure type except the decoy,
    whose payload depends on the experiment (see `decoy_payload`)."""
    rows = []
    for type_no, (event_type, _) in enumerate(OTHER_EVENT_TYPES):
        if event_type == DECOY_EVENT_TYPE:
            continue
        for pick_no, payload in enumerate(_other_payloads(event_type)):
            rows.append((type_no, pick_no, event_type, _dumps(payload)))
    return rows


# Providers: 50 names (with `&`, `<`, `>` and non-ASCII: they end up in Slack mrkdwn and HTML mail).
_PROVIDER_FIRST = ("Northwind", "Lumen", "Bright & Bold", "Café Crème", "Pixel", "Atlas", "Juniper",
                   "Nova", "Harbor", "Velvet")
_PROVIDER_SECOND = ("Creators", "Studio", "Media <Labs>", "Collective", "Growth Co.")
PROVIDER_NAMES: tuple[str, ...] = tuple(f"{a} {b}" for b in _PROVIDER_SECOND for a in _PROVIDER_FIRST)
PROVIDER_COUNT = len(PROVIDER_NAMES)

# Guardrail telemetry: hourly windows over the last three days. Providers are ranked by a seeded
# hash; the rank decides the profile of their windows (and so their latest window's severity).
TELEMETRY_WINDOW_S = 3_600
TELEMETRY_WINDOWS = 72
TELEMETRY_GAP_PERCENT = 8  # hours a provider did not report (never its latest window)


@dataclass(frozen=True)
class ProviderProfile:
    """Latest-window figures of a provider whose rank selects this profile (None: seeded noise)."""

    name: str
    severity: str  # of the latest window: ok | warning | critical
    guardrail_failures: int | None = None
    replay_failures: int | None = None
    replay_total: int | None = None


# Rank -> profile. Thresholds (contract): critical when guardrail_failures > 2 or replay_failures > 4.
PROVIDER_PROFILES: tuple[ProviderProfile, ...] = (
    ProviderProfile("critical_guardrail", "critical", 3, 1, 6),  # just over the guardrail threshold
    ProviderProfile("critical_replay", "critical", 0, 5, 10),  # just over the replay threshold
    ProviderProfile("critical_both", "critical", 6, 8, 12),
    ProviderProfile("warning_guardrail", "warning", 1, 0, 4),
    ProviderProfile("warning_replay", "warning", 0, 3, 9),
    ProviderProfile("warning_at_thresholds", "warning", 2, 4, 8),  # exactly at both thresholds: not critical
    # Two rows for the latest window_end: the smaller id is clean, the greater id (the latest) warns.
    ProviderProfile("warning_resent_window", "warning", 1, 2, 7),
    # Critical for the three windows before the latest, which is clean: an auto-resume candidate.
    ProviderProfile("recovered", "ok", 0, 0, 5),
)
PROVIDERS_WITHOUT_TELEMETRY = 5  # the last ranks: no telemetry at all
PROVIDERS_WITHOUT_EXPERIMENT = 3  # the ranks before them: telemetry with null slug and variant


def provider_profile_names() -> list[str | None]:
    """The profile name of each rank 0..PROVIDER_COUNT-1 (None: ordinary clean provider)."""
    names: list[str | None] = [p.name for p in PROVIDER_PROFILES]
    names += [None] * (PROVIDER_COUNT - len(names) - PROVIDERS_WITHOUT_EXPERIMENT - PROVIDERS_WITHOUT_TELEMETRY)
    names += ["no_experiment"] * PROVIDERS_WITHOUT_EXPERIMENT + ["silent"] * PROVIDERS_WITHOUT_TELEMETRY
    return names


# Experiment entries and payloads ---------------------------------------------------------------


def _dumps(value: Any) -> str:
    # ensure_ascii=False keeps "Rentrée 10 € off" readable in the source, as the app writes it.
    return json.dumps(value, ensure_ascii=False)


def experiment_entry(experiment: Experiment, variant: Variant) -> dict[str, Any]:
    """A clean `pricingExperiments` entry, keys in the app's order (contract section 2)."""
    return {
        "slug": experiment.slug,
        "variantKey": variant.key,
        "variantName": variant.name,
        "isControl": variant.is_control,
        "assignmentStrategy": experiment.strategy,
        "featureFlagKey": experiment.feature_flag_key,
    }


def all_variants() -> list[tuple[int, int, Experiment, Variant]]:
    """(slug_no, variant_no, experiment, variant) in a fixed order; the list index is the global
    variant number the generator uses."""
    return [(s, v, e, var) for s, e in enumerate(EXPERIMENTS) for v, var in enumerate(e.variants)]


def entry_json(experiment: Experiment, variant: Variant) -> str:
    return _dumps(experiment_entry(experiment, variant))


def decoy_payload(experiment: Experiment, variant: Variant) -> str:
    """Payload of a `checkout_viewed` event: looks like an exposure, is not one (other event type)."""
    return _dumps({"surface": "pdp", "pricingExperiments": [experiment_entry(experiment, variant)]})


def _without(entry: dict[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in entry.items() if k != key}


def _payload(experiments: Any) -> dict[str, Any]:
    return {"surface": "checkout", "pricingExperiments": experiments}


# Every dirty shape of contract section 2. Each gets the event's clean entry `e` and a clean entry
# `o` of another variant of the same experiment. The comment says what a correct parser keeps.
DIRTY_PAYLOAD_KINDS: tuple[tuple[str, Callable[[dict, dict], Any]], ...] = (
    ("experiments_missing", lambda e, o: {"surface": "checkout"}),  # no exposure
    ("experiments_null", lambda e, o: _payload(None)),  # no exposure
    ("experiments_empty_list", lambda e, o: _payload([])),  # no exposure
    ("experiments_object", lambda e, o: _payload(e)),  # not a list: reject
    ("experiments_plain_string", lambda e, o: _payload(e["slug"])),  # reject
    ("experiments_json_string", lambda e, o: _payload(json.dumps([e]))),  # a JSON-encoded list: one exposure
    ("experiments_number", lambda e, o: _payload(3)),  # reject
    ("entry_null", lambda e, o: _payload([None, e])),  # reject the null, keep e
    ("entry_string", lambda e, o: _payload([e["slug"]])),  # reject
    ("entry_list", lambda e, o: _payload([[e["slug"], e["variantKey"]]])),  # reject
    ("slug_missing", lambda e, o: _payload([_without(e, "slug")])),  # reject
    ("slug_empty", lambda e, o: _payload([{**e, "slug": ""}])),  # reject
    ("slug_not_string", lambda e, o: _payload([{**e, "slug": 42}])),  # reject
    ("variant_key_missing", lambda e, o: _payload([_without(e, "variantKey")])),  # reject
    ("variant_key_empty", lambda e, o: _payload([{**e, "variantKey": ""}])),  # reject
    ("variant_key_not_string", lambda e, o: _payload([{**e, "variantKey": 2}])),  # reject
    ("duplicate_slug", lambda e, o: _payload([e, o])),  # keep e (the first), o is a duplicate
    ("duplicate_slug_first_invalid", lambda e, o: _payload([{**o, "variantKey": ""}, e])),  # keep e
    ("unknown_keys", lambda e, o: {  # keep e, ignore the extra keys
        "surface": "checkout", "clientVersion": "web-4.18.2",
        "pricingExperiments": [{**e, "experimentId": 9913, "meta": {"source": "edge"}}]}),
    ("surface_not_string", lambda e, o: {"surface": {"name": "checkout"}, "pricingExperiments": [e]}),
    ("surface_number", lambda e, o: {"surface": 7, "pricingExperiments": [e]}),
    ("optional_fields_not_string", lambda e, o: _payload([{  # keep with null optionals, not control
        **e, "variantName": 15, "assignmentStrategy": None, "featureFlagKey": False, "isControl": "true"}])),
    ("optional_fields_missing", lambda e, o: _payload([{"slug": e["slug"], "variantKey": e["variantKey"]}])),
)


def dirty_payloads() -> list[tuple[int, int, str]]:
    """(kind_no, global variant number, payload JSON) for every dirty kind and variant."""
    variants = all_variants()
    rows = []
    for kind_no, (_, build) in enumerate(DIRTY_PAYLOAD_KINDS):
        for g, (_, v, experiment, variant) in enumerate(variants):
            other = experiment.variants[(v + 1) % len(experiment.variants)]
            payload = build(experiment_entry(experiment, variant), experiment_entry(experiment, other))
            rows.append((kind_no, g, _dumps(payload)))
    return rows


@dataclass(frozen=True)
class PayloadCatalogue:
    """Every distinct payload text the generator can emit, in blocks; an event's payload is
    `texts[block offset + its number within the block]`. Numbering (NV variants, NS surfaces,
    P picks): other `type * P + pick`; decoy `g`; dirty `kind * NV + g`; one experiment
    `g * NS + surface`; two experiments `(g1 * NV + g2) * NS + surface`."""

    texts: tuple[str, ...]
    other: int
    decoy: int
    dirty: int
    single: int
    double: int


def payload_catalogue() -> PayloadCatalogue:
    variants = all_variants()
    entries = [entry_json(e, v) for _, _, e, v in variants]
    texts: list[str] = []
    offsets = {}
    offsets["other"] = len(texts)
    other = {(t, p): payload for t, p, _, payload in other_event_payloads()}
    texts += [other.get((t, p), "{}") for t in range(len(OTHER_EVENT_TYPES)) for p in range(OTHER_PAYLOAD_PICKS)]
    offsets["decoy"] = len(texts)
    texts += [decoy_payload(e, v) for _, _, e, v in variants]
    offsets["dirty"] = len(texts)
    texts += [payload for _, _, payload in dirty_payloads()]
    # Clean payloads are assembled from the entries' JSON so they read as the app writes them.
    surfaces = [_dumps(s) for s, _ in SURFACES]
    offsets["single"] = len(texts)
    texts += [f'{{"surface": {s}, "pricingExperiments": [{e}]}}' for e in entries for s in surfaces]
    offsets["double"] = len(texts)
    texts += [f'{{"surface": {s}, "pricingExperiments": [{e1}, {e2}]}}'
              for e1 in entries for e2 in entries for s in surfaces]
    return PayloadCatalogue(tuple(texts), **offsets)


def weighted_buckets(weights: list[int] | tuple[int, ...]) -> list[int]:
    """Choice indexes repeated by weight: `buckets[h % len(buckets)]` is a weighted pick."""
    return [i for i, w in enumerate(weights) for _ in range(w)]


# Sizes -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DemoSizes:
    events: int
    journeys: int
    orders: int
    providers: int = PROVIDER_COUNT


def demo_sizes(events: int) -> DemoSizes:
    """Journeys ~ events/8, one order per journey plus a few orders that never started one."""
    if events < 1:
        raise ValueError(f"events must be at least 1, got {events}")
    journeys = math.ceil(events / EVENTS_PER_JOURNEY)
    orders = journeys + math.ceil(journeys / JOURNEYS_PER_EXTRA_ORDER)
    return DemoSizes(events=events, journeys=journeys, orders=orders)


def slug_buckets() -> list[int]:
    """Slug numbers repeated by popularity, earliest launch first: the first
    `launched_bucket_counts()[d]` entries are the experiments already running d days before now."""
    order = sorted(range(len(EXPERIMENTS)), key=lambda s: (-EXPERIMENTS[s].launched_days_ago, s))
    return [s for s in order for _ in range(EXPERIMENTS[s].weight)]


def launched_bucket_counts() -> list[int]:
    """For a journey created d whole days before now (d = 0..HISTORY_DAYS): how many leading entries
    of `slug_buckets()` belong to experiments launched before it, so its experiments existed when it
    started. Never fewer than the first experiment's entries."""
    first = max(EXPERIMENTS, key=lambda e: e.launched_days_ago)
    return [max(first.weight, sum(e.weight for e in EXPERIMENTS if e.launched_days_ago >= d + 1))
            for d in range(HISTORY_DAYS + 1)]
