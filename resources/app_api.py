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

from resources.http_retry import Retryable, parse_retry_after, retrying

FOLLOWUPS_PATH = "/api/v1/reporting/guardrails/followups"


class AppApiError(Exception):
    """The app did not accept a follow-up; the text says why and never carries the API key."""


class AppApi(ConfigurableResource):
    """The app's API (APP_API_BASE_URL, key CHECKOUT_API_KEY) that receives each guardrail follow-up
    (pause, resume, escalate, note); follow-ups stay in the warehouse only when either is unset."""

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
        attempts = retrying(
            max_attempts=self.max_attempts,
            backoff=lambda n: self.backoff_seconds * (2 ** (n - 1)),
            max_retry_after=self.max_retry_after_seconds,
        )
        try:
            for attempt in attempts:
                with attempt:
                    return self._post_once(body, headers)
        except Retryable as exc:
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
            raise Retryable(f"app API {url} unreachable: {type(exc).__name__}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise Retryable(
                f"app API {url} answered HTTP {response.status_code}",
                retry_after=parse_retry_after(response.headers.get("Retry-After")),
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

