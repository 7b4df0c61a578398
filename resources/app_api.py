"""The app's reporting API, for what the guardrail job tells it: follow-ups.

`POST {APP_API_BASE_URL}/api/v1/reporting/guardrails/followups` with the follow-up as camelCase
JSON and `X-API-Key: {CHECKOUT_API_KEY}`. Connection errors, 429 (its `Retry-After` honoured, up to
a cap) and 5xx are retried with back-off; any other 4xx fails at once. The follow-up id goes along
as `Idempotency-Key` so a retry after a lost answer cannot record it twice on the app's side.
"""

from __future__ import annotations

from typing import Any

import orjson
import requests
from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr
from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

FOLLOWUPS_PATH = "/api/v1/reporting/guardrails/followups"


class AppApiError(Exception):
    """The app did not accept a follow-up; the text says why and never carries the API key."""


class _Retryable(Exception):
    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


class AppApi(ConfigurableResource):
    """Client of the app API; `enabled` only when both `APP_API_BASE_URL` and `CHECKOUT_API_KEY` are set."""

    base_url: str | None = Field(default=None, description="APP_API_BASE_URL")
    api_key: str | None = Field(default=None, description="CHECKOUT_API_KEY (secret)")
    timeout_seconds: float = Field(default=10.0, description="per request")
    max_attempts: int = Field(default=4, description="attempts per follow-up within one run")
    backoff_seconds: float = Field(default=0.5, description="first back-off; doubles each retry")
    max_retry_after_seconds: float = Field(default=30.0, description="cap on a 429's Retry-After")

    _session: requests.Session | None = PrivateAttr(default=None)

    @property
    def enabled(self) -> bool:
        return bool(self.base_url and self.api_key)

    @property
    def followups_url(self) -> str:
        return (self.base_url or "").rstrip("/") + FOLLOWUPS_PATH

    def _wait(self, state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return min(exc.retry_after, self.max_retry_after_seconds)
        return self.backoff_seconds * (2 ** (state.attempt_number - 1))

    def post_followup(self, payload: dict[str, Any]) -> int:
        """POST one follow-up; returns the HTTP status. Raises `AppApiError` once retries are spent."""
        if not self.enabled:
            raise AppApiError("the app API is not configured: set APP_API_BASE_URL and CHECKOUT_API_KEY")
        if self._session is None:
            self._session = requests.Session()
        body = orjson.dumps(payload)
        headers = {
            "Content-Type": "application/json",
            "X-API-Key": self.api_key or "",
            "Idempotency-Key": str(payload.get("id", "")),
        }
        retrying = Retrying(
            stop=stop_after_attempt(self.max_attempts),
            wait=self._wait,
            retry=retry_if_exception(lambda e: isinstance(e, _Retryable)),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._post_once(body, headers)
        except _Retryable as exc:
            raise AppApiError(
                f"{exc} (after {self.max_attempts} attempts); it is retried on the next run"
            ) from None
        raise AssertionError("unreachable")  # Retrying either returns or raises

    def _post_once(self, body: bytes, headers: dict[str, str]) -> int:
        url = self.followups_url
        try:
            assert self._session is not None
            response = self._session.post(url, data=body, headers=headers, timeout=self.timeout_seconds)
        except requests.RequestException as exc:
            raise _Retryable(f"app API {url} unreachable: {type(exc).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise _Retryable(
                f"app API {url} answered HTTP {response.status_code}",
                retry_after=_retry_after(response.headers.get("Retry-After")),
            )
        if response.status_code >= 400:
            hint = (
                "check CHECKOUT_API_KEY"
                if response.status_code in (401, 403)
                else "the app rejected the payload"
            )
            raise AppApiError(
                f"app API {url} answered HTTP {response.status_code}: {response.text[:200]!r}; {hint}"
            )
        return response.status_code

    def teardown_after_execution(self, context) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None


def _retry_after(value: str | None) -> float | None:
    """Seconds from a `Retry-After` header (only the delta-seconds form is used by the app)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None
