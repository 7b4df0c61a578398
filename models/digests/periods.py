"""Digest periods: a UTC date for the Slack digest, an ISO week for the email (contract section 6)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal

DigestKind = Literal["slack", "email"]


DIGEST_KINDS: tuple[DigestKind, ...] = ("slack", "email")


_SLACK_PERIOD = re.compile(r"^\d{4}-\d{2}-\d{2}$")


_EMAIL_PERIOD = re.compile(r"^(\d{4})-W(\d{2})$")


@dataclass(frozen=True)
class DigestPeriod:
    """One digest's period: a UTC date (Slack, `2026-11-26`) or an ISO week (email, `2026-W48`)."""

    kind: DigestKind
    label: str
    first_day: date
    last_day: date  # inclusive

    @property
    def start(self) -> datetime:
        return datetime.combine(self.first_day, time(0), tzinfo=UTC)

    @property
    def end(self) -> datetime:
        """Exclusive end instant (midnight UTC after the last day)."""
        return datetime.combine(self.last_day + timedelta(days=1), time(0), tzinfo=UTC)


def parse_period(kind: DigestKind, text: str) -> DigestPeriod:
    """`2026-11-26` for the Slack digest, `2026-W48` for the email; ValueError says the format."""
    value = text.strip()
    if kind == "slack":
        try:
            if not _SLACK_PERIOD.match(value):
                raise ValueError
            day = date.fromisoformat(value)
        except ValueError:
            raise ValueError(
                f"period {text!r} is not a UTC date: the Slack digest's period is YYYY-MM-DD, e.g. 2026-11-26"
            ) from None
        return DigestPeriod("slack", day.isoformat(), day, day)
    if kind == "email":
        match = _EMAIL_PERIOD.match(value)
        try:
            if not match:
                raise ValueError
            monday = date.fromisocalendar(int(match.group(1)), int(match.group(2)), 1)
        except ValueError:
            raise ValueError(
                f"period {text!r} is not an ISO week: the email digest's period is YYYY-Www, e.g. 2026-W48"
            ) from None
        return DigestPeriod("email", value, monday, monday + timedelta(days=6))
    raise ValueError(f"digest kind {kind!r} is not one of {', '.join(DIGEST_KINDS)}")


def period_containing(kind: DigestKind, instant: datetime) -> DigestPeriod:
    """The period of `kind` that holds `instant` (taken in UTC whatever its zone)."""
    day = instant.astimezone(UTC).date()
    if kind == "slack":
        return parse_period("slack", day.isoformat())
    year, week, _ = day.isocalendar()
    return parse_period("email", f"{year:04d}-W{week:02d}")


def previous_period(period: DigestPeriod) -> DigestPeriod:
    return period_containing(period.kind, period.start - timedelta(seconds=1))
