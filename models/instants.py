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
