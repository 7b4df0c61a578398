"""Export rows of the reporting API (contract section 5 fields) mapped onto the source tables.

The API serves one row per (event, slug), in the export's order, so the rows of one event are
contiguous. Grouped by `eventId` they give back:
- one `onboarding_journey_events` row: `event_type` `pricing_experiment_segment`, payload
  `{"pricingExperiments": [{slug, variantKey, variantName, isControl, assignmentStrategy,
  featureFlagKey}, ...]}` in row order (values as served; dbt cleans them like any payload);
- one `onboarding_journeys` row per journey: status as last served, `created_at`/`updated_at` the
  earliest/latest `recordedAt` seen for it (the API has no journey timestamps);
- one `orders` row per order: number, total, currency, loyalty points as last served; the API has
  no order status, so a new order is `unknown` (not booked: revenue needs the database source).

Pure: no I/O. `ingested_at` and `loaded_at` are the extractor's to set.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

EVENT_TYPE = "pricing_experiment_segment"
UNKNOWN_ORDER_STATUS = "unknown"
# Fields of an export row that describe the exposure, in the order the payload keeps them.
ENTRY_FIELDS = ("slug", "variantKey", "variantName", "isControl", "assignmentStrategy", "featureFlagKey")
_CENT = Decimal("0.01")
_MAX_TOTAL = Decimal("1e10")  # numeric(12,2): ten digits before the point


@dataclass
class EventRow:
    id: int
    journey_id: str
    payload: str
    recorded_at: datetime


@dataclass
class JourneyRow:
    id: str
    order_id: str
    status: str
    created_at: datetime
    updated_at: datetime


@dataclass
class OrderRow:
    id: str
    order_number: str
    total: Decimal
    currency: str
    loyalty_projection_points: int
    created_at: datetime
    updated_at: datetime


@dataclass
class MappedRows:
    """Source-table rows from a run of export rows, one per key (latest served values win)."""

    events: list[EventRow] = field(default_factory=list)
    journeys: dict[str, JourneyRow] = field(default_factory=dict)
    orders: dict[str, OrderRow] = field(default_factory=dict)
    # Why rows (or their journey/order part) were left out: reason -> count.
    skipped: dict[str, int] = field(default_factory=dict)

    def skip(self, reason: str) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + 1


def parse_instant(value: Any) -> datetime | None:
    """An ISO 8601 instant with `Z` or an offset -> aware UTC datetime; anything else -> None."""
    if not isinstance(value, str) or not value:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        return None
    if parsed.tzinfo is None:  # an instant without an offset is ambiguous: not guessed
        return None
    return parsed.astimezone(UTC)


def event_id_of(row: Any) -> int | None:
    value = row.get("eventId") if isinstance(row, Mapping) else None
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def split_trailing_event(rows: Sequence[Any]) -> tuple[list[Any], list[Any]]:
    """(rows before the last event, rows of the last event): the last event may go on in the next page."""
    if not rows:
        return [], []
    last = event_id_of(rows[-1])
    cut = len(rows)
    while cut > 0 and event_id_of(rows[cut - 1]) == last:
        cut -= 1
    return list(rows[:cut]), list(rows[cut:])


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value != "" else None


def _money(value: Any) -> Decimal | None:
    """A decimal string that fits the source's numeric(12,2) exactly (no rounding, no float)."""
    if not isinstance(value, str):
        return None
    try:
        amount = Decimal(value)
    except InvalidOperation:
        return None
    if not amount.is_finite() or amount != amount.quantize(_CENT) or abs(amount) >= _MAX_TOTAL:
        return None
    return amount.quantize(_CENT)


def _points(value: Any) -> int | None:
    if value is None:
        return 0  # the source's default
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


def map_export_rows(rows: Iterable[Any]) -> MappedRows:
    """Group export rows by event into source-table rows (see the module docstring).

    A row without a usable `eventId`, `journeyId` or `recordedAt` is skipped whole; a row whose
    order or journey fields are incomplete still gives its event, and the incomplete part is skipped.
    Every skip is counted by reason.
    """
    out = MappedRows()
    current: EventRow | None = None
    entries: list[dict[str, Any]] = []

    def close_event() -> None:
        if current is not None:
            current.payload = json.dumps({"pricingExperiments": entries}, ensure_ascii=False)
            out.events.append(current)

    for row in rows:
        if not isinstance(row, Mapping):
            out.skip("row is not a JSON object")
            continue
        event_id = event_id_of(row)
        journey_id = _text(row.get("journeyId"))
        recorded_at = parse_instant(row.get("recordedAt"))
        if event_id is None or journey_id is None or recorded_at is None:
            out.skip("row without a usable eventId, journeyId or recordedAt")
            continue
        if current is None or current.id != event_id:
            close_event()
            current = EventRow(id=event_id, journey_id=journey_id, payload="", recorded_at=recorded_at)
            entries = []
        entries.append({name: row.get(name) for name in ENTRY_FIELDS})

        order_id = _text(row.get("orderId"))
        status = _text(row.get("status"))
        if order_id is None or status is None:
            out.skip("journey left out: no orderId or status")
        else:
            known = out.journeys.get(journey_id)
            out.journeys[journey_id] = JourneyRow(
                id=journey_id,
                order_id=order_id,
                status=status,
                created_at=min(recorded_at, known.created_at) if known else recorded_at,
                updated_at=max(recorded_at, known.updated_at) if known else recorded_at,
            )

        if order_id is None:
            continue
        number = _text(row.get("orderNumber"))
        total = _money(row.get("orderTotal"))
        currency = _text(row.get("orderCurrency"))
        points = _points(row.get("loyaltyProjectionPoints"))
        if number is None or total is None or currency is None or len(currency) != 3 or points is None:
            out.skip("order left out: orderNumber, orderTotal, orderCurrency or loyaltyProjectionPoints unusable")
            continue
        known_order = out.orders.get(order_id)
        out.orders[order_id] = OrderRow(
            id=order_id,
            order_number=number,
            total=total,
            currency=currency,
            loyalty_projection_points=points,
            created_at=min(recorded_at, known_order.created_at) if known_order else recorded_at,
            updated_at=max(recorded_at, known_order.updated_at) if known_order else recorded_at,
        )
    close_event()
    return out
