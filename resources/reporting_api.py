"""Client of the app's reporting API, the source where there is no database access (contract section 2).

`GET {ONBOARDING_EXPORT_API_BASE_URL}/api/v1/reporting/onboarding/experiment-events?limit=N&cursor=C`
with `X-API-Key: {CHECKOUT_API_KEY}` answers `{"events": [...], "nextCursor": "..." | null}`.
Pages are fetched one at a time, lazily, until `nextCursor` is null. Connection errors, 429 (its
`Retry-After` honoured, up to a cap) and 5xx are retried with exponential back-off, a bounded number
of times; 401/403 stop at once with a message naming the setting to fix. The key travels only in
the request header: no message, log line or exception raised here contains it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import requests
from tenacity import RetryCallState

from resources.http_retry import Retryable, parse_retry_after, retrying

EVENTS_PATH = "/api/v1/reporting/onboarding/experiment-events"

log = logging.getLogger(__name__)


class ReportingApiError(Exception):
    """The reporting API could not be read; the text says what, where and how to fix, never the key."""


class ReportingApiAuthError(ReportingApiError):
    """401/403: the key is missing, wrong or not allowed to read the feed."""


@dataclass(frozen=True)
class ApiPage:
    """One page: the cursor it was requested with (None for the first), its rows and the next cursor."""

    request_cursor: str | None
    events: list[dict[str, Any]]
    next_cursor: str | None
    number: int


class ReportingApiClient:
    """Reads the experiment-events feed page by page (see the module docstring)."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        page_size: int = 500,
        timeout_seconds: float = 30.0,
        max_attempts: int = 6,
        backoff_seconds: float = 1.0,
        max_backoff_seconds: float = 30.0,
        max_retry_after_seconds: float = 120.0,
    ):
        if not base_url:
            raise ReportingApiError("ONBOARDING_EXPORT_API_BASE_URL is not set: set it to the app's base URL")
        if not api_key:
            raise ReportingApiAuthError(
                f"CHECKOUT_API_KEY is not set: the reporting API at {base_url.rstrip('/')} needs it "
                "(set CHECKOUT_API_KEY to the app's checkout API key)"
            )
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.page_size = page_size
        self.timeout_seconds = timeout_seconds
        self.max_attempts = max_attempts
        self.backoff_seconds = backoff_seconds
        self.max_backoff_seconds = max_backoff_seconds
        self.max_retry_after_seconds = max_retry_after_seconds
        self.retries = 0  # retried requests so far, for run metadata

    def __repr__(self) -> str:  # the key stays out of any repr that ends up in a log or traceback
        return f"ReportingApiClient(base_url={self.base_url!r}, page_size={self.page_size})"

    @property
    def endpoint(self) -> str:
        return self.base_url + EVENTS_PATH

    def pages(self, cursor: str | None = None) -> Iterator[ApiPage]:
        """Pages from `cursor` (None: the beginning) until `nextCursor` is null, fetched as consumed."""
        with requests.Session() as session:
            number = 0
            seen: set[str] = {cursor} if cursor is not None else set()
            while True:
                number += 1
                body = self._get_page(session, cursor, number)
                events, next_cursor = _parse_page(body, self.endpoint, number)
                yield ApiPage(request_cursor=cursor, events=events, next_cursor=next_cursor, number=number)
                if next_cursor is None:
                    return
                if next_cursor in seen:
                    raise ReportingApiError(
                        f"reporting API {self.endpoint} page {number}: nextCursor {next_cursor!r} was already "
                        "served in this run; stopping instead of looping (the app's cursor is not advancing)"
                    )
                seen.add(next_cursor)
                cursor = next_cursor

    # One page with retries ------------------------------------------------------------------------
    def _before_sleep(self, state: RetryCallState) -> None:
        self.retries += 1
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning("%s; retry %d of %d in %.1fs", exc, state.attempt_number, self.max_attempts - 1, wait)

    def _get_page(self, session: requests.Session, cursor: str | None, number: int) -> bytes:
        params: dict[str, Any] = {"limit": self.page_size}
        if cursor is not None:
            params["cursor"] = cursor
        attempts = retrying(
            max_attempts=self.max_attempts,
            backoff=lambda n: min(self.backoff_seconds * (2 ** (n - 1)), self.max_backoff_seconds),
            max_retry_after=self.max_retry_after_seconds,
            before_sleep=self._before_sleep,
        )
        try:
            for attempt in attempts:
                with attempt:
                    return self._get_once(session, params, number)
        except Retryable as exc:
            raise ReportingApiError(
                f"{exc}, {self.max_attempts} attempts in a row; check the app's health and "
                "ONBOARDING_EXPORT_API_BASE_URL (the next run resumes from the saved cursor)"
            ) from None
        raise AssertionError("unreachable")  # Retrying either returns or raises

    def _get_once(self, session: requests.Session, params: dict[str, Any], number: int) -> bytes:
        where = f"reporting API {self.endpoint} page {number}"
        try:
            response = session.get(
                self.endpoint,
                params=params,
                headers={"X-API-Key": self._api_key, "Accept": "application/json"},
                timeout=self.timeout_seconds,
            )
        except requests.RequestException as exc:
            raise Retryable(f"{where} unreachable ({type(exc).__name__})") from None
        status = response.status_code
        if status == 429 or status >= 500:
            raise Retryable(f"{where} answered HTTP {status}", retry_after=parse_retry_after(response.headers.get("Retry-After")))
        if status in (401, 403):
            raise ReportingApiAuthError(
                f"{where} refused the API key (HTTP {status}): set CHECKOUT_API_KEY to a key the app at "
                "ONBOARDING_EXPORT_API_BASE_URL accepts for reporting reads"
            )
        if status == 404:
            raise ReportingApiError(
                f"{where} answered HTTP 404: ONBOARDING_EXPORT_API_BASE_URL must be the app's base URL "
                f"(the client appends {EVENTS_PATH})"
            )
        if status >= 400:
            raise ReportingApiError(
                f"{where} answered HTTP {status}: {self._redacted(response.text[:200])!r}; "
                "the request was rejected (check ONBOARDING_EXPORT_API_BASE_URL and the app's logs)"
            )
        return response.content

    def _redacted(self, text: str) -> str:
        # An echo of the request in an error body must not carry the key into our messages.
        return text.replace(self._api_key, "[redacted]") if self._api_key else text


def _parse_page(body: bytes, endpoint: str, number: int) -> tuple[list[dict[str, Any]], str | None]:
    where = f"reporting API {endpoint} page {number}"
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise ReportingApiError(f"{where}: the answer is not JSON; check ONBOARDING_EXPORT_API_BASE_URL") from None
    if not isinstance(data, dict) or not isinstance(data.get("events"), list):
        raise ReportingApiError(
            f'{where}: expected {{"events": [...], "nextCursor": ...}}; check ONBOARDING_EXPORT_API_BASE_URL'
        )
    next_cursor = data.get("nextCursor")
    if next_cursor is not None and not isinstance(next_cursor, str):
        raise ReportingApiError(f"{where}: nextCursor is {type(next_cursor).__name__}, expected a string or null")
    if next_cursor == "":
        next_cursor = None  # an empty cursor means the end as much as null does
    return data["events"], next_cursor

