"""The webhook sink: NDJSON batches POSTed to ANALYTICS_SEGMENTS_WEBHOOK (contract section 5).

One keep-alive `requests.Session`, `Content-Type: application/x-ndjson`, `Idempotency-Key` per
batch. Gzip is negotiated as RFC 7694 describes: the first batch goes uncompressed; once the
receiver lists `gzip` in an `Accept-Encoding` response header, later batches are sent with
`Content-Encoding: gzip`; a 415 to a gzipped batch turns gzip off and resends that batch plain at
once. (`webhook_gzip` forces it on or off.) Connection errors, timeouts, 429 (waiting
`Retry-After`) and 5xx are retried with exponential back-off and jitter, bounded by attempts and
elapsed time (`resources/http_retry.py`); any other 4xx fails at once. No error message or log
line carries the webhook URL.
"""

from __future__ import annotations

import gzip
import logging
import os
import random
import time
from typing import Any, Literal, Protocol

from resources.export_batches import ExportBatch, SinkConfigError, SinkDeliveryError, encode_batch
from resources.http_retry import Retryable, parse_retry_after, retrying

# urllib3 logs request paths at DEBUG; a webhook path can hold a token, so never below INFO here.
logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)


class WebhookOptions(Protocol):
    """The settings the webhook sink reads (`ExportSinks` has them)."""

    webhook_url: str | None
    webhook_gzip: Literal["auto", "always", "never"]
    gzip_level: int
    max_attempts: int
    backoff_initial_seconds: float
    backoff_max_seconds: float
    max_retry_seconds: float
    max_retry_after_seconds: float
    timeout_seconds: float


def _accepts_gzip(header: str | None) -> bool:
    """Whether an `Accept-Encoding` header lists gzip with a non-zero quality."""
    for part in (header or "").lower().split(","):
        coding, *params = (piece.strip() for piece in part.split(";"))
        if coding not in ("gzip", "x-gzip"):
            continue
        for param in params:
            name, _, value = param.partition("=")
            if name.strip() == "q":
                try:
                    return float(value) > 0
                except ValueError:
                    return False
        return True
    return False


class WebhookBatchWriter:
    """POSTs NDJSON batches to the webhook; see the module docstring for gzip and retries."""

    destination = "webhook ANALYTICS_SEGMENTS_WEBHOOK"

    def __init__(self, config: WebhookOptions, log: logging.Logger | Any | None):
        import requests
        from requests.adapters import HTTPAdapter

        if not config.webhook_url:
            raise SinkConfigError(
                "ONBOARDING_EXPORT_SINK is webhook but ANALYTICS_SEGMENTS_WEBHOOK is not set; set it to the "
                "receiver's URL or choose the file or s3 sink"
            )
        self._url = config.webhook_url
        self._config = config
        self._log = log
        self._session = requests.Session()
        self._session.mount("http://", HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0))
        self._session.mount("https://", HTTPAdapter(pool_connections=1, pool_maxsize=1, max_retries=0))
        # The environment (proxies, CA bundle) is read once here, not on every POST: requests scans
        # os.environ per request otherwise, which costs as much as the POST itself on loopback.
        self._session.proxies = requests.utils.get_environ_proxies(self._url)
        self._session.verify = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or True
        self._session.trust_env = False
        self.gzip = config.webhook_gzip == "always"
        self._gzip_refused = False  # a 415 to gzip settles it for the rest of the run
        self.attempts = 0  # POSTs made, retries included (run metadata)
        self.retries = 0
        # Bounded twice: by attempts, and by never starting a wait that ends past the time budget. A
        # Retry-After is honoured exactly (`_post` refuses one longer than max_retry_after_seconds).
        self._retrying = retrying(
            max_attempts=config.max_attempts,
            backoff=self._backoff,
            max_seconds=config.max_retry_seconds,
            before_sleep=self._before_sleep,
        )

    def deliver(self, batch: ExportBatch) -> None:
        body = encode_batch(batch, "ndjson")
        headers = {
            "Content-Type": "application/x-ndjson",
            "Idempotency-Key": batch.idempotency_key,
            "X-Export-Batch-Rows": str(batch.rows),
        }
        # Only text and bytes go into the retry machinery: tenacity keeps its last call's arguments,
        # and a batch would keep its whole window of Arrow buffers alive with it.
        label = f"batch {batch.seq} ({batch.rows} rows from event {batch.first.event_id})"
        started = time.monotonic()
        try:
            self._retrying(self._post, body, headers, label)
        except Retryable as exc:
            attempts = self._retrying.statistics.get("attempt_number", 1)
            raise SinkDeliveryError(
                f"webhook did not accept {label} after {attempts} attempts over "
                f"{time.monotonic() - started:.0f}s: last {exc.reason}; the cursor stays at the last acknowledged "
                "batch. Check the receiver behind ANALYTICS_SEGMENTS_WEBHOOK, then run the export again"
            ) from None

    def _backoff(self, attempt_number: int) -> float:
        # Full jitter under an exponential ceiling: a recovering receiver is not stampeded.
        ceiling = min(self._config.backoff_max_seconds, self._config.backoff_initial_seconds * 2 ** (attempt_number - 1))
        return random.uniform(ceiling / 2, ceiling)

    def _before_sleep(self, state: Any) -> None:
        self.retries += 1
        if self._log:
            exc = state.outcome.exception()
            wait = state.next_action.sleep if state.next_action else 0.0
            label = state.args[2] if len(state.args) > 2 else "batch"
            self._log.warning(
                f"{label}: {getattr(exc, 'reason', type(exc).__name__)}; attempt "
                f"{state.attempt_number}/{self._config.max_attempts} failed, retrying in {wait:.2f}s"
            )

    def _post(self, body: bytes, headers: dict[str, str], label: str) -> None:
        import requests

        send_headers = dict(headers)
        data = body
        gzipped = self.gzip
        if gzipped:
            # mtime=0: the same batch compresses to the same bytes on every attempt.
            data = gzip.compress(body, compresslevel=self._config.gzip_level, mtime=0)
            send_headers["Content-Encoding"] = "gzip"
        self.attempts += 1
        try:
            # No redirects: requests would turn a POST into a GET on 301/302 and call that delivered.
            response = self._session.post(
                self._url, data=data, headers=send_headers, timeout=(10, self._config.timeout_seconds),
                allow_redirects=False,
            )
        except (requests.ConnectionError, requests.Timeout) as exc:
            # requests' messages quote the URL: report the class only.
            self._session.close()
            raise Retryable(f"connection error ({type(exc).__name__})") from None
        except requests.RequestException as exc:
            raise SinkDeliveryError(
                f"webhook request for {label} failed ({type(exc).__name__}); check "
                "ANALYTICS_SEGMENTS_WEBHOOK is a valid http(s) URL"
            ) from None
        status = response.status_code
        _ = response.content  # read the body so the connection goes back to the pool
        if (
            self._config.webhook_gzip == "auto"
            and not self._gzip_refused
            and _accepts_gzip(response.headers.get("Accept-Encoding"))
        ):
            if not self.gzip and self._log:
                self._log.info("webhook accepts gzip request bodies (Accept-Encoding); compressing the next batches")
            self.gzip = True
        if 200 <= status < 300:
            return
        if status == 415 and gzipped and self._config.webhook_gzip == "auto":
            # RFC 7694: the receiver does not take this content coding after all; resend it plain.
            self.gzip = False
            self._gzip_refused = True
            if self._log:
                self._log.info("webhook refused a gzip body (415); sending uncompressed from now on")
            self._post(body, headers, label)
            return
        if status == 429 or status >= 500:
            reason = f"HTTP {status} {response.reason or ''}".rstrip()
            retry_after = parse_retry_after(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > self._config.max_retry_after_seconds:
                raise SinkDeliveryError(
                    f"webhook answered {label} with {reason} and Retry-After {retry_after:.0f}s, longer "
                    f"than the {self._config.max_retry_after_seconds:.0f}s this export waits; the cursor stays at "
                    "the last acknowledged batch: run the export again later"
                )
            raise Retryable(reason, retry_after)
        if 300 <= status < 400:
            raise SinkDeliveryError(
                f"webhook answered {label} with a redirect (HTTP {status}); set ANALYTICS_SEGMENTS_WEBHOOK to "
                "the final URL. The cursor stays at the last acknowledged batch"
            )
        raise SinkDeliveryError(
            f"webhook rejected {label} with HTTP "
            f"{status} {response.reason or ''}: {_short(response.text)}; a 4xx is not retried. The cursor stays "
            "at the last acknowledged batch: fix the receiver or the payload, then run the export again"
        )

    def close(self) -> None:
        self._session.close()


def _short(text: str, limit: int = 200) -> str:
    text = " ".join((text or "").split())
    return (text[:limit] + "...") if len(text) > limit else (text or "(empty body)")
