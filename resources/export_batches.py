"""What every export sink receives: a batch of consecutive export rows, its bytes in a format, the
writer interface a sink implements, and the errors a sink raises."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Protocol

import pyarrow as pa

from models.export_cursor import RowKey
from models.export_rows import KEY_COLUMNS, NDJSON_LINE, batch_idempotency_key
from models.instants import format_instant


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


class BatchWriter(Protocol):
    destination: str

    def deliver(self, batch: ExportBatch) -> None: ...

    def close(self) -> None: ...
