"""Where the export stands: a row's key in the export order and the cursor after the last
acknowledged row, with its JSON form (contract section 5) and the errors an unreadable one raises."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from models.instants import format_instant, parse_instant


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
