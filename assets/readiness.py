"""The readiness report: probes of the warehouse, the source, the marts' last builds and the state
tables, turned into components by `models/readiness.py`. `pricing-ops readyz` prints it as JSON;
each component shows in the UI as an asset check on the assets it judges (`build_readiness_checks`).
"""

# No `from __future__ import annotations`: Dagster reads the asset context annotation at runtime.
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import dagster as dg

from assets.dbt_keys import mart_key
from assets.digests import EMAIL_DIGEST_KEY, DigestOptions, delivery_state
from assets.experiments import HEALTH_KEY
from assets.export import EXPORT_ASSET_KEY
from assets.guardrails import GUARDRAIL_ACTIONS_KEY
from models.digests.periods import period_containing
from models.instants import as_utc
from models.marts import EXPERIMENT_HEALTH, MART_TABLES, SEGMENTS_MART
from models.readiness import (
    COMPONENTS,
    CONVERSION_MART,
    Component,
    ExportRun,
    FailingTest,
    GuardrailRun,
    ReadinessReport,
    experiments_component,
    export_component,
    guardrails_component,
    marts_component,
    redact,
    source_component,
    timed_out,
    warehouse_component,
    weekly_digest_component,
)
from models.source_tables import SOURCE_TABLES
from resources.raw_tables import raw_asset_key
from resources.source import SourceDatabase
from resources.stores.export_runs import EXPORT_RUNS
from resources.stores.guardrail_tables import RUNS as AUTOMATION_RUNS
from resources.stores.guardrail_tables import STATE as AUTOMATION_STATE
from resources.warehouse import Warehouse, WarehouseConnection

READINESS_CHECKS = "readiness_checks"
# How long a probe may take when the caller sets no READYZ_TIMEOUT.
DEFAULT_TIMEOUT_S = 10.0
# The job whose dbt tests say whether the warehouse holds what its models promise.
REFRESH_JOB = "refresh"
# Enough history to count failures in a row far past the escalation threshold.
EXPORT_RUNS_READ = 50


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _is_lock_wait(exc: BaseException) -> bool:
    """A PostgreSQL statement cancelled by lock_timeout or statement_timeout."""
    import psycopg

    return isinstance(exc, (psycopg.errors.LockNotAvailable, psycopg.errors.QueryCanceled))


def probe_source(source: SourceDatabase, timeout_s: float = DEFAULT_TIMEOUT_S) -> Component:
    """The source's tables readable: missing ones named, and on PostgreSQL locked ones too (each
    read waits a share of `timeout_s` for its lock, never longer)."""
    kind, location = source.kind, source.describe()
    if not source.has_tables:
        return source_component(kind, location, [], None)
    missing, locked = [], []
    lock_wait = max(0.2, timeout_s / (len(SOURCE_TABLES) + 1))
    try:
        with source.connect() as conn:
            conn.bound_waits(lock_wait, 2 * lock_wait)  # a lock wait ends first, as such
            for table in SOURCE_TABLES:
                try:
                    conn.fetchall(f"select 1 from {source.table(table.name)} limit 0")
                except Exception as exc:  # noqa: BLE001 - the source connection is autocommit: a failed probe spoils nothing
                    (locked if _is_lock_wait(exc) else missing).append(table.name)
    except Exception as exc:  # noqa: BLE001 - a probe reports any failure as not ready
        return source_component(kind, location, [], _error(exc))
    return source_component(kind, location, missing, None, locked, lock_wait)


def mart_build_times(
    conn: WarehouseConnection, schema: str, instance: dg.DagsterInstance | None
) -> tuple[list[str], dict[str, datetime | None], str]:
    """Missing marts, and when each was last built: from the Dagster instance's materializations;
    when it has none (marts built outside Dagster), the latest `loaded_at` of the segments mart, a
    lower bound of the build time, so the answer errs on the stale side."""
    missing = [name for name in MART_TABLES if not conn.table_exists(schema, name)]
    built: dict[str, datetime | None] = {}
    if instance is not None:
        events = instance.get_latest_materialization_events([dg.AssetKey(name) for name in MART_TABLES])
        for name in MART_TABLES:
            event = events.get(dg.AssetKey(name))
            built[name] = datetime.fromtimestamp(event.timestamp, UTC) if event else None
        if any(at is not None for at in built.values()):
            return missing, built, "dagster materializations"
    loaded = None
    if SEGMENTS_MART not in missing:
        row = conn.fetchone(f"select max(loaded_at) from {schema}.{SEGMENTS_MART}")
        loaded = as_utc(row[0]) if row else None
    return missing, {name: loaded for name in MART_TABLES}, "warehouse (latest loaded_at of the segments mart)"


def _export_runs(conn: WarehouseConnection, schema: str) -> list[ExportRun] | None:
    if not conn.table_exists(schema, EXPORT_RUNS):
        return None
    rows = conn.fetchall(
        f"select status, started_at, finished_at, error from {schema}.{EXPORT_RUNS} "
        f"order by started_at desc limit {EXPORT_RUNS_READ}"
    )
    return [ExportRun(r[0], as_utc(r[1]), as_utc(r[2]), r[3]) for r in rows]  # type: ignore[arg-type]


def _srm_slugs(conn: WarehouseConnection, schema: str) -> list[dict[str, Any]] | None:
    if not conn.table_exists(schema, EXPERIMENT_HEALTH):
        return None
    return conn.fetch_dicts(
        f"select slug, srm_p_value from {schema}.{EXPERIMENT_HEALTH} where status = 'srm' order by slug"
    )


def _guardrails(conn: WarehouseConnection, schema: str) -> tuple[GuardrailRun | None, int | None]:
    last = None
    if conn.table_exists(schema, AUTOMATION_RUNS):
        row = conn.fetchone(
            "select ran_at, providers_evaluated, warnings, criticals, auto_paused, auto_resumed, summary "
            f"from {schema}.{AUTOMATION_RUNS} order by ran_at desc limit 1"
        )
        if row:
            last = GuardrailRun(as_utc(row[0]), *(int(v) for v in row[1:6]), row[6])  # type: ignore[arg-type]
    paused = None
    if conn.table_exists(schema, AUTOMATION_STATE):
        paused = int(conn.fetchone(f"select count(*) from {schema}.{AUTOMATION_STATE} where status = 'paused'")[0])
    return last, paused


def failing_dbt_tests(instance: dg.DagsterInstance | None) -> list[FailingTest]:
    """The dbt tests (asset checks) that failed in the last finished refresh and whose latest result,
    by any run since, is still a failure (a repair in the UI counts)."""
    if instance is None:
        return []
    [*last] = instance.get_run_records(
        dg.RunsFilter(job_name=REFRESH_JOB, statuses=[dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]),
        limit=1,
    )
    if not last:
        return []
    run_id = last[0].dagster_run.run_id
    failed: dict[dg.AssetCheckKey, FailingTest] = {}
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION).records
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        unique_id = getattr(evaluation.metadata.get("unique_id"), "value", "")
        if evaluation.passed or evaluation.severity != dg.AssetCheckSeverity.ERROR or not str(unique_id).startswith("test."):
            continue  # dbt's tests only: the readiness and SRM checks say their own things
        rows = getattr(evaluation.metadata.get("dagster_dbt/failed_row_count"), "value", None)
        failed[evaluation.asset_check_key] = FailingTest(
            evaluation.check_name, evaluation.asset_key.path[-1], run_id, int(rows) if rows is not None else None
        )
    if not failed:
        return []
    latest = instance.event_log_storage.get_latest_asset_check_execution_by_key(list(failed))
    still = [key for key in failed if key in latest and latest[key].status.value == "FAILED"]
    return [failed[key] for key in still]


def collect_readiness(
    warehouse: Warehouse,
    source: SourceDatabase,
    options: DigestOptions,
    instance: dg.DagsterInstance | None,
    now: datetime | None = None,
    timeout_s: float = DEFAULT_TIMEOUT_S,
    extra: Sequence[Component] = (),
    deadline: float | None = None,
) -> ReadinessReport:
    """Probe everything once, within `timeout_s`, and build the report (each probe's failure is its
    component's error; a probe still waiting at the deadline, on a locked table or a server that
    does not answer, is reported as such and left behind). `extra`: components the caller found
    (the Dagster instance it could not open). `deadline` (`time.monotonic()`): when the answer is due
    when it is not `timeout_s` from now (the caller spent some of READYZ_TIMEOUT already)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    schema = warehouse.schema
    deadline = deadline if deadline is not None else time.monotonic() + timeout_s
    probes = _Probes(deadline)
    # The probes' own waits (locks, a busy DuckDB file, connecting) end a little before the answer
    # is due, so that they report what they waited for rather than a bare "no answer".
    own_deadline = deadline - min(1.0, timeout_s / 4)

    def remaining() -> float:
        return max(0.1, own_deadline - time.monotonic())

    def connect():
        return warehouse.connect(timeout_s=remaining())

    probes.start(("source",), lambda: {"source": probe_source(source, remaining())})

    def ping() -> dict[str, Component]:
        with connect() as conn:
            conn.fetchone("select 1")
        return {"warehouse": warehouse_component(
            warehouse.kind, warehouse.describe(), None, failing_dbt_tests(instance))}

    max_age = options.marts_freshness_minutes

    def state_connect():
        # Follow-ups, ledgers and run records: the warehouse, or STATE_DATABASE_URL beside Spark.
        return warehouse.state_connect(timeout_s=remaining())

    def marts_and_digest() -> dict[str, Component]:
        with connect() as conn:
            missing, built, built_source = mart_build_times(conn, schema, instance)
        # The weekly digest depends on the conversion feed: the snapshot mart's own freshness.
        feed = marts_component(
            [m for m in missing if m == CONVERSION_MART],
            {CONVERSION_MART: built.get(CONVERSION_MART)},
            now,
            max_age,
            built_source,
        )
        with state_connect() as conn:
            digest = weekly_digest_component(
                options.weekly_digest_enabled, feed, delivery_state(conn, schema, "email"),
                period_containing("email", now),
            )
        return {"marts_freshness": marts_component(missing, built, now, max_age, built_source), "weekly_digest": digest}

    def export() -> dict[str, Component]:
        with state_connect() as conn:
            return {"export": export_component(_export_runs(conn, schema))}

    def guardrails() -> dict[str, Component]:
        with state_connect() as conn:
            return {"guardrails": guardrails_component(*_guardrails(conn, schema))}

    def experiments() -> dict[str, Component]:
        with connect() as conn:
            return {"experiments": experiments_component(_srm_slugs(conn, schema))}

    # A connection per probe: a failed query (a table of another shape, a lock) spoils only its own
    # components. Where connections read side by side (PostgreSQL, Spark) the probes do, so a locked
    # table costs one timeout, not one per probe; a DuckDB file is read by one probe at a time.
    warehouse_probes = [(("warehouse",), ping), (("marts_freshness", "weekly_digest"), marts_and_digest),
                        (("export",), export), (("guardrails",), guardrails), (("experiments",), experiments)]
    if warehouse.engine.concurrent_connections:
        for names, probe in warehouse_probes:
            probes.start(names, probe)
    else:
        probes.start_in_turn(warehouse_probes)
    results, errors = probes.wait()

    components: dict[str, Component] = dict(results)
    if "warehouse" in errors:
        components["warehouse"] = warehouse_component(warehouse.kind, warehouse.describe(), _error(errors["warehouse"]))
    if components.get("warehouse") is None or components["warehouse"].status == "error":
        for name in COMPONENTS:
            if name not in ("warehouse", "source"):
                components[name] = Component(name, "error", "not checked: the warehouse is unreachable")
    for name, exc in errors.items():
        if name == "source":
            components[name] = source_component(source.kind, source.describe(), [], _error(exc))
        elif name not in components and _is_lock_wait(exc):
            components[name] = Component(
                name, "locked", f"a table it reads is locked by another session (no lock within {timeout_s:g} s, "
                f"READYZ_TIMEOUT): {redact(_error(exc))}; see pg_locks on the warehouse")
        elif name not in components:
            components[name] = Component(name, "error", f"check failed: {redact(_error(exc))}")
    for name in COMPONENTS:
        if name not in components:
            components[name] = timed_out(name, timeout_s)
            if name == "warehouse":
                components[name] = Component("warehouse", "error", timed_out(name, timeout_s).message,
                                             {"kind": warehouse.kind, "location": warehouse.describe(),
                                              "timeout_seconds": timeout_s})
    ordered = [components[name] for name in COMPONENTS] + list(extra)
    return ReadinessReport(now, tuple(ordered), unfinished=probes.unfinished())


class _Probes:
    """Probes on daemon threads, waited for until a deadline: a probe stuck in a driver call (a lock,
    a server that does not answer) is left behind instead of holding the answer."""

    def __init__(self, deadline: float):
        self.deadline = deadline
        self.results: dict[str, Component] = {}
        self.errors: dict[str, BaseException] = {}
        self.threads: list[threading.Thread] = []
        self.lock = threading.Lock()

    def _run(self, names: tuple[str, ...], probe: Callable[[], dict[str, Component]]) -> None:
        try:
            found = probe()
        except Exception as exc:  # noqa: BLE001 - its components' error, said in the report
            with self.lock:
                self.errors.update({name: exc for name in names})
            return
        with self.lock:
            self.results.update(found)

    def start(self, names: tuple[str, ...], probe: Callable[[], dict[str, Component]]) -> None:
        thread = threading.Thread(target=self._run, args=(names, probe), name=f"readiness-{names[0]}", daemon=True)
        self.threads.append(thread)
        thread.start()

    def start_in_turn(self, probes: list[tuple[tuple[str, ...], Callable[[], dict[str, Component]]]]) -> None:
        def run_all() -> None:
            for names, probe in probes:
                if time.monotonic() >= self.deadline:
                    return
                self._run(names, probe)

        thread = threading.Thread(target=run_all, name="readiness-warehouse", daemon=True)
        self.threads.append(thread)
        thread.start()

    def wait(self) -> tuple[dict[str, Component], dict[str, BaseException]]:
        for thread in self.threads:
            thread.join(max(0.0, self.deadline - time.monotonic()))
        with self.lock:
            return dict(self.results), dict(self.errors)

    def unfinished(self) -> bool:
        return any(thread.is_alive() for thread in self.threads)


def _severity(component: Component) -> dg.AssetCheckSeverity:
    return dg.AssetCheckSeverity.WARN if component.status == "stale" else dg.AssetCheckSeverity.ERROR


def readiness_markdown(report: ReadinessReport) -> str:
    lines = ["| component | status | ready | message |", "|---|---|---|---|"]
    for c in report.components:
        message = c.message.replace("|", "\\|")
        lines.append(f"| {c.name} | {c.status} | {'yes' if c.ready else 'no'} | {message} |")
    return "\n".join(lines)


def readiness_targets() -> dict[str, list[dg.AssetKey]]:
    """Each readiness component and the assets it judges: the warehouse and the source judge the
    raw tables the extract writes, freshness every mart, each state its own asset."""
    raw = [raw_asset_key(t.name) for t in SOURCE_TABLES]
    return {
        "warehouse": raw,
        "source": raw,
        "marts_freshness": [mart_key(m) for m in MART_TABLES],
        "weekly_digest": [EMAIL_DIGEST_KEY],
        "export": [EXPORT_ASSET_KEY],
        "guardrails": [GUARDRAIL_ACTIONS_KEY],
        "experiments": [HEALTH_KEY],
    }


def build_readiness_checks() -> dg.AssetChecksDefinition:
    """Readiness (`pricing-ops readyz`) as asset checks on the assets each component judges, all
    evaluated by one probe of the platform; each result also carries the whole report."""
    targets = readiness_targets()

    @dg.multi_asset_check(
        name=READINESS_CHECKS,
        # A materialization from the UI runs the checks on the assets it builds, so they subset.
        can_subset=True,
        specs=[
            dg.AssetCheckSpec(name, asset=key, description=f"readiness component `{name}` (`pricing-ops readyz`)")
            for name in COMPONENTS
            for key in targets[name]
        ],
    )
    def readiness(
        context: dg.AssetCheckExecutionContext, warehouse: Warehouse, source: SourceDatabase,
        digest_options: DigestOptions,
    ):
        report = collect_readiness(warehouse, source, digest_options, context.instance)
        if not report.ready:
            context.log.warning("not ready: " + "; ".join(f"{c.name} {c.status}" for c in report.not_ready()))
        summary = {"ready": report.ready, "components": dg.MetadataValue.md(readiness_markdown(report))}
        selected = context.selected_asset_check_keys
        for c in report.components:
            for key in targets[c.name]:
                if dg.AssetCheckKey(key, c.name) not in selected:
                    continue
                yield dg.AssetCheckResult(
                    asset_key=key,
                    check_name=c.name,
                    passed=c.ready,
                    severity=_severity(c),
                    metadata={"status": c.status, "message": c.message,
                              "detail": dg.MetadataValue.json(c.to_json()), **summary},
                )

    return readiness
