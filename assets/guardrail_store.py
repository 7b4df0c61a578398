"""The guardrail job's tables in the warehouse: reads, and writes applied in one transaction.

Contract tables (section 3): `guardrail_followups`, `provider_automation_state`, `automation_runs`.
Two more are this job's own bookkeeping:
- `guardrail_evaluated_windows`: per provider, the latest window automation has evaluated, so a
  window is acted on once;
- `guardrail_notifications`: every Slack message (and, for follow-ups, the app API POST) is recorded
  here in the same transaction as the decision that caused it, with a delivery status per channel;
  delivery happens after the commit and a failure is retried by the next run, so a crash neither
  loses a message nor repeats a pause.

Bulk writes go through a staged relation (an Arrow table registered in DuckDB, a temp table filled
by COPY on Postgres) merged with `insert ... on conflict`: 10,000 rows in well under a second where
row-by-row inserts would take seconds.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import Any

import pyarrow as pa

from models.guardrails import (
    FOLLOWUP_COLUMNS,
    SEVERITIES,
    AutomationState,
    EvaluationPlan,
    EvaluationTotals,
    FollowUp,
    Notification,
    StatusRow,
)
from resources.warehouse import Warehouse, WarehouseConnection

STATUS_MART = "provider_guardrail_status"
FOLLOWUPS = "guardrail_followups"
STATE = "provider_automation_state"
RUNS = "automation_runs"
EVALUATED = "guardrail_evaluated_windows"
NOTIFICATIONS = "guardrail_notifications"

# Serialises guardrail writers on Postgres (DuckDB already allows one writing process per file).
_PG_LOCK_KEY = 7_245_119_301

# A delivery that keeps failing is retried by this many runs, then left as `failed` for a person.
MAX_DELIVERY_ATTEMPTS = 20
# A claim older than this belongs to a delivery pass that died: its messages are sent again.
STALE_CLAIM = timedelta(minutes=10)

_T = {"text": ("varchar", "text"), "int": ("integer", "integer"), "ts": ("timestamptz", "timestamptz")}

TABLES: dict[str, tuple[tuple[tuple[str, str, bool], ...], str]] = {
    FOLLOWUPS: (
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
        "id",
    ),
    STATE: (
        (
            ("provider_id", "text", False),
            ("status", "text", False),
            ("paused_by", "text", True),
            ("updated_at", "ts", False),
            ("last_followup_id", "text", True),
        ),
        "provider_id",
    ),
    RUNS: (
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
        "run_id",
    ),
    EVALUATED: (
        (
            ("provider_id", "text", False),
            ("window_end", "ts", False),
            ("severity", "text", False),
            ("evaluated_at", "ts", False),
            ("run_id", "text", False),
        ),
        "provider_id",
    ),
    NOTIFICATIONS: (
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
        "id",
    ),
}

_ARROW = {"text": pa.string(), "int": pa.int64(), "ts": pa.timestamp("us", tz="UTC")}


def columns_of(table: str) -> list[str]:
    return [name for name, _, _ in TABLES[table][0]]


def create_sql(schema: str, table: str, engine: str) -> str:
    columns, key = TABLES[table]
    index = 0 if engine == "duckdb" else 1
    lines = [
        f"  {name} {_T[kind][index]}{'' if nullable else ' not null'}" for name, kind, nullable in columns
    ]
    lines.append(f"  primary key ({key})")
    return f"create table if not exists {schema}.{table} (\n" + ",\n".join(lines) + "\n)"


def begin_exclusive(warehouse: Warehouse, conn: WarehouseConnection) -> None:
    """Take the guardrail writer lock (Postgres) and make sure the tables exist."""
    if conn.kind == "postgres":
        conn.execute("select pg_advisory_xact_lock(:key)", {"key": _PG_LOCK_KEY})
    conn.execute(f"create schema if not exists {warehouse.schema}")
    for table in TABLES:
        conn.execute(create_sql(warehouse.schema, table, conn.kind))


# Reads ------------------------------------------------------------------------------------------------
_STATUS_COLUMNS = (
    "provider_id, provider_name, platform, experiment_slug, variant_key, window_start, window_end, "
    "guardrail_failures, replay_failures, replay_total, severity, reasons"
)


def _status_row(r: tuple) -> StatusRow:
    return StatusRow(
        provider_id=r[0],
        provider_name=r[1],
        platform=r[2],
        experiment_slug=r[3],
        variant_key=r[4],
        window_start=r[5],
        window_end=r[6],
        guardrail_failures=int(r[7] or 0),
        replay_failures=int(r[8] or 0),
        replay_total=int(r[9] or 0),
        severity=r[10],
        reasons=r[11],
    )


def _require_mart(warehouse: Warehouse, conn: WarehouseConnection) -> None:
    if not conn.table_exists(warehouse.schema, STATUS_MART):
        raise LookupError(
            f"table {warehouse.schema}.{STATUS_MART} does not exist on {warehouse.describe()}; build it with "
            "`pricing-ops refresh` (or materialize provider_guardrail_status in the Dagster UI) first"
        )


# A window is new when automation has not evaluated the provider yet or the window ends later.
_NEW_WINDOW = "(e.window_end is null or m.window_end > e.window_end)"
_KNOWN_SEVERITY = "m.severity in (" + ", ".join(f"'{s}'" for s in SEVERITIES) + ")"


def load_candidates(
    warehouse: Warehouse, conn: WarehouseConnection
) -> tuple[list[StatusRow], dict[str, datetime], EvaluationTotals]:
    """The latest windows that may need an action, the last window evaluated for each, and the totals.

    Left out in SQL, so 10,000 providers cost little: windows already evaluated, and ok windows of
    providers that are not paused (nothing can happen to them). The rules themselves stay in
    `models.guardrails.plan_evaluation`, which sees every row that could matter.
    """
    _require_mart(warehouse, conn)
    mart, evaluated, state = (f"{warehouse.schema}.{t}" for t in (STATUS_MART, EVALUATED, STATE))
    totals = conn.fetchone(
        f"""
        select count(*),
               coalesce(sum(case when m.severity = 'critical' then 1 else 0 end), 0),
               coalesce(sum(case when m.severity = 'warning' then 1 else 0 end), 0),
               coalesce(sum(case when {_NEW_WINDOW} and {_KNOWN_SEVERITY} then 1 else 0 end), 0)
        from {mart} as m
        left join {evaluated} as e on e.provider_id = m.provider_id
        """
    )
    # window_start is not needed to decide; leaving it out halves the timestamp conversions.
    rows = conn.fetchall(
        f"""
        select m.provider_id, m.provider_name, m.platform, m.experiment_slug, m.variant_key, null as window_start,
               m.window_end, m.guardrail_failures, m.replay_failures, m.replay_total, m.severity, m.reasons,
               e.window_end as last_evaluated
        from {mart} as m
        left join {evaluated} as e on e.provider_id = m.provider_id
        left join {state} as s on s.provider_id = m.provider_id
        where {_NEW_WINDOW} and not (m.severity = 'ok' and coalesce(s.status, 'active') <> 'paused')
        """
    )
    last = {r[0]: r[12] for r in rows if r[12] is not None}
    return [_status_row(r) for r in rows], last, EvaluationTotals(*(int(v) for v in totals))


def mark_windows_evaluated(
    warehouse: Warehouse, conn: WarehouseConnection, run_id: str, ran_at: datetime
) -> None:
    """Record every provider's new latest window as evaluated (in SQL: no row goes through Python)."""
    mart, evaluated = f"{warehouse.schema}.{STATUS_MART}", f"{warehouse.schema}.{EVALUATED}"
    conn.execute(
        f"""
        insert into {evaluated} (provider_id, window_end, severity, evaluated_at, run_id)
        select m.provider_id, m.window_end, m.severity, cast(:ran_at as timestamptz), cast(:run_id as text)
        from {mart} as m
        left join {evaluated} as e on e.provider_id = m.provider_id
        where {_NEW_WINDOW} and {_KNOWN_SEVERITY}
        on conflict (provider_id) do update set
          window_end = excluded.window_end, severity = excluded.severity,
          evaluated_at = excluded.evaluated_at, run_id = excluded.run_id
        """,
        {"ran_at": ran_at, "run_id": run_id},
    )


def load_status_rows(
    warehouse: Warehouse, conn: WarehouseConnection, provider_id: str | None = None
) -> list[StatusRow]:
    """The `provider_guardrail_status` mart (one provider's row when `provider_id` is given)."""
    _require_mart(warehouse, conn)
    where, params = ("", None) if provider_id is None else (" where provider_id = :p", {"p": provider_id})
    rows = conn.fetchall(f"select {_STATUS_COLUMNS} from {warehouse.schema}.{STATUS_MART}{where}", params)
    return [_status_row(r) for r in rows]


def load_states(
    warehouse: Warehouse, conn: WarehouseConnection, provider_id: str | None = None
) -> dict[str, AutomationState]:
    where, params = ("", None) if provider_id is None else (" where provider_id = :p", {"p": provider_id})
    rows = conn.fetchall(
        f"select provider_id, status, paused_by, updated_at, last_followup_id from {warehouse.schema}.{STATE}{where}",
        params,
    )
    return {r[0]: AutomationState(*r) for r in rows}


def load_provider_name(
    warehouse: Warehouse, conn: WarehouseConnection, provider_id: str
) -> tuple[bool, str | None]:
    """Whether the warehouse knows the provider (raw providers table), and its name."""
    if not conn.table_exists(warehouse.raw_schema, "fulfillment_providers"):
        return False, None
    row = conn.fetchone(
        f"select name from {warehouse.raw_schema}.fulfillment_providers where id = :p", {"p": provider_id}
    )
    return (row is not None), (row[0] if row else None)


def paused_providers(
    warehouse: Warehouse, conn: WarehouseConnection, limit: int = 50
) -> tuple[int, list[dict[str, Any]]]:
    """How many providers are paused now, and the most recently paused ones with who paused them."""
    total = conn.fetchone(f"select count(*) from {warehouse.schema}.{STATE} where status = 'paused'")[0]
    rows = conn.fetch_dicts(
        f"""
        select s.provider_id, f.provider_name, s.paused_by, s.updated_at as paused_at, f.experiment_slug, f.notes
        from {warehouse.schema}.{STATE} as s
        left join {warehouse.schema}.{FOLLOWUPS} as f on f.id = s.last_followup_id
        where s.status = 'paused'
        order by s.updated_at desc, s.provider_id
        limit {int(limit)}
        """
    )
    return int(total), rows


# Writes -----------------------------------------------------------------------------------------------
def _stage(conn: WarehouseConnection, name: str, table: str | tuple, rows: Sequence[tuple]) -> str:
    """Make `rows` (in the column order of `table`, a table name or a column spec) selectable as `name`."""
    columns = TABLES[table][0] if isinstance(table, str) else table
    if conn.kind == "duckdb":
        values = list(zip(*rows))  # row tuples -> column tuples
        arrays = [pa.array(values[i], type=_ARROW[kind]) for i, (_, kind, _) in enumerate(columns)]
        conn.raw.register(name, pa.Table.from_arrays(arrays, names=[c[0] for c in columns]))
        return name
    ddl = ", ".join(f"{col} {_T[kind][1]}" for col, kind, _ in columns)
    conn.execute(f"create temp table {name} ({ddl}) on commit drop")
    with (
        conn.raw.cursor() as cur,
        cur.copy(f"copy {name} ({', '.join(c[0] for c in columns)}) from stdin") as copy,
    ):
        for row in rows:
            copy.write_row(row)
    return name


def _unstage(conn: WarehouseConnection, name: str) -> None:
    if conn.kind == "duckdb":
        conn.raw.unregister(name)
    else:
        conn.execute(f"drop table if exists {name}")


def _merge(
    warehouse: Warehouse, conn: WarehouseConnection, table: str, rows: Sequence[tuple], update: bool
) -> None:
    """Insert rows by primary key: new keys are added; existing keys are updated or left alone."""
    if not rows:
        return
    columns, key = TABLES[table]
    names = [c[0] for c in columns]
    stage = _stage(conn, f"_stage_{table}", table, rows)
    try:
        action = (
            "do update set " + ", ".join(f"{n} = excluded.{n}" for n in names if n != key)
            if update
            else "do nothing"
        )
        conn.execute(
            f"insert into {warehouse.schema}.{table} ({', '.join(names)}) "
            f"select {', '.join(names)} from {stage} on conflict ({key}) {action}"
        )
    finally:
        _unstage(conn, stage)


def _notification_rows(
    notifications: Iterable[Notification], run_id: str | None, api_enabled: bool
) -> list[tuple]:
    return [
        (
            n.id,
            n.kind,
            n.provider_id,
            n.followup_id,
            n.telemetry_window_end,
            n.text,
            n.created_at,
            run_id,
            "pending",
            0,
            None,
            None,
            None,
            "pending" if (api_enabled and n.followup_id) else "skipped",
            0,
            None,
            None,
            None,
            None,
        )
        for n in notifications
    ]


def _state_rows(states: Iterable[AutomationState]) -> list[tuple]:
    return [(s.provider_id, s.status, s.paused_by, s.updated_at, s.last_followup_id) for s in states]


def apply_plan(
    warehouse: Warehouse, conn: WarehouseConnection, plan: EvaluationPlan, api_enabled: bool
) -> None:
    """Record an evaluation: follow-ups, states, notifications to send, windows evaluated, the run row."""
    _merge(warehouse, conn, FOLLOWUPS, [f.as_row() for f in plan.followups], update=False)
    _merge(warehouse, conn, STATE, _state_rows(plan.states), update=True)
    _merge(
        warehouse,
        conn,
        NOTIFICATIONS,
        _notification_rows(plan.notifications, plan.run_id, api_enabled),
        False,
    )
    mark_windows_evaluated(warehouse, conn, plan.run_id, plan.ran_at)
    _merge(
        warehouse,
        conn,
        RUNS,
        [
            (
                plan.run_id,
                plan.ran_at,
                plan.providers_evaluated,
                plan.warnings,
                plan.criticals,
                len(plan.paused),
                len(plan.resumed),
                plan.summary(),
            )
        ],
        update=True,
    )


def record_followup(
    warehouse: Warehouse,
    conn: WarehouseConnection,
    followup: FollowUp,
    state: AutomationState,
    notification: Notification,
    api_enabled: bool,
) -> None:
    """Record an operator's follow-up, the provider's new state and its message, together."""
    _merge(warehouse, conn, FOLLOWUPS, [followup.as_row()], update=False)
    _merge(warehouse, conn, STATE, _state_rows([state]), update=True)
    _merge(
        warehouse, conn, NOTIFICATIONS, _notification_rows([notification], None, api_enabled), update=False
    )


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
        stage = _stage(conn, f"_stage_{channel}_results", _RESULT_COLUMNS, rows)
        ref = ", slack_ref = case when r.ok = 1 then r.ref else t.slack_ref end" if channel == "slack" else ""
        try:
            conn.execute(
                f"""
                update {table} as t set
                  {channel}_status = case when r.ok = 1 then 'sent' else 'failed' end,
                  {channel}_attempts = t.{channel}_attempts + 1,
                  {channel}_error = case when r.ok = 1 then null else r.error end,
                  {channel}_sent_at = case when r.ok = 1 then r.at else t.{channel}_sent_at end{ref}
                from {stage} as r
                where t.id = r.id
                """
            )
        finally:
            _unstage(conn, stage)


def followup_from_prefixed(row: dict[str, Any]) -> dict[str, Any]:
    """The follow-up columns of a `pending_deliveries` row, unprefixed."""
    return {c: row[f"f_{c}"] for c in FOLLOWUP_COLUMNS}
