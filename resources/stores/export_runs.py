"""`export_runs` (contract section 3): one row per export run, written when the run ends."""

from __future__ import annotations

from models.export_runs import ExportRunRecord, failures_in_a_row
from resources.stores.tables import TableSpec, ensure_tables, merge
from resources.warehouse import Warehouse, WarehouseConnection

EXPORT_RUNS = "export_runs"
# Statuses read to count the failures in a row: more than any escalation threshold needs.
STATUSES_READ = 50

EXPORT_RUNS_TABLE = TableSpec(
    EXPORT_RUNS,
    (
        ("run_id", "text", False),
        ("started_at", "ts", False),
        ("finished_at", "ts", True),
        ("status", "text", False),
        ("sink", "text", False),
        ("rows_exported", "bigint", False),
        ("batches", "int", False),
        ("cursor_before", "text", True),
        ("cursor_after", "text", True),
        ("error", "text", True),
    ),
    ("run_id",),
)


def ensure_export_runs(conn: WarehouseConnection, schema: str) -> None:
    """The schema and `export_runs`, created when missing."""
    ensure_tables(conn, schema, [EXPORT_RUNS_TABLE])


def record_export_run(warehouse: Warehouse, record: ExportRunRecord) -> int:
    """Store the run in `export_runs` (replacing a row of the same run id); returns how many runs in
    a row have now failed (0 after a success)."""
    row = (
        record.run_id,
        record.started_at,
        record.finished_at,
        record.status,
        record.sink,
        record.rows_exported,
        record.batches,
        record.cursor_before.to_json().strip() if record.cursor_before else None,
        record.cursor_after.to_json().strip() if record.cursor_after else None,
        record.error,
    )
    with warehouse.state_connect() as conn:
        ensure_export_runs(conn, warehouse.schema)
        merge(conn, warehouse.schema, EXPORT_RUNS_TABLE, [row], update=True)
        statuses = conn.fetchall(
            f"select status from {warehouse.schema}.{EXPORT_RUNS} order by started_at desc limit {STATUSES_READ}"
        )
    return failures_in_a_row([s[0] for s in statuses])
