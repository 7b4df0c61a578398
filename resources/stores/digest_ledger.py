"""`digest_deliveries`: the digests' ledger, one row per (kind, period), so each digest is sent once
per period (contract section 6).

A send first *claims* the row (an atomic `update ... returning`: only a row not sent, and not being
sent by someone else right now, can be claimed), then records `sent` with the instant up to which
automation actions were listed (`actions_until`, where the next digest of its kind starts), or
`failed` with the attempt count and the last error. A claim whose process died is taken over after
`CLAIM_LEASE`. The store speaks of digest *kinds* and periods only; which job sends a kind is the
wiring's business.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from models.digests.periods import period_containing
from models.instants import as_utc
from models.readiness import DeliveryState, redact
from resources.stores.tables import TableSpec, ensure_tables
from resources.warehouse import Warehouse, WarehouseConnection

DELIVERIES = "digest_deliveries"
# A claim older than this belongs to a process that died mid-send; another run may take it over.
CLAIM_LEASE = timedelta(minutes=15)
# The retry sensor gives up on a period after this many send attempts (a person then re-runs it).
MAX_SEND_ATTEMPTS = 5


DIGEST_DELIVERIES = TableSpec(
    DELIVERIES,
    (
        ("kind", "text", False),
        ("period", "text", False),
        ("status", "text", False),  # pending | sending | sent | failed
        ("attempts", "int", False),
        ("sent_at", "ts", True),
        ("last_error", "text", True),
        ("actions_until", "ts", True),
        ("message_ref", "text", True),
        ("updated_at", "ts", False),
    ),
    ("kind", "period"),
)


def ensure_deliveries_table(conn: WarehouseConnection, schema: str) -> None:
    """The schema and `digest_deliveries`, created when missing."""
    ensure_tables(conn, schema, [DIGEST_DELIVERIES])


def claim_delivery(warehouse: Warehouse, kind: str, period: str, now: datetime) -> int | None:
    """Take the (kind, period) row for sending; returns the attempt number, or None when the period
    was sent already or another run is sending it now."""
    table = f"{warehouse.schema}.{DELIVERIES}"
    with warehouse.state_connect() as conn:
        ensure_deliveries_table(conn, warehouse.schema)
        conn.execute(
            f"insert into {table} (kind, period, status, attempts, updated_at) "
            "values (:kind, :period, 'pending', 0, :now) on conflict (kind, period) do nothing",
            {"kind": kind, "period": period, "now": now},
        )
        row = conn.fetchone(
            f"update {table} set status = 'sending', attempts = attempts + 1, updated_at = :now "
            "where kind = :kind and period = :period "
            "and (status in ('pending', 'failed') or (status = 'sending' and updated_at < :lease_start)) "
            "returning attempts",
            {"kind": kind, "period": period, "now": now, "lease_start": now - CLAIM_LEASE},
        )
    return int(row[0]) if row else None


def delivery_row(warehouse: Warehouse, kind: str, period: str) -> dict[str, Any] | None:
    with warehouse.state_connect() as conn:
        if not conn.table_exists(warehouse.schema, DELIVERIES):
            return None
        rows = conn.fetch_dicts(
            f"select * from {warehouse.schema}.{DELIVERIES} where kind = :kind and period = :period",
            {"kind": kind, "period": period},
        )
    return rows[0] if rows else None


def previous_actions_until(conn: WarehouseConnection, schema: str, kind: str) -> datetime | None:
    """Where the previous sent digest of this kind stopped listing actions (None: never sent)."""
    row = conn.fetchone(
        f"select max(actions_until) from {schema}.{DELIVERIES} where kind = :kind and status = 'sent'",
        {"kind": kind},
    )
    return as_utc(row[0]) if row else None


def record_sent(
    warehouse: Warehouse, kind: str, period: str, sent_at: datetime, actions_until: datetime, ref: str
) -> None:
    with warehouse.state_connect() as conn:
        conn.execute(
            f"update {warehouse.schema}.{DELIVERIES} set status = 'sent', sent_at = :sent_at, "
            "actions_until = :until, message_ref = :ref, last_error = null, updated_at = :sent_at "
            "where kind = :kind and period = :period",
            {"kind": kind, "period": period, "sent_at": sent_at, "until": actions_until, "ref": ref},
        )


def record_failed(warehouse: Warehouse, kind: str, period: str, error: str, now: datetime) -> None:
    with warehouse.state_connect() as conn:
        conn.execute(
            f"update {warehouse.schema}.{DELIVERIES} set status = 'failed', last_error = :error, "
            "updated_at = :now where kind = :kind and period = :period",
            {"kind": kind, "period": period, "error": redact(error, 1000), "now": now},
        )


def delivery_state(conn: WarehouseConnection, schema: str, kind: str) -> DeliveryState:
    """The last sent period of a kind and the state of its most recent period (readiness)."""
    if not conn.table_exists(schema, DELIVERIES):
        return DeliveryState(None, None, None, None, None)
    sent = conn.fetchone(
        f"select period, sent_at from {schema}.{DELIVERIES} where kind = :kind and status = 'sent' "
        "order by period desc limit 1",
        {"kind": kind},
    )
    latest = conn.fetchone(
        f"select period, status, last_error from {schema}.{DELIVERIES} where kind = :kind "
        "order by period desc limit 1",
        {"kind": kind},
    )
    return DeliveryState(
        last_sent_period=sent[0] if sent else None,
        last_sent_at=as_utc(sent[1]) if sent else None,
        latest_period=latest[0] if latest else None,
        latest_status=latest[1] if latest else None,
        latest_error=latest[2] if latest else None,
    )


def retryable_periods(
    conn: WarehouseConnection, schema: str, now: datetime, kinds: Iterable[str]
) -> list[tuple[str, str, int]]:
    """(kind, period, attempts) of the current periods of `kinds` whose send failed or was abandoned,
    with attempts left: what the retry sensor re-runs."""
    if not conn.table_exists(schema, DELIVERIES):
        return []
    out = []
    for kind in kinds:
        period = period_containing(kind, now).label  # type: ignore[arg-type]
        row = conn.fetchone(
            f"select status, attempts, updated_at from {schema}.{DELIVERIES} where kind = :kind and period = :period",
            {"kind": kind, "period": period},
        )
        if row is None or row[1] >= MAX_SEND_ATTEMPTS:
            continue
        status, attempts, updated_at = row[0], int(row[1]), as_utc(row[2])
        if status == "failed" or (status == "sending" and updated_at is not None and updated_at < now - CLAIM_LEASE):
            out.append((kind, period, attempts))
    return out
