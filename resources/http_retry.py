"""Retrying an HTTP call, for every client that talks to a server which may be briefly away: the
export webhook (`resources/sinks/webhook.py`), the app API (`resources/app_api.py`) and the
reporting API (`resources/reporting_api.py`).

A call raises `Retryable` for what is worth another attempt (a connection error, 429, 5xx), with
the server's `Retry-After` when it sent one; `retrying` waits that long (capped), or the caller's
back-off, and gives up after a number of attempts (and, optionally, before a wait that would end
past a time budget), re-raising the last `Retryable` for the caller to turn into its own error.
"""

from __future__ import annotations

import email.utils
import re
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import tenacity

_DELTA_SECONDS = re.compile(r"\d+(\.\d+)?")  # digits; a fraction is tolerated, though RFC 9110 has none


class Retryable(Exception):
    """A failed attempt worth repeating: `reason` says what happened, `retry_after` (seconds) when
    the server said when to come back."""

    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds to wait (RFC 9110: delta-seconds or an HTTP date, a past date is 0);
    None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def retrying(
    *,
    max_attempts: int,
    backoff: Callable[[int], float],
    max_retry_after: float | None = None,
    max_seconds: float | None = None,
    before_sleep: Callable[[tenacity.RetryCallState], Any] | None = None,
) -> tenacity.Retrying:
    """A tenacity `Retrying` for calls that raise `Retryable`.

    Waits the attempt's `retry_after` (at most `max_retry_after` when given), else `backoff(n)` for
    the n-th failed attempt (1-based). Stops after `max_attempts`, and with `max_seconds` also before
    a wait that would end past that budget. `before_sleep` sees each retry (to log or count it).
    """

    def wait(state: tenacity.RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, Retryable) and exc.retry_after is not None:
            return exc.retry_after if max_retry_after is None else min(exc.retry_after, max_retry_after)
        return backoff(state.attempt_number)

    stop = tenacity.stop_after_attempt(max_attempts)
    if max_seconds is not None:
        stop = stop | tenacity.stop_before_delay(max_seconds)
    return tenacity.Retrying(
        retry=tenacity.retry_if_exception_type(Retryable),
        wait=wait,
        stop=stop,
        before_sleep=before_sleep,
        reraise=True,
    )
