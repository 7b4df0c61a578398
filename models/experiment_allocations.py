"""The intended traffic split of each slug (the dbt seed `experiment_allocations`, edited by
merchandising: slug, variant_key, weight), checked before anything uses it.

An SRM test against a bad split is worse than none: a negative weight gave a NaN p-value that
compared as "no mismatch" (status `ok`), a duplicate row silently replaced another. The rules:
every weight a number >= 0 (relative: 1 and 3 split 25/75), one row per (slug, variant_key), a
listed slug's weights add up to more than 0; a row that breaks one is refused, named by its line in
the file (or its key in the warehouse table). A slug no exposure has is not an error (the seed may
be written before the experiment starts) but is named, since it is often a typo.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

COLUMNS = ("slug", "variant_key", "weight")
# The seed's weight column is numeric(18,6).
MAX_WEIGHT = Decimal("1e12")
RULES = "weights are numbers >= 0, one row per (slug, variant_key)"


class AllocationError(ValueError):
    """A bad allocations row, in one line: where it is (file and line, or table and key) and why."""


@dataclass(frozen=True)
class AllocationRow:
    slug: object
    variant_key: object
    weight: object
    where: str  # "line 3", or "row (slug 'x', variant_key 'b')"


def parse_allocations_csv(text: str, name: str) -> list[AllocationRow]:
    """The rows of the seed file `name` (its path, for messages), each with its line number."""
    reader = csv.reader(io.StringIO(text.removeprefix("\ufeff")))
    header = next(reader, None)
    if header is None or tuple(h.strip() for h in header) != COLUMNS:
        raise AllocationError(f"{name} line 1: the header must be {','.join(COLUMNS)}, found {','.join(header or [])!r}")
    rows = []
    for fields in reader:
        if not fields or all(not f.strip() for f in fields):
            continue
        where = f"line {reader.line_num}"
        if len(fields) != len(COLUMNS):
            raise AllocationError(f"{name} {where}: {len(fields)} fields, expected 3 ({','.join(COLUMNS)})")
        rows.append(AllocationRow(fields[0], fields[1], fields[2], where))
    return rows


def validated_allocations(rows: Iterable[AllocationRow], name: str) -> dict[str, dict[str, float]]:
    """slug -> {variant_key: weight} when every row keeps the rules (module docstring), else an
    `AllocationError` naming the first row that does not (`name`: the file or table)."""
    allocations: dict[str, dict[str, float]] = {}
    first_row: dict[tuple[str, str], str] = {}
    slug_where: dict[str, str] = {}
    for row in rows:
        for column in ("slug", "variant_key"):
            value = getattr(row, column)
            if not isinstance(value, str) or value == "":
                raise AllocationError(f"{name} {row.where}: {column} is empty; {RULES}")
        slug, key = str(row.slug), str(row.variant_key)
        weight = _weight(row.weight)
        if weight is None:
            raise AllocationError(f"{name} {row.where}: weight {_shown(row.weight)} of {slug}/{key} is not a number; "
                                  f"{RULES}")
        if weight < 0:
            raise AllocationError(f"{name} {row.where}: weight {_shown(row.weight)} of {slug}/{key} is negative; "
                                  f"{RULES}")
        if weight >= MAX_WEIGHT:
            raise AllocationError(f"{name} {row.where}: weight {_shown(row.weight)} of {slug}/{key} is too large "
                                  "(weights are relative: 1 and 3 split 25/75)")
        if (slug, key) in first_row:
            raise AllocationError(f"{name} {row.where}: {slug}/{key} is listed twice (also {first_row[slug, key]}); "
                                  f"{RULES}")
        first_row[slug, key] = row.where
        slug_where.setdefault(slug, row.where)
        allocations.setdefault(slug, {})[key] = float(weight)
    for slug, weights in allocations.items():
        if sum(weights.values()) <= 0:
            raise AllocationError(f"{name} {slug_where[slug]}: every weight of slug {slug} is 0 (no arm expected to get "
                                  "a journey); give the arms their shares, or remove the slug for an equal split")
    return allocations


def unknown_slugs(allocations: Mapping[str, object], known: Iterable[str]) -> list[str]:
    """Slugs the allocations name that no exposure has, sorted."""
    return sorted(set(allocations) - set(known))


def _weight(value: object) -> Decimal | None:
    """The weight as an exact finite number, None when it is not one."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    try:
        number = Decimal(str(value).strip()) if isinstance(value, str) else Decimal(value)  # type: ignore[arg-type]
    except (InvalidOperation, TypeError, ValueError):
        return None
    return number if number.is_finite() else None


def _shown(value: object) -> str:
    return repr(value) if isinstance(value, str) else str(value)
