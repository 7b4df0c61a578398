"""DuckDB literals for values the generator inlines into its SQL (lists indexed by a hash)."""

from __future__ import annotations

from collections.abc import Sequence


def sql_literal(value: object) -> str:
    """A DuckDB literal of a None, bool, int or text value (text quoted, quotes doubled)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return "'" + str(value).replace("'", "''") + "'"


def sql_list(values: Sequence[object], cast: str | None = None) -> str:
    """A DuckDB list literal; index it 1-based: `[...][i + 1]`."""
    body = "[" + ", ".join(sql_literal(v) for v in values) + "]"
    return f"({body}::{cast}[])" if cast else body
