"""The staged merge of changed rows on engines with `insert ... on conflict` (DuckDB, PostgreSQL):
the latest version of each key of a stage table into its raw table, in the caller's transaction."""

from __future__ import annotations

from models.source_tables import SourceTable
from resources.engines.base import WarehouseConnection, latest_version_sql


def merge_latest(conn: WarehouseConnection, table: SourceTable, raw: str, staged: str) -> int:
    """Upsert the latest version of each key of `staged` (a table or a subquery) into `raw`, writing
    only rows whose values changed; returns how many existing rows changed."""
    cols = table.column_names
    col_list = ", ".join(cols)
    # Latest version of each id (ON CONFLICT refuses to update one row twice in a statement).
    deduped = latest_version_sql(table, staged)
    others = [c for c in cols if c != table.key]
    diffs = " or ".join(f"t.{c} is distinct from d.{c}" for c in others)
    row = conn.fetchone(
        f"select count(*) from ({deduped}) d join {raw} t on t.{table.key} = d.{table.key} where {diffs}"
    )
    updates = ", ".join(f"{c} = excluded.{c}" for c in others)
    changed = " or ".join(f"{raw}.{c} is distinct from excluded.{c}" for c in others)
    conn.execute(
        f"insert into {raw} ({col_list}) select {col_list} from ({deduped}) d "
        f"on conflict ({table.key}) do update set {updates} where {changed}"
    )
    return int(row[0]) if row else 0
