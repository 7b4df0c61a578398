"""Where the export remembers its position: a JSON file (atomic replace) or an S3 object, plus the
lock that keeps exports to one at a time.

The cursor is read once before a run and written after every acknowledged batch (contract
section 5). A missing cursor is the first run ever (export from the beginning); a cursor that
exists but cannot be read fails the run with a message naming the file or URI and the fix; it is
never treated as zero.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from dagster import ConfigurableResource
from pydantic import Field, PrivateAttr

from models.export_rows import CursorError, ExportCursor, parse_cursor
from models.instants import utc_z

CURSOR_FILE_NAME = "onboarding_export_cursor.json"


class CursorStoreError(Exception):
    """The cursor store cannot be reached or written; the message says where and what to check."""


class ExportBusyError(Exception):
    """Another export holds the lock; this run exported nothing and left the cursor alone."""


def split_s3_uri(uri: str, setting: str) -> tuple[str, str]:
    """`s3://bucket/key/prefix` -> (bucket, key). Raises ValueError naming the setting."""
    parts = urlsplit(uri)
    if parts.scheme != "s3" or not parts.netloc:
        raise ValueError(f"{setting} must look like s3://bucket/path, got {uri!r}")
    return parts.netloc, parts.path.lstrip("/")


def s3_client(endpoint_url: str | None):
    """A boto3 S3 client; `S3_ENDPOINT_URL` points it at another endpoint (moto, MinIO).
    Credentials and region come from the usual AWS environment / profile chain."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url or None,
        config=Config(retries={"max_attempts": 6, "mode": "standard"}, connect_timeout=10, read_timeout=60),
    )


class ExportCursorStore(ConfigurableResource):
    """Where the export remembers how far it got (ONBOARDING_EXPORT_CURSOR_STORE: a file in DATA_DIR
    or an S3 object), and the lock that lets one export run at a time."""

    store: Literal["file", "s3"] = Field(default="file", description="ONBOARDING_EXPORT_CURSOR_STORE")
    file_path: str = Field(
        default=f".data/{CURSOR_FILE_NAME}", description="cursor file (under DATA_DIR) for the file store"
    )
    s3_uri: str | None = Field(
        default=None,
        description="ONBOARDING_EXPORT_CURSOR_S3_URI: s3://bucket/key.json (a URI ending in / gets "
        f"{CURSOR_FILE_NAME} appended)",
    )
    s3_endpoint_url: str | None = Field(default=None, description="S3_ENDPOINT_URL (moto, MinIO)")
    lock_path: str = Field(default=".data/onboarding_export.lock", description="lock file of the running export")
    lock_wait_seconds: float = Field(
        default=30.0, description="how long a second export waits for the running one before it is refused"
    )

    _client: Any = PrivateAttr(default=None)

    # Where ---------------------------------------------------------------------------------------
    def _s3_location(self) -> tuple[str, str]:
        if not self.s3_uri:
            raise CursorStoreError(
                "ONBOARDING_EXPORT_CURSOR_STORE is s3 but ONBOARDING_EXPORT_CURSOR_S3_URI is not set; "
                "set it to s3://bucket/path/onboarding_export_cursor.json or use the file store"
            )
        try:
            bucket, key = split_s3_uri(self.s3_uri, "ONBOARDING_EXPORT_CURSOR_S3_URI")
        except ValueError as exc:
            raise CursorStoreError(str(exc)) from None
        if not key or key.endswith("/"):
            key = f"{key}{CURSOR_FILE_NAME}"
        return bucket, key

    def describe(self) -> str:
        """Where the cursor lives (a path or an s3:// URI; neither is secret)."""
        if self.store == "s3":
            bucket, key = self._s3_location()
            return f"s3://{bucket}/{key}"
        return str(Path(self.file_path).resolve())

    def _s3(self):
        if self._client is None:
            self._client = s3_client(self.s3_endpoint_url)
        return self._client

    # Read / write --------------------------------------------------------------------------------
    def read(self) -> ExportCursor | None:
        """The stored cursor, or None when there is none yet (the first export). Raises CursorError
        when it exists but cannot be read, CursorStoreError when the store cannot be reached."""
        where = self.describe()
        if self.store == "s3":
            data = self._read_s3()
        else:
            path = Path(self.file_path)
            try:
                data = path.read_bytes()
            except FileNotFoundError:
                return None
            except OSError as exc:
                raise CursorError(
                    f"export cursor {where} cannot be read ({exc.strerror}); check its permissions"
                ) from None
        if data is None:
            return None
        return parse_cursor(data, where)

    def _read_s3(self) -> bytes | None:
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = self._s3_location()
        try:
            response = self._s3().get_object(Bucket=bucket, Key=key)
            return response["Body"].read()
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("NoSuchKey", "404"):
                return None
            raise CursorStoreError(
                f"export cursor s3://{bucket}/{key} cannot be read: {code or 'error'}; check the bucket, "
                "the AWS credentials and S3_ENDPOINT_URL"
            ) from None
        except BotoCoreError as exc:
            raise CursorStoreError(
                f"export cursor s3://{bucket}/{key} unreachable ({type(exc).__name__}); check S3_ENDPOINT_URL "
                "and the network"
            ) from None

    def write(self, cursor: ExportCursor) -> None:
        """Store the cursor: atomically (temp file + rename) for the file store, one PUT for S3."""
        body = cursor.to_json().encode("utf-8")
        if self.store == "s3":
            self._write_s3(body)
            return
        path = Path(self.file_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as handle:
                handle.write(body)
                handle.flush()
                os.fsync(handle.fileno())
            # rename is atomic: a reader (or a killed run) sees the old or the new cursor, never half.
            os.replace(tmp, path)
        except OSError as exc:
            raise CursorStoreError(
                f"export cursor {path.resolve()} cannot be written ({exc.strerror}); check the folder's "
                "permissions and free space"
            ) from None

    def _write_s3(self, body: bytes) -> None:
        from botocore.exceptions import BotoCoreError, ClientError

        bucket, key = self._s3_location()
        try:
            self._s3().put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
        except (ClientError, BotoCoreError) as exc:
            code = exc.response.get("Error", {}).get("Code", "") if isinstance(exc, ClientError) else type(exc).__name__
            raise CursorStoreError(
                f"export cursor s3://{bucket}/{key} cannot be written: {code}; check the bucket policy and "
                "the AWS credentials"
            ) from None

    # One export at a time ------------------------------------------------------------------------
    @contextmanager
    def exclusive(self, run_id: str, wait_seconds: float | None = None) -> Iterator[None]:
        """Hold the export lock for a run. A second export waits up to `lock_wait_seconds`, then is
        refused with ExportBusyError. The OS drops the lock when its process dies (even on kill -9),
        so a killed run never blocks the next one.

        This lock is not redundant with the run queue's limit of one export: a hand-run
        `pricing-ops export` runs in its own process, outside the queue. The lock file is removed
        when the run ends (while still locked), so none is left behind; a waiter that locked a file
        removed meanwhile sees that and locks the new one instead."""
        wait = self.lock_wait_seconds if wait_seconds is None else wait_seconds
        path = Path(self.lock_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + max(wait, 0.0)
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    holder = _lock_holder(path)
                    raise ExportBusyError(
                        f"another onboarding export is running ({holder}); this run waited {wait:.0f}s "
                        f"on {path.resolve()} and gives up without exporting (cursor unchanged). "
                        "Let the running export finish, then start this one again"
                    ) from None
                time.sleep(0.2)
                continue
            if _same_file(fd, path):
                break
            os.close(fd)  # the holder removed this file as it finished: lock the one at the path now
        try:
            holder = {"runId": run_id, "pid": os.getpid(), "since": utc_z(datetime.now(UTC), "seconds")}
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(holder).encode(), 0)
            yield
        finally:
            try:
                os.unlink(path)  # still locked: no other process holds this file
            except FileNotFoundError:
                pass
            os.close(fd)  # closing the descriptor releases the flock


def _same_file(fd: int, path: Path) -> bool:
    """Whether the open descriptor is still the file at `path` (not one unlinked since it was opened)."""
    try:
        held, there = os.fstat(fd), os.stat(path)
        return (held.st_dev, held.st_ino) == (there.st_dev, there.st_ino)
    except FileNotFoundError:
        return False


def _lock_holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text() or "{}")
        return f"run {info.get('runId', '?')}, pid {info.get('pid', '?')}, since {info.get('since', '?')}"
    except (OSError, ValueError):
        return "holder unknown"
