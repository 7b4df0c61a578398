"""Where exported batches go: a webhook, files, or S3 objects (contract section 5).

A sink's `deliver(batch)` returns only once the batch is acknowledged (2xx from the webhook, the
file renamed into place, the S3 PUT answered); the export writes its cursor after that, so the
cursor never passes a row that was not acknowledged.

- webhook: NDJSON over one keep-alive `requests.Session`, `Content-Type: application/x-ndjson`,
  `Idempotency-Key` per batch. Gzip is negotiated as RFC 7694 describes: the first batch goes
  uncompressed; once the receiver lists `gzip` in an `Accept-Encoding` response header, later
  batches are sent with `Content-Encoding: gzip`; a 415 to a gzipped batch turns gzip off and
  resends that batch plain at once. (`webhook_gzip` forces it on or off.) Connection errors,
  timeouts, 429 (waiting `Retry-After`) and 5xx are retried with exponential back-off and jitter,
  bounded by attempts and elapsed time; any other 4xx fails at once.
- file: one file per batch (NDJSON, CSV or Parquet) under ONBOARDING_EXPORT_DIR, written to a
  temporary name and renamed, so every file is complete and a killed run leaves no torn file.
- s3: one object per batch under ONBOARDING_EXPORT_S3_URI, `If-None-Match: *` so nothing is ever
  overwritten (a retry of an object that already landed is recognised as delivered).

File and object names sort by time and carry the run id (models/export_rows.py). No error message
or log line carries the webhook URL.
"""

from __future__ import annotations

import email.utils
import gzip
import logging
import os
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cached_property
from pathlib import Path
from typing import Any, Literal, Protocol

import pyarrow as pa
from dagster import ConfigurableResource
from pydantic import Field

from models.export_rows import (
    CONTENT_TYPES,
    KEY_COLUMNS,
    NDJSON_LINE,
    RowKey,
    batch_idempotency_key,
    batch_object_name,
    format_instant,
    s3_object_key,
)
from resources.export_cursor import s3_client, split_s3_uri

# urllib3 logs request paths at DEBUG; a webhook path can hold a token, so never below INFO here.
logging.getLogger("urllib3.connectionpool").setLevel(logging.INFO)


class SinkDeliveryError(Exception):
    """A batch the sink did not acknowledge; says which batch, why, and what to check. No secrets."""


class SinkConfigError(Exception):
    """The sink is not usable as configured (a setting missing or contradictory)."""


@dataclass
class ExportBatch:
    """Consecutive export rows: the key columns (`_loaded_at`, `_event_id`, `_slug`) and the payload
    columns of the format (`line` for NDJSON; camelCase fields for CSV and Parquet)."""

    seq: int
    table: pa.Table

    @property
    def rows(self) -> int:
        return self.table.num_rows

    def _key(self, index: int) -> RowKey:
        return RowKey(
            format_instant(self.table.column(KEY_COLUMNS[0])[index].as_py()),
            int(self.table.column(KEY_COLUMNS[1])[index].as_py()),
            self.table.column(KEY_COLUMNS[2])[index].as_py(),
        )

    @cached_property
    def first(self) -> RowKey:
        return self._key(0)

    @cached_property
    def last(self) -> RowKey:
        return self._key(self.rows - 1)

    @cached_property
    def idempotency_key(self) -> str:
        return batch_idempotency_key(self.first, self.last, self.rows)


# Encoding --------------------------------------------------------------------------------------


def _concatenated(column: pa.ChunkedArray) -> bytes:
    """The bytes of a string column laid end to end, read straight from the Arrow buffers (each
    NDJSON line already ends in a newline): no Python object per row."""
    parts = []
    for chunk in column.chunks:
        if len(chunk) == 0:
            continue
        if chunk.type != pa.string():
            chunk = chunk.cast(pa.string())
        offsets = memoryview(chunk.buffers()[1]).cast("i")
        start, end = offsets[chunk.offset], offsets[chunk.offset + len(chunk)]
        parts.append(chunk.buffers()[2][start:end].to_pybytes())
    return b"".join(parts)


def encode_batch(batch: ExportBatch, fmt: str) -> bytes:
    """The bytes of one batch in a format: NDJSON lines (each ending in a newline), CSV with a header
    row, or a Parquet file (zstd)."""
    if fmt == "ndjson":
        return _concatenated(batch.table.column(NDJSON_LINE))
    payload = batch.table.drop_columns(list(KEY_COLUMNS))
    sink = pa.BufferOutputStream()
    if fmt == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(payload, sink, write_options=pacsv.WriteOptions(include_header=True, quoting_style="needed"))
    elif fmt == "parquet":
        import pyarrow.parquet as pq

        pq.write_table(payload, sink, compression="zstd")
    else:
        raise SinkConfigError(f"unknown export format {fmt!r}; use ndjson, csv or parquet")
    return sink.getvalue().to_pybytes()


# Sinks -----------------------------------------------------------------------------------------


class BatchWriter(Protocol):
    destination: str

    def deliver(self, batch: ExportBatch) -> None: ...

    def close(self) -> None: ...


class _Retryable(Exception):
    def __init__(self, reason: str, retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """`Retry-After` as seconds to wait: delta-seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


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

    def __init__(self, config: ExportSinks, log: logging.Logger | Any | None):
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
        import tenacity

        self._retrying = tenacity.Retrying(
            retry=tenacity.retry_if_exception_type(_Retryable),
            wait=self._wait,
            # Bounded twice: by attempts, and by never starting a wait that ends past the time budget.
            stop=tenacity.stop_after_attempt(config.max_attempts) | tenacity.stop_before_delay(config.max_retry_seconds),
            before_sleep=self._before_sleep,
            reraise=True,
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
        except _Retryable as exc:
            attempts = self._retrying.statistics.get("attempt_number", 1)
            raise SinkDeliveryError(
                f"webhook did not accept {label} after {attempts} attempts over "
                f"{time.monotonic() - started:.0f}s: last {exc.reason}; the cursor stays at the last acknowledged "
                "batch. Check the receiver behind ANALYTICS_SEGMENTS_WEBHOOK, then run the export again"
            ) from None

    def _wait(self, state: Any) -> float:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return exc.retry_after  # the receiver said when: honour it exactly
        # Full jitter under an exponential ceiling: a recovering receiver is not stampeded.
        ceiling = min(
            self._config.backoff_max_seconds, self._config.backoff_initial_seconds * 2 ** (state.attempt_number - 1)
        )
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
            raise _Retryable(f"connection error ({type(exc).__name__})") from None
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
            raise _Retryable(reason, retry_after)
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


class FileBatchWriter:
    """One file per batch under the export folder, renamed into place once complete."""

    def __init__(self, directory: Path, fmt: str, run_id: str, run_started_at: datetime):
        self._dir = directory
        self._fmt = fmt
        self._run_id = run_id
        self._started = run_started_at
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkConfigError(
                f"export folder {directory} cannot be created ({exc.strerror}); check ONBOARDING_EXPORT_DIR"
            ) from None
        self.destination = f"files in {directory}"
        self.files: list[str] = []

    def deliver(self, batch: ExportBatch) -> None:
        data = encode_batch(batch, self._fmt)
        name = batch_object_name(self._started, self._run_id, batch.seq, self._fmt)
        final = self._dir / name
        tmp = self._dir / f".{name}.tmp"
        try:
            with open(tmp, "wb") as handle:
                handle.write(data)
            os.replace(tmp, final)
        except OSError as exc:
            raise SinkDeliveryError(
                f"batch {batch.seq} could not be written to {final} ({exc.strerror}); check free space and "
                "permissions of ONBOARDING_EXPORT_DIR; the cursor stays at the last written batch"
            ) from None
        self.files.append(name)

    def close(self) -> None:
        # The files are complete on rename; fsync the folder once so the names survive a power cut.
        try:
            fd = os.open(self._dir, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError:
            pass


class S3BatchWriter:
    """One object per batch under the ONBOARDING_EXPORT_S3_URI prefix, never overwriting."""

    def __init__(self, config: ExportSinks, fmt: str, run_id: str, run_started_at: datetime):
        if not config.s3_uri:
            raise SinkConfigError(
                "ONBOARDING_EXPORT_SINK is s3 but ONBOARDING_EXPORT_S3_URI is not set; set it to s3://bucket/prefix"
            )
        try:
            self._bucket, self._prefix = split_s3_uri(config.s3_uri, "ONBOARDING_EXPORT_S3_URI")
        except ValueError as exc:
            raise SinkConfigError(str(exc)) from None
        self._client = s3_client(config.s3_endpoint_url)
        self._fmt = fmt
        self._run_id = run_id
        self._started = run_started_at
        self.destination = f"s3://{self._bucket}/{self._prefix}".rstrip("/")
        self.keys: list[str] = []

    def deliver(self, batch: ExportBatch) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        key = s3_object_key(self._prefix, self._started, self._run_id, batch.seq, self._fmt)
        try:
            self._client.put_object(
                Bucket=self._bucket,
                Key=key,
                Body=encode_batch(batch, self._fmt),
                ContentType=CONTENT_TYPES[self._fmt],
                Metadata={"idempotency-key": batch.idempotency_key, "rows": str(batch.rows)},
                IfNoneMatch="*",
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code == "PreconditionFailed":
                # This run's own object for this batch already landed (a retried PUT): delivered.
                self.keys.append(key)
                return
            raise SinkDeliveryError(
                f"batch {batch.seq} could not be stored at s3://{self._bucket}/{key}: {code or 'error'}; check the "
                "bucket, its policy and the AWS credentials; the cursor stays at the last stored batch"
            ) from None
        except BotoCoreError as exc:
            raise SinkDeliveryError(
                f"batch {batch.seq}: S3 unreachable ({type(exc).__name__}); check S3_ENDPOINT_URL and the network; "
                "the cursor stays at the last stored batch"
            ) from None
        self.keys.append(key)

    def close(self) -> None:
        pass


class ExportSinks(ConfigurableResource):
    """The export's sinks as configured by the settings; `open()` one for a run."""

    sink: Literal["webhook", "file", "s3"] = Field(default="file", description="ONBOARDING_EXPORT_SINK")
    format: Literal["ndjson", "csv", "parquet"] = Field(
        default="ndjson", description="ONBOARDING_EXPORT_FORMAT (file and s3 sinks; the webhook takes NDJSON)"
    )
    batch_size: int = Field(default=1000, ge=1, description="ONBOARDING_EXPORT_BATCH_SIZE")
    webhook_url: str | None = Field(default=None, description="ANALYTICS_SEGMENTS_WEBHOOK (secret)")
    webhook_gzip: Literal["auto", "always", "never"] = Field(
        default="auto", description="auto: gzip once the receiver lists it in Accept-Encoding (RFC 7694)"
    )
    gzip_level: int = Field(default=1, ge=1, le=9, description="zlib level for gzip bodies")
    export_dir: str = Field(default=".data/exports", description="ONBOARDING_EXPORT_DIR")
    s3_uri: str | None = Field(default=None, description="ONBOARDING_EXPORT_S3_URI: s3://bucket/prefix")
    s3_endpoint_url: str | None = Field(default=None, description="S3_ENDPOINT_URL (moto, MinIO)")
    max_attempts: int = Field(default=8, ge=1, description="POSTs per batch, first one included")
    backoff_initial_seconds: float = Field(default=0.5, gt=0)
    backoff_max_seconds: float = Field(default=30.0, gt=0)
    max_retry_seconds: float = Field(default=300.0, gt=0, description="give up on a batch after this long")
    max_retry_after_seconds: float = Field(
        default=300.0, gt=0, description="a Retry-After longer than this fails the run instead of waiting"
    )
    timeout_seconds: float = Field(default=60.0, gt=0, description="read timeout of one POST")

    def resolve(self, sink: str | None, fmt: str | None) -> tuple[str, str]:
        """The sink and format of a run: the run's choice, else the settings. The webhook takes NDJSON."""
        chosen_sink = sink or self.sink
        if chosen_sink == "webhook":
            if fmt and fmt != "ndjson":
                raise SinkConfigError(
                    f"the webhook sink sends NDJSON batches (contract section 5), not {fmt}; drop --format or "
                    "choose the file or s3 sink"
                )
            return chosen_sink, "ndjson"
        if chosen_sink not in ("file", "s3"):
            raise SinkConfigError(f"unknown sink {chosen_sink!r}; use webhook, file or s3")
        return chosen_sink, fmt or self.format

    def open(
        self, sink: str, fmt: str, run_id: str, run_started_at: datetime, log: Any | None = None
    ) -> WebhookBatchWriter | FileBatchWriter | S3BatchWriter:
        if sink == "webhook":
            return WebhookBatchWriter(self, log)
        if sink == "file":
            return FileBatchWriter(Path(self.export_dir).resolve(), fmt, run_id, run_started_at)
        if sink == "s3":
            return S3BatchWriter(self, fmt, run_id, run_started_at)
        raise SinkConfigError(f"unknown sink {sink!r}; use webhook, file or s3")
