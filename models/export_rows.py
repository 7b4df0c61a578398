"""The onboarding experiment export's rules (contract section 5), pure: no I/O, no Dagster.

- The row format: camelCase keys in the contract's order, money as a decimal string with two places,
  instants as ISO 8601 UTC with `Z` and always six fractional digits. `to_export_row` is the
  reference in Python; `payload_select_sql` renders the very same thing inside the warehouse (each engine's spelling
  through `ExportDialect`),
  so rows stay in the database / Arrow until their bytes go out (performance-notes.md).
- The order: (loaded_at, event_id, slug), the warehouse's load order; `after_cursor_sql` is the
  keyset predicate "strictly after the cursor" (or "loaded at or after the instant" for a bare one).
- The cursor document and its parsing, including a hand-edited bare ISO timestamp.
- The batch `Idempotency-Key`, and the names of batch files and objects.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal, Protocol

# Re-exported: the export's names callers know from here (their homes are the modules imported).
from models.export_cursor import (  # noqa: F401
    CURSOR_EXAMPLE,
    CursorError,
    ExportCursor,
    RowKey,
    parse_cursor,
    start_cursor,
)
from models.export_runs import ExportRunRecord, failures_in_a_row  # noqa: F401
from models.instants import (
    format_instant,
    parse_instant,  # noqa: F401
)
from models.marts import SEGMENTS_MART  # noqa: F401

FORMATS: tuple[str, ...] = ("ndjson", "csv", "parquet")
SINKS: tuple[str, ...] = ("webhook", "file", "s3")
FILE_EXTENSIONS = {"ndjson": "ndjson", "csv": "csv", "parquet": "parquet"}
CONTENT_TYPES = {"ndjson": "application/x-ndjson", "csv": "text/csv", "parquet": "application/vnd.apache.parquet"}

# Six fractional digits always (every engine keeps microseconds), so a cursor round-trips exactly
# and every `recordedAt` has the same shape.
_CENT = Decimal("0.01")

# Columns of the key that orders the export; present in every batch under these names.
KEY_LOADED_AT = "_loaded_at"
KEY_EVENT_ID = "_event_id"
KEY_SLUG = "_slug"
KEY_COLUMNS = (KEY_LOADED_AT, KEY_EVENT_ID, KEY_SLUG)
NDJSON_LINE = "line"


@dataclass(frozen=True)
class ExportField:
    key: str  # camelCase name in the export
    column: str  # column of the segments mart
    kind: Literal["int", "text", "bool", "instant", "money"]


EXPORT_FIELDS: tuple[ExportField, ...] = (
    ExportField("eventId", "event_id", "int"),
    ExportField("journeyId", "journey_id", "text"),
    ExportField("orderId", "order_id", "text"),
    ExportField("orderNumber", "order_number", "text"),
    ExportField("slug", "slug", "text"),
    ExportField("variantKey", "variant_key", "text"),
    ExportField("variantName", "variant_name", "text"),
    ExportField("isControl", "is_control", "bool"),
    ExportField("assignmentStrategy", "assignment_strategy", "text"),
    ExportField("featureFlagKey", "feature_flag_key", "text"),
    ExportField("status", "journey_status", "text"),
    ExportField("recordedAt", "recorded_at", "instant"),
    ExportField("orderTotal", "order_total", "money"),
    ExportField("orderCurrency", "order_currency", "text"),
    ExportField("loyaltyProjectionPoints", "loyalty_projection_points", "int"),
)
EXPORT_KEYS: tuple[str, ...] = tuple(f.key for f in EXPORT_FIELDS)


# Values ----------------------------------------------------------------------------------------


def format_money(value: Decimal | None) -> str | None:
    """A decimal string with two places (`12.50`); None stays None. Never goes through float."""
    if value is None:
        return None
    return format(Decimal(value).quantize(_CENT, rounding=ROUND_HALF_UP), "f")


def to_export_row(record: Mapping[str, Any]) -> dict[str, Any]:
    """One mart row (column -> value) as the export row (camelCase, contract order and formats)."""
    row: dict[str, Any] = {}
    for field in EXPORT_FIELDS:
        value = record.get(field.column)
        if field.kind == "instant":
            value = format_instant(value) if value is not None else None
        elif field.kind == "money":
            value = format_money(value)
        elif field.kind == "bool":
            value = value is True
        elif field.kind == "int" and value is not None:
            value = int(value)
        row[field.key] = value
    return row


def ndjson_line(record: Mapping[str, Any]) -> str:
    """The export row of one mart row as one compact JSON line (no newline)."""
    return json.dumps(to_export_row(record), ensure_ascii=False, separators=(",", ":"))


# SQL (rendered here so the format is spelled once; executed by assets/export_windows.py) -------


class ExportDialect(Protocol):
    """What the export's SQL needs from a warehouse engine (resources/engines/ implement it)."""

    def instant_iso_sql(self, column: str) -> str: ...  # ISO 8601 UTC, six fractional digits, `Z`
    def utc_timestamp_sql(self, column: str) -> str: ...  # arrives in Arrow as its UTC wall time
    def text_type(self) -> str: ...
    def bytewise_sql(self, column: str) -> str: ...  # compared byte by byte
    def json_line_sql(self, fields: list[tuple[str, str]]) -> str: ...  # compact JSON object, keys in order
    def row_after_sql(self, columns: list[str], values: list[str]) -> str: ...  # row comparison


def _money_sql(dialect: ExportDialect, column: str) -> str:
    return f"cast(cast({column} as decimal(38, 2)) as {dialect.text_type()})"


def _field_sql(dialect: ExportDialect, field: ExportField, alias: str) -> str:
    column = f"{alias}.{field.column}"
    if field.kind == "instant":
        # Explicitly UTC: the result never depends on the session TimeZone.
        return dialect.instant_iso_sql(column)
    if field.kind == "money":
        return _money_sql(dialect, column)
    if field.kind == "bool":
        return f"coalesce({column}, false)"
    return column


def key_select_sql(dialect: ExportDialect, alias: str = "m") -> str:
    """The ordering key as `_loaded_at` (a UTC timestamp, exact to the microsecond), `_event_id`,
    `_slug`. Only batch boundaries are turned into text, so the key costs nothing per row."""
    return (
        f"{dialect.utc_timestamp_sql(f'{alias}.loaded_at')} as {KEY_LOADED_AT}, "
        f"{alias}.event_id as {KEY_EVENT_ID}, {alias}.slug as {KEY_SLUG}"
    )


def payload_select_sql(dialect: ExportDialect, fmt: str, alias: str = "m") -> str:
    """Select-list of the row payload for a format.

    ndjson: one column `line`, the row as compact JSON rendered by the database, newline included
    (so a batch's body is the column's bytes as they are).
    csv: the export fields as camelCase columns, formatted as in JSON (text instants and money).
    parquet: the export fields typed: instants as UTC timestamps (Arrow labels them UTC), money as
    decimal(38,2), so a Parquet reader gets types rather than strings.
    """
    if fmt == "ndjson":
        fields = [(f.key, _field_sql(dialect, f, alias)) for f in EXPORT_FIELDS]
        return f"{dialect.json_line_sql(fields)} || chr(10) as {NDJSON_LINE}"
    if fmt == "csv":
        return ", ".join(f'{_field_sql(dialect, f, alias)} as "{f.key}"' for f in EXPORT_FIELDS)
    if fmt == "parquet":
        parts = []
        for f in EXPORT_FIELDS:
            column = f"{alias}.{f.column}"
            if f.kind == "instant":
                expr = dialect.utc_timestamp_sql(column)
            elif f.kind == "money":
                expr = f"cast({column} as decimal(38, 2))"
            else:
                expr = _field_sql(dialect, f, alias)
            parts.append(f'{expr} as "{f.key}"')
        return ", ".join(parts)
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


def order_by_sql(dialect: ExportDialect, alias: str = "m") -> str:
    return f"{alias}.loaded_at, {alias}.event_id, {dialect.bytewise_sql(f'{alias}.slug')}"


def after_cursor_sql(dialect: ExportDialect, cursor: ExportCursor | None, alias: str = "m", prefix: str = "c") -> str:
    """Predicate "after the cursor", with `:{prefix}_loaded_at`, `:{prefix}_event_id`, `:{prefix}_slug`.

    No cursor: everything. A bare instant: loaded at or after it. A full cursor: strictly after the
    last exported (loaded_at, event_id, slug). The leading `loaded_at >=` lets the scan skip blocks.
    """
    if cursor is None:
        return "true"
    lower = f"{alias}.loaded_at >= :{prefix}_loaded_at"
    if cursor.is_bare:
        return lower
    after = dialect.row_after_sql(
        [f"{alias}.loaded_at", f"{alias}.event_id", dialect.bytewise_sql(f"{alias}.slug")],
        [f":{prefix}_loaded_at", f":{prefix}_event_id", f":{prefix}_slug"],
    )
    return f"{lower} and {after}"


def cursor_params(cursor: ExportCursor | None, prefix: str = "c") -> dict[str, Any]:
    if cursor is None:
        return {}
    params: dict[str, Any] = {f"{prefix}_loaded_at": cursor.loaded_at}
    if not cursor.is_bare:
        params[f"{prefix}_event_id"] = cursor.last_event_id
        params[f"{prefix}_slug"] = cursor.last_slug
    return params


# Batches ---------------------------------------------------------------------------------------


def batch_idempotency_key(first: RowKey, last: RowKey, rows: int) -> str:
    """Stable for the same batch: the same first and last row and the same count give the same key,
    whichever run (or retry, or resumed run) sends it."""
    material = json.dumps(
        [first.loaded_at, first.event_id, first.slug, last.loaded_at, last.event_id, last.slug, rows],
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return hashlib.sha256(material.encode("utf-8")).hexdigest()


def batch_object_name(run_started_at: datetime, run_id: str, seq: int, fmt: str) -> str:
    """`onboarding_segments_<run start, UTC, compact>_<run id>_<batch seq>.<ext>`.

    Sorts by time (run start, then batch number) and is unique per run, so no run overwrites another's.
    """
    stamp = run_started_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    safe_run = "".join(ch for ch in run_id if ch.isalnum() or ch == "-")[:36] or "run"
    return f"onboarding_segments_{stamp}_{safe_run}_{seq:08d}.{FILE_EXTENSIONS[fmt]}"


def s3_object_key(prefix: str, run_started_at: datetime, run_id: str, seq: int, fmt: str) -> str:
    """`<prefix>/dt=<UTC date of the run start>/<batch_object_name>`: sorts by time across days."""
    day = run_started_at.astimezone(UTC).strftime("%Y-%m-%d")
    name = batch_object_name(run_started_at, run_id, seq, fmt)
    prefix = prefix.strip("/")
    return f"{prefix}/dt={day}/{name}" if prefix else f"dt={day}/{name}"


