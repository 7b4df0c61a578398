"""Where exported batches go: a webhook, files, or S3 objects (contract section 5).

A sink's `deliver(batch)` returns only once the batch is acknowledged (2xx from the webhook, the
file renamed into place, the S3 PUT answered); the export writes its cursor after that, so the
cursor never passes a row that was not acknowledged.

One module per sink under `resources/sinks/`: `webhook.py` (NDJSON POSTs, gzip negotiation,
retries), `files.py` (one file per batch, renamed into place), `s3.py` (one object per batch, never
overwritten). The batch, its encodings and the sink errors: `resources/export_batches.py`.

File and object names sort by time and carry the run id (models/export_rows.py). No error message
or log line carries the webhook URL.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from dagster import ConfigurableResource
from pydantic import Field

# Re-exported: callers know the batch and the errors from here.
from resources.export_batches import (  # noqa: F401
    BatchWriter,
    ExportBatch,
    SinkConfigError,
    SinkDeliveryError,
    encode_batch,
)
from resources.sinks.files import FileBatchWriter
from resources.sinks.s3 import S3BatchWriter
from resources.sinks.webhook import WebhookBatchWriter


class ExportSinks(ConfigurableResource):
    """Where the export delivers new segment rows (ONBOARDING_EXPORT_SINK): the analytics webhook
    (ANALYTICS_SEGMENTS_WEBHOOK), files in ONBOARDING_EXPORT_DIR, or S3 (ONBOARDING_EXPORT_S3_URI), as
    NDJSON, CSV or Parquet, in batches of ONBOARDING_EXPORT_BATCH_SIZE rows."""

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
    backoff_initial_seconds: float = Field(default=0.5, gt=0, description="first wait before retrying a failed POST")
    backoff_max_seconds: float = Field(default=30.0, gt=0, description="longest wait between two retries of a POST")
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
