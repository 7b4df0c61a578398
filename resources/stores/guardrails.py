"""The guardrail store: what automation reads (candidates, states, the status mart) and the writes
of an evaluation or a follow-up, each applied in the caller's transaction (`begin_exclusive` first).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from models.guardrails import (
    SEVERITIES,
    AutomationState,
    EvaluationPlan,
    EvaluationTotals,
    FollowUp,
    Notification,
    StatusRow,
)
from models.source_tables import PROVIDER_GUARDRAIL_TELEMETRY
from models.telemetry_cursor import TelemetryCursor
from resources.stores.guardrail_tables import (
    EVALUATED,
    FOLLOWUPS,
    NOTIFICATIONS,
    RUNS,
    STATE,
    STATUS_MART,
    TABLES,
)
from resources.stores.tables import merge
from resources.warehouse import Warehouse, WarehouseConnection


def _merge(warehouse: Warehouse, conn: WarehouseConnection, table: str, rows, update: bool) -> None:
    merge(conn, warehouse.schema, TABLES[table], rows, update)


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


def evaluated_telemetry(warehouse: Warehouse, lookback: timedelta) -> TelemetryCursor | None:
    """The telemetry windows the warehouse holds (what an evaluation just read through the mart), as
    a sensor cursor: the newest `recorded_at` and the ids within `lookback` of it."""
    raw = f"{warehouse.raw_schema}.{PROVIDER_GUARDRAIL_TELEMETRY.name}"
    with warehouse.connect() as conn:
        if not conn.table_exists(warehouse.raw_schema, PROVIDER_GUARDRAIL_TELEMETRY.name):
            return None
        [latest] = conn.fetchone(f"select max(recorded_at) from {raw}")
        if latest is None:
            return None
        rows = conn.fetchall(f"select id, recorded_at from {raw} where recorded_at >= :since", {"since": latest - lookback})
    return TelemetryCursor.of_windows(rows, lookback)


# Writes ----------------------------------------------------------------------------------------------
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


