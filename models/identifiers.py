"""SQL identifiers that come from settings: the schema names (WAREHOUSE_SCHEMA, SOURCE_SCHEMA).

They are spliced into SQL on two engines and into dbt's schema names, so the one safe rule is to
accept only plain identifiers: a quote, a semicolon or a space in one would be SQL (an injected
`pg_sleep` or `drop` ran on every read). PostgreSQL cuts names at 63 bytes: a longer one would
silently fold the `_raw` and `_staging` schemas into one. The warehouse schema is lower case
because dbt and DuckDB fold unquoted names; the app's source schema is always quoted, so its case
is kept.
"""

from __future__ import annotations

import re

PG_MAX_IDENTIFIER_BYTES = 63
_LOWER = re.compile(r"[a-z_][a-z0-9_]*")
_ANY_CASE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def schema_name_problem(value: str, suffixes: tuple[str, ...] = (), lower_case_only: bool = True) -> str | None:
    """Why `value` cannot be a schema name (with each of `suffixes` appended), or None when it can."""
    pattern = _LOWER if lower_case_only else _ANY_CASE
    if not pattern.fullmatch(value or ""):
        letters = "lower-case letters" if lower_case_only else "letters"
        return f"must be a plain identifier ({letters}, digits and _, not starting with a digit), got {value!r}"
    longest = max((len((value + suffix).encode()) for suffix in ("", *suffixes)), default=0)
    if longest > PG_MAX_IDENTIFIER_BYTES:
        room = PG_MAX_IDENTIFIER_BYTES - max((len(s) for s in suffixes), default=0)
        return f"is {len(value)} characters; at most {room} (PostgreSQL keeps {PG_MAX_IDENTIFIER_BYTES} bytes "\
            f"of a name, with the {'/'.join(suffixes) or 'no'} suffix)"
    return None
