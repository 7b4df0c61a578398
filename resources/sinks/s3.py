"""The S3 sink: one object per batch under ONBOARDING_EXPORT_S3_URI, `If-None-Match: *` so nothing is
ever overwritten (a retry of an object that already landed is recognised as delivered)."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from models.export_rows import CONTENT_TYPES, s3_object_key
from resources.export_batches import ExportBatch, SinkConfigError, SinkDeliveryError, encode_batch
from resources.export_cursor import s3_client, split_s3_uri


class S3Options(Protocol):
    """The settings the S3 sink reads (`ExportSinks` has them)."""

    s3_uri: str | None
    s3_endpoint_url: str | None


class S3BatchWriter:
    """One object per batch under the ONBOARDING_EXPORT_S3_URI prefix, never overwriting."""

    def __init__(self, config: S3Options, fmt: str, run_id: str, run_started_at: datetime):
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
