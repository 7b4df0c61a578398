"""The onboarding experiment export's rules (contract section 5), pure: no I/O, no Dagster.

- The row format: camelCase keys in the contract's order, money as a decimal string with two places,
  instants as ISO 8601 UTC with `Z` and always six fractional digits. `to_export_row` is the
  reference in Python; `payload_select_sql` renders the very same thing inside DuckDB or Postgres,
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
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

from models.instants import format_instant
from models.marts import SEGMENTS_MART  # noqa: F401  (the mart the export reads; callers import it from here)

Engine = Literal["duckdb", "postgres"]
ExportFormat = Literal["ndjson", "csv", "parquet"]
FORMATS: tuple[str, ...] = ("ndjson", "csv", "parquet")
SINKS: tuple[str, ...] = ("webhook", "file", "s3")
FILE_EXTENSIONS = {"ndjson": "ndjson", "csv": "csv", "parquet": "parquet"}
CONTENT_TYPES = {"ndjson": "application/x-ndjson", "csv": "text/csv", "parquet": "application/vnd.apache.parquet"}

# Six fractional digits always: both warehouses keep microseconds, so a cursor round-trips exactly
# and every `recordedAt` has the same shape.
_ISO_FORMAT_DUCKDB = "%Y-%m-%dT%H:%M:%S.%fZ"
_ISO_FORMAT_POSTGRES = 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'
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


def parse_instant(text: str) -> datetime:
    """ISO 8601 -> aware UTC datetime. `Z` or an offset; a value without one is read as UTC (the
    export speaks UTC only), a bare date as its UTC midnight. Raises ValueError."""
    cleaned = text.strip()
    if not cleaned:
        raise ValueError("empty timestamp")
    if cleaned[-1] in "zZ":
        cleaned = cleaned[:-1] + "+00:00"
    parsed = datetime.fromisoformat(cleaned)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


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


# SQL (rendered here so the format is spelled once; executed by assets/export.py) ---------------


def _instant_sql(engine: Engine, column: str) -> str:
    # Explicitly UTC: the result never depends on the session TimeZone. (DuckDB: epoch microseconds
    # back to a naive UTC timestamp, cheaper than `at time zone`, which goes through ICU.)
    if engine == "duckdb":
        return f"strftime(make_timestamp(epoch_us({column})), '{_ISO_FORMAT_DUCKDB}')"
    return f"to_char({column} at time zone 'UTC', '{_ISO_FORMAT_POSTGRES}')"


def _utc_timestamp_sql(engine: Engine, column: str) -> str:
    """A timestamptz as a naive UTC timestamp (Arrow then labels it UTC)."""
    if engine == "duckdb":
        return f"make_timestamp(epoch_us({column}))"
    return f"({column} at time zone 'UTC')"


def _money_sql(engine: Engine, column: str) -> str:
    return f"cast(cast({column} as decimal(38, 2)) as {'varchar' if engine == 'duckdb' else 'text'})"


def _field_sql(engine: Engine, field: ExportField, alias: str) -> str:
    column = f"{alias}.{field.column}"
    if field.kind == "instant":
        return _instant_sql(engine, column)
    if field.kind == "money":
        return _money_sql(engine, column)
    if field.kind == "bool":
        return f"coalesce({column}, false)"
    return column


def key_select_sql(engine: Engine, alias: str = "m") -> str:
    """The ordering key as `_loaded_at` (a UTC timestamp, exact to the microsecond), `_event_id`,
    `_slug`. Only batch boundaries are turned into text, so the key costs nothing per row."""
    return (
        f"{_utc_timestamp_sql(engine, f'{alias}.loaded_at')} as {KEY_LOADED_AT}, "
        f"{alias}.event_id as {KEY_EVENT_ID}, {alias}.slug as {KEY_SLUG}"
    )


def payload_select_sql(engine: Engine, fmt: str, alias: str = "m") -> str:
    """Select-list of the row payload for a format.

    ndjson: one column `line`, the row as compact JSON rendered by the database, newline included
    (so a batch's body is the column's bytes as they are).
    csv: the export fields as camelCase columns, formatted as in JSON (text instants and money).
    parquet: the export fields typed: instants as UTC timestamps (Arrow labels them UTC), money as
    decimal(38,2), so a Parquet reader gets types rather than strings.
    """
    if fmt == "ndjson":
        if engine == "duckdb":
            # to_json of a struct keeps the field order and is the cheapest way DuckDB builds JSON.
            fields = ", ".join(f'"{f.key}" := {_field_sql(engine, f, alias)}' for f in EXPORT_FIELDS)
            return f"to_json(struct_pack({fields}))::varchar || chr(10) as {NDJSON_LINE}"
        # row_to_json of a one-row subselect: compact JSON with the keys in column order
        # (json_build_object pads with spaces; jsonb reorders keys).
        cols = ", ".join(f'{_field_sql(engine, f, alias)} as "{f.key}"' for f in EXPORT_FIELDS)
        return f"row_to_json((select r from (select {cols}) r))::text || chr(10) as {NDJSON_LINE}"
    if fmt == "csv":
        return ", ".join(f'{_field_sql(engine, f, alias)} as "{f.key}"' for f in EXPORT_FIELDS)
    if fmt == "parquet":
        parts = []
        for f in EXPORT_FIELDS:
            column = f"{alias}.{f.column}"
            if f.kind == "instant":
                expr = _utc_timestamp_sql(engine, column)
            elif f.kind == "money":
                expr = f"cast({column} as decimal(38, 2))"
            else:
                expr = _field_sql(engine, f, alias)
            parts.append(f'{expr} as "{f.key}"')
        return ", ".join(parts)
    raise ValueError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")


def order_by_sql(engine: Engine, alias: str = "m") -> str:
    # Postgres compares text by the database collation; "C" makes it bytewise like DuckDB.
    slug = f'{alias}.slug collate "C"' if engine == "postgres" else f"{alias}.slug"
    return f"{alias}.loaded_at, {alias}.event_id, {slug}"


def after_cursor_sql(engine: Engine, cursor: ExportCursor | None, alias: str = "m", prefix: str = "c") -> str:
    """Predicate "after the cursor", with `:{prefix}_loaded_at`, `:{prefix}_event_id`, `:{prefix}_slug`.

    No cursor: everything. A bare instant: loaded at or after it. A full cursor: strictly after the
    last exported (loaded_at, event_id, slug). The leading `loaded_at >=` lets the scan skip blocks.
    """
    if cursor is None:
        return "true"
    lower = f"{alias}.loaded_at >= :{prefix}_loaded_at"
    if cursor.is_bare:
        return lower
    slug = f'{alias}.slug collate "C"' if engine == "postgres" else f"{alias}.slug"
    return (
        f"{lower} and ({alias}.loaded_at, {alias}.event_id, {slug}) > "
        f"(:{prefix}_loaded_at, :{prefix}_event_id, :{prefix}_slug)"
    )


def up_to_key_sql(engine: Engine, alias: str = "m", prefix: str = "u") -> str:
    """Predicate "at or before the key" `:{prefix}_loaded_at/_event_id/_slug` (a window's end)."""
    slug = f'{alias}.slug collate "C"' if engine == "postgres" else f"{alias}.slug"
    return (
        f"{alias}.loaded_at <= :{prefix}_loaded_at and ({alias}.loaded_at, {alias}.event_id, {slug}) <= "
        f"(:{prefix}_loaded_at, :{prefix}_event_id, :{prefix}_slug)"
    )


def cursor_params(cursor: ExportCursor | None, prefix: str = "c") -> dict[str, Any]:
    if cursor is None:
        return {}
    params: dict[str, Any] = {f"{prefix}_loaded_at": cursor.loaded_at}
    if not cursor.is_bare:
        params[f"{prefix}_event_id"] = cursor.last_event_id
        params[f"{prefix}_slug"] = cursor.last_slug
    return params


# Keys, cursor ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RowKey:
    """Where a row sits in the export order; `loaded_at` as ISO text (`format_instant`)."""

    loaded_at: str
    event_id: int
    slug: str

    def params(self, prefix: str) -> dict[str, Any]:
        return {
            f"{prefix}_loaded_at": parse_instant(self.loaded_at),
            f"{prefix}_event_id": self.event_id,
            f"{prefix}_slug": self.slug,
        }


class CursorError(ValueError):
    """The stored cursor cannot be read; the message says where it is and how to fix it."""


CURSOR_EXAMPLE = (
    '{"cursor": "2026-11-26T09:00:00.000000Z", "lastEventId": 123, "lastSlug": "spring-offer", '
    '"rowsExported": 4000, "updatedAt": "2026-11-26T09:05:00.000000Z"}'
)


@dataclass(frozen=True)
class ExportCursor:
    """The position after the last acknowledged row, and the count of rows exported so far.

    A bare cursor (no `lastEventId`) is an instant set by hand: the next run replays every row
    loaded at or after it.
    """

    loaded_at: datetime
    last_event_id: int | None = None
    last_slug: str | None = None
    rows_exported: int = 0
    updated_at: datetime | None = None

    @property
    def is_bare(self) -> bool:
        return self.last_event_id is None

    @property
    def position(self) -> str:
        """Human-readable position: `<ISO>` for a bare instant, `<ISO> #<eventId> <slug>` otherwise."""
        iso = format_instant(self.loaded_at)
        if self.is_bare:
            return f"{iso} (replay from this instant)"
        return f"{iso} #{self.last_event_id} {self.last_slug}"

    def to_document(self) -> dict[str, Any]:
        """The contract's shape; a bare cursor keeps only `cursor` (and the counts) so it stays bare."""
        doc: dict[str, Any] = {"cursor": format_instant(self.loaded_at)}
        if not self.is_bare:
            doc["lastEventId"] = self.last_event_id
            doc["lastSlug"] = self.last_slug
        doc["rowsExported"] = self.rows_exported
        if self.updated_at is not None:
            doc["updatedAt"] = format_instant(self.updated_at)
        return doc

    def to_json(self) -> str:
        return json.dumps(self.to_document(), ensure_ascii=False) + "\n"

    def advanced(self, last: RowKey, rows: int, now: datetime) -> ExportCursor:
        """The cursor after `rows` more rows were acknowledged, the last of them `last`."""
        return replace(
            self,
            loaded_at=parse_instant(last.loaded_at),
            last_event_id=last.event_id,
            last_slug=last.slug,
            rows_exported=self.rows_exported + rows,
            updated_at=now,
        )


def start_cursor(last: RowKey, rows: int, now: datetime) -> ExportCursor:
    """The first cursor ever written (no stored cursor before)."""
    return ExportCursor(parse_instant(last.loaded_at)).advanced(last, rows, now)


def _fix_hint() -> str:
    return (
        f"write the contract's document ({CURSOR_EXAMPLE}) or a bare ISO 8601 instant such as "
        "2026-11-26T09:00:00Z to replay every row loaded at or after it (or run "
        "`pricing-ops export --cursor <ISO>`); the export never restarts from zero on its own"
    )


def parse_cursor(text: str | bytes, where: str) -> ExportCursor:
    """Read a stored cursor: the contract's JSON document, or a bare ISO timestamp (optionally as a
    JSON string) written by hand. Anything else raises CursorError naming `where` and the fix."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError:
            raise CursorError(f"export cursor {where} is not UTF-8 text; {_fix_hint()}") from None
    stripped = text.strip().lstrip("\ufeff")
    if not stripped:
        raise CursorError(f"export cursor {where} is empty; {_fix_hint()}")
    if stripped[0] in "{[\"":
        try:
            value = json.loads(stripped)
        except json.JSONDecodeError as exc:
            raise CursorError(f"export cursor {where} is not valid JSON ({exc.msg} at char {exc.pos}); {_fix_hint()}") from None
    else:
        value = stripped
    if isinstance(value, str):
        return ExportCursor(_instant_field(value, "the timestamp", where))
    if not isinstance(value, dict):
        raise CursorError(f"export cursor {where} holds a JSON {type(value).__name__}, not an object; {_fix_hint()}")
    if "cursor" not in value:
        raise CursorError(f"export cursor {where} has no \"cursor\" field; {_fix_hint()}")
    if not isinstance(value["cursor"], str):
        raise CursorError(f"export cursor {where}: \"cursor\" must be an ISO 8601 string; {_fix_hint()}")
    loaded_at = _instant_field(value["cursor"], '"cursor"', where)
    event_id = value.get("lastEventId")
    slug = value.get("lastSlug")
    if event_id is not None:
        if isinstance(event_id, bool) or not isinstance(event_id, int):
            raise CursorError(f"export cursor {where}: \"lastEventId\" must be an integer; {_fix_hint()}")
        if not isinstance(slug, str) or not slug:
            raise CursorError(
                f"export cursor {where}: \"lastEventId\" without a \"lastSlug\" string; {_fix_hint()}"
            )
    else:
        slug = None
    rows = value.get("rowsExported", 0)
    if rows is None:
        rows = 0
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 0:
        raise CursorError(f"export cursor {where}: \"rowsExported\" must be a non-negative integer; {_fix_hint()}")
    updated = value.get("updatedAt")
    updated_at = _instant_field(updated, '"updatedAt"', where) if isinstance(updated, str) and updated else None
    return ExportCursor(loaded_at, event_id, slug, rows, updated_at)


def _instant_field(text: str, what: str, where: str) -> datetime:
    try:
        return parse_instant(text)
    except ValueError:
        raise CursorError(f"export cursor {where}: {what} {text[:60]!r} is not an ISO 8601 instant; {_fix_hint()}") from None


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


# A run ------------------------------------------------------------------------------------------


@dataclass
class ExportRunRecord:
    """One export run as `export_runs` stores it and the Slack notice reports it."""

    run_id: str
    started_at: datetime
    sink: str
    format: str
    finished_at: datetime | None = None
    status: Literal["success", "failed"] | None = None
    rows_exported: int = 0
    batches: int = 0
    cursor_before: ExportCursor | None = None
    cursor_after: ExportCursor | None = None
    destination: str = ""
    error: str | None = None

    @property
    def cursor_before_text(self) -> str:
        return self.cursor_before.position if self.cursor_before else "beginning (no cursor yet)"

    @property
    def cursor_after_text(self) -> str:
        return self.cursor_after.position if self.cursor_after else "beginning (no cursor yet)"


def failures_in_a_row(statuses_newest_first: list[str]) -> int:
    """How many runs failed since the last success."""
    count = 0
    for status in statuses_newest_first:
        if status != "failed":
            break
        count += 1
    return count
