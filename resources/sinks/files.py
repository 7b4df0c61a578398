"""The file sink: one file per batch (NDJSON, CSV or Parquet) under ONBOARDING_EXPORT_DIR, written
to a temporary name and renamed, so every file is complete and a killed run leaves no torn file.
File names sort by time and carry the run id (`models/export_rows.py`)."""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from models.export_rows import batch_object_name
from resources.export_batches import ExportBatch, SinkConfigError, SinkDeliveryError, encode_batch


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
