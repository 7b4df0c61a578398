"""Guardrail deliveries: claiming the notifications still to send, and recording how each went.

Two delivery passes never send the same message: a pass claims rows first (`claimed_by`), and a
claim older than `STALE_CLAIM` belongs to a pass that died, so its messages are sent again.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from models.guardrails import FOLLOWUP_COLUMNS
from resources.stores.guardrail_tables import FOLLOWUPS, NOTIFICATIONS
from resources.stores.tables import stage, unstage
from resources.warehouse import Warehouse, WarehouseConnection

# A delivery that keeps failing is retried by this many runs, then left as `failed` for a person.
MAX_DELIVERY_ATTEMPTS = 20
# A claim older than this belongs to a delivery pass that died: its messages are sent again.
STALE_CLAIM = timedelta(minutes=10)


# Deliveries -------------------------------------------------------------------------------------------
def slack_due(row: dict[str, Any]) -> bool:
    return row["slack_status"] in ("pending", "failed") and row["slack_attempts"] < MAX_DELIVERY_ATTEMPTS


def api_due(row: dict[str, Any]) -> bool:
    return row["api_status"] in ("pending", "failed") and row["api_attempts"] < MAX_DELIVERY_ATTEMPTS


_DUE = (
    f"((n.slack_status in ('pending', 'failed') and n.slack_attempts < {MAX_DELIVERY_ATTEMPTS})"
    f" or (n.api_status in ('pending', 'failed') and n.api_attempts < {MAX_DELIVERY_ATTEMPTS}))"
)


def claim_deliveries(
    warehouse: Warehouse, conn: WarehouseConnection, claim: str, now: datetime
) -> list[dict[str, Any]]:
    """Claim the notifications with a channel still to deliver and return them, oldest first, each with
    its follow-up's columns. Rows another live pass claimed are left to it (call under `begin_exclusive`)."""
    table = f"{warehouse.schema}.{NOTIFICATIONS}"
    conn.execute(
        f"""
        update {table} as n set claimed_by = :claim, claimed_at = :now
        where {_DUE} and (n.claimed_by is null or n.claimed_at < :stale)
        """,
        {"claim": claim, "now": now, "stale": now - STALE_CLAIM},
    )
    followup_columns = ", ".join(f"f.{c} as f_{c}" for c in FOLLOWUP_COLUMNS)
    return conn.fetch_dicts(
        f"""
        select n.id, n.kind, n.provider_id, n.followup_id, n.text, n.slack_status, n.slack_attempts,
               n.api_status, n.api_attempts, {followup_columns}
        from {table} as n
        left join {warehouse.schema}.{FOLLOWUPS} as f on f.id = n.followup_id
        where n.claimed_by = :claim
        order by n.created_at, n.id
        """,
        {"claim": claim},
    )


def release_claim(warehouse: Warehouse, conn: WarehouseConnection, claim: str) -> None:
    """Hand back what a pass claimed and did not send (left for the next run)."""
    conn.execute(
        f"update {warehouse.schema}.{NOTIFICATIONS} set claimed_by = null, claimed_at = null where claimed_by = :c",
        {"c": claim},
    )


_RESULT_COLUMNS = (
    ("id", "text", False),
    ("ok", "int", False),
    ("ref", "text", True),
    ("error", "text", True),
    ("at", "ts", False),
)


def record_deliveries(
    warehouse: Warehouse, conn: WarehouseConnection, results: Sequence[dict[str, Any]]
) -> None:
    """Write delivery outcomes (`id`, `channel` slack|api, `ok`, `ref`, `error`, `at`) in one statement per channel."""
    table = f"{warehouse.schema}.{NOTIFICATIONS}"
    for channel in ("slack", "api"):
        rows = [
            (r["id"], 1 if r["ok"] else 0, r.get("ref"), (r.get("error") or "")[:1000] or None, r["at"])
            for r in results
            if r["channel"] == channel
        ]
        if not rows:
            continue
        staged = stage(conn, f"_stage_{channel}_results", _RESULT_COLUMNS, rows)
        ref = ", slack_ref = case when r.ok = 1 then r.ref else t.slack_ref end" if channel == "slack" else ""
        try:
            conn.execute(
                f"""
                update {table} as t set
                  {channel}_status = case when r.ok = 1 then 'sent' else 'failed' end,
                  {channel}_attempts = t.{channel}_attempts + 1,
                  {channel}_error = case when r.ok = 1 then null else r.error end,
                  {channel}_sent_at = case when r.ok = 1 then r.at else t.{channel}_sent_at end{ref}
                from {staged} as r
                where t.id = r.id
                """
            )
        finally:
            unstage(conn, staged)


def followup_from_prefixed(row: dict[str, Any]) -> dict[str, Any]:
    """The follow-up columns of a `pending_deliveries` row, unprefixed."""
    return {c: row[f"f_{c}"] for c in FOLLOWUP_COLUMNS}
