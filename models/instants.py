"""Instants: everything is UTC. Drivers sometimes hand out naive datetimes for timestamptz
(DuckDB in some paths); those are UTC by construction here."""

from __future__ import annotations

from datetime import UTC, datetime


def as_utc(instant: datetime | None) -> datetime | None:
    """An aware UTC datetime (a naive value from a driver is taken as UTC)."""
    if instant is None:
        return None
    if instant.tzinfo is None:
        return instant.replace(tzinfo=UTC)
    return instant.astimezone(UTC)


def utc_z(instant: datetime, timespec: str = "microseconds") -> str:
    """An instant as ISO 8601 in UTC with `Z`: the one formatter of the project (a naive value is UTC).

    `timespec` as in `datetime.isoformat`: "microseconds" (always six digits: the export format,
    `2026-11-26T09:15:03.123456Z`), "seconds" (for people: digests, readiness) or "auto" (digits only
    when there are microseconds: guardrail ids and payloads, which must keep hashing the same).
    """
    offset = instant.utcoffset()
    if offset:  # naive, or already UTC: no zone conversion needed (it is slow, per row)
        instant = instant.astimezone(UTC)
    return instant.replace(tzinfo=None).isoformat(timespec=timespec) + "Z"


def format_instant(value: datetime) -> str:
    """An aware datetime in the export format (`utc_z`, microseconds); a naive one is refused, since
    an export row must never guess a zone."""
    if value.tzinfo is None:
        raise ValueError(f"naive datetime {value!r}: an instant needs a time zone")
    return utc_z(value)


def parse_instant(text: str) -> datetime:
    """ISO 8601 -> aware UTC datetime. `Z` or an offset; a value without one is read as UTC (the
    export speaks UTC only), a bare date as its UTC midnight. Raises ValueError."""
    cleaned = text.strip()
    if not cleaned:
        raise ValueError("empty timestamp")
    if cleaned[-1] in "zZ":
        cleaned = cleaned[:-1] + "+00:00"
    parsed = datetime.fromisoformat(cleaned)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
