"""Which guardrail telemetry windows have been seen: the greatest `recorded_at` (the watermark) plus
the ids recorded within the lookback before it. The guardrail sensor keeps one as its cursor; every
guardrail evaluation records the one it evaluated, so the sensor never starts a run for windows an
evaluation (a hand-run CLI one, say) has already covered."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from models.instants import as_utc, utc_z

SENSOR_NAME = "guardrail_telemetry_sensor"


@dataclass(frozen=True)
class TelemetryCursor:
    """Watermark (greatest `recorded_at` seen) and the ids seen within the lookback before it."""

    watermark: datetime
    seen_ids: frozenset[int]

    def serialize(self) -> str:
        return json.dumps(
            {"watermark": utc_z(self.watermark, "auto"), "ids": id_ranges(self.seen_ids)}, separators=(",", ":")
        )

    @classmethod
    def parse(cls, text: str | None) -> TelemetryCursor | None:
        if not text:
            return None
        try:
            data = json.loads(text)
            watermark = datetime.fromisoformat(data["watermark"]).astimezone(UTC)
            ids = frozenset(i for lo, hi in data["ids"] for i in range(int(lo), int(hi) + 1))
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(
                f"{SENSOR_NAME}: unreadable cursor {text[:80]!r} ({exc}); reset it in the Dagster UI "
                "(Sensors > guardrail_telemetry_sensor > Cursor) to start from the current telemetry"
            ) from None
        return cls(watermark, ids)

    @classmethod
    def of_windows(cls, rows: Iterable[tuple[int, datetime]], lookback: timedelta) -> TelemetryCursor | None:
        """The cursor after having seen these (id, recorded_at) windows; None when there are none."""
        rows = [(int(i), as_utc(at)) for i, at in rows]
        if not rows:
            return None
        watermark = max(at for _, at in rows)
        return cls(watermark, frozenset(i for i, at in rows if at >= watermark - lookback))  # type: ignore[operator]


def merge_cursors(*cursors: TelemetryCursor | None) -> TelemetryCursor | None:
    """What several cursors have seen together: the latest watermark and every id any of them saw."""
    known = [c for c in cursors if c is not None]
    if not known:
        return None
    if len(known) == 1:
        return known[0]
    return TelemetryCursor(max(c.watermark for c in known), frozenset().union(*(c.seen_ids for c in known)))


def id_ranges(ids: frozenset[int] | set[int]) -> list[list[int]]:
    """Sorted ids as inclusive `[low, high]` runs: identity ids are mostly consecutive, so this stays small."""
    ranges: list[list[int]] = []
    for i in sorted(ids):
        if ranges and i == ranges[-1][1] + 1:
            ranges[-1][1] = i
        else:
            ranges.append([i, i])
    return ranges
