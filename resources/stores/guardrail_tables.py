"""The guardrail job's tables in the warehouse, declared once.

Contract tables (section 3): `guardrail_followups`, `provider_automation_state`, `automation_runs`.
Two more are this job's own bookkeeping:
- `guardrail_evaluated_windows`: per provider, the latest window automation has evaluated, so a
  window is acted on once;
- `guardrail_notifications`: every Slack message (and, for follow-ups, the app API POST) is recorded
  here in the same transaction as the decision that caused it, with a delivery status per channel;
  delivery happens after the commit and a failure is retried by the next run, so a crash neither
  loses a message nor repeats a pause.
"""

from __future__ import annotations

from models.marts import PROVIDER_GUARDRAIL_STATUS
from resources.stores.tables import TableSpec, ensure_tables
from resources.warehouse import Warehouse, WarehouseConnection

STATUS_MART = PROVIDER_GUARDRAIL_STATUS
FOLLOWUPS = "guardrail_followups"
STATE = "provider_automation_state"
RUNS = "automation_runs"
EVALUATED = "guardrail_evaluated_windows"
NOTIFICATIONS = "guardrail_notifications"

# Serialises guardrail writers on Postgres. The run queue's warehouse_writer limit already keeps
# two Dagster runs apart; this lock is for what the queue does not see: a hand-run
# `pricing-ops guardrails ...` (in-process, outside the queue) and a second host. (DuckDB already
# allows one writing process per file.)
_LOCK_NAME = "pricing_ops.guardrails"

TABLES: dict[str, TableSpec] = {spec.name: spec for spec in (
    TableSpec(
        FOLLOWUPS,
        (
            ("id", "text", False),
            ("provider_id", "text", False),
            ("provider_name", "text", True),
            ("experiment_slug", "text", True),
            ("variant_key", "text", True),
            ("action", "text", False),
            ("status_after", "text", False),
            ("severity", "text", True),
            ("guardrail_failures", "int", True),
            ("replay_failures", "int", True),
            ("replay_total", "int", True),
            ("notes", "text", True),
            ("actor", "text", False),
            ("conversion_cursor", "text", True),
            ("conversion_link", "text", False),
            ("telemetry_window_end", "ts", True),
            ("created_at", "ts", False),
        ),
        ("id",),
    ),
    TableSpec(
        STATE,
        (
            ("provider_id", "text", False),
            ("status", "text", False),
            ("paused_by", "text", True),
            ("updated_at", "ts", False),
            ("last_followup_id", "text", True),
        ),
        ("provider_id",),
    ),
    TableSpec(
        RUNS,
        (
            ("run_id", "text", False),
            ("ran_at", "ts", False),
            ("providers_evaluated", "int", False),
            ("warnings", "int", False),
            ("criticals", "int", False),
            ("auto_paused", "int", False),
            ("auto_resumed", "int", False),
            ("summary", "text", False),
        ),
        ("run_id",),
    ),
    TableSpec(
        EVALUATED,
        (
            ("provider_id", "text", False),
            ("window_end", "ts", False),
            ("severity", "text", False),
            ("evaluated_at", "ts", False),
            ("run_id", "text", False),
        ),
        ("provider_id",),
    ),
    TableSpec(
        NOTIFICATIONS,
        (
            ("id", "text", False),
            ("kind", "text", False),
            ("provider_id", "text", False),
            ("followup_id", "text", True),
            ("telemetry_window_end", "ts", True),
            ("text", "text", False),
            ("created_at", "ts", False),
            ("run_id", "text", True),
            ("slack_status", "text", False),  # pending | sent | failed
            ("slack_attempts", "int", False),
            ("slack_ref", "text", True),  # message ts or outbox file
            ("slack_error", "text", True),
            ("slack_sent_at", "ts", True),
            ("api_status", "text", False),  # pending | sent | failed | skipped
            ("api_attempts", "int", False),
            ("api_error", "text", True),
            ("api_sent_at", "ts", True),
            ("claimed_by", "text", True),  # the delivery pass sending it now (two runs never both send)
            ("claimed_at", "ts", True),
        ),
        ("id",),
    ),
)}


def create_sql(schema: str, table: str, engine) -> str:
    """The DDL of one guardrail table (tests create the tables through this, never by hand)."""
    return TABLES[table].create_sql(schema, engine)


def ensure_guardrail_tables(conn: WarehouseConnection, schema: str) -> None:
    """The guardrail tables, created when missing."""
    ensure_tables(conn, schema, TABLES.values())


def begin_exclusive(warehouse: Warehouse, conn: WarehouseConnection) -> None:
    """Take the guardrail writer lock (Postgres) and make sure the tables exist."""
    conn.lock(_LOCK_NAME)
    ensure_guardrail_tables(conn, warehouse.schema)
