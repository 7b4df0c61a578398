"""The readiness report: probes of the warehouse, the source, the marts' last builds and the state
tables, turned into components by `models/readiness.py`. `pricing-ops readyz` prints it as JSON;
each component shows in the UI as an asset check on the assets it judges (`build_readiness_checks`).
"""

# No `from __future__ import annotations`: Dagster reads the asset context annotation at runtime.
from collections.abc import Callable
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
    GuardrailRun,
    ReadinessReport,
    experiments_component,
    export_component,
    guardrails_component,
    marts_component,
    redact,
    source_component,
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
# Enough history to count failures in a row far past the escalation threshold.
EXPORT_RUNS_READ = 50


def _error(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def probe_source(source: SourceDatabase) -> Component:
    kind, location = source.kind, source.describe()
    if not source.has_tables:
        return source_component(kind, location, [], None)
    missing = []
    try:
        with source.connect() as conn:
            for table in SOURCE_TABLES:
                try:
                    conn.fetchall(f"select 1 from {source.table(table.name)} limit 0")
                except Exception:  # noqa: BLE001 - the source connection is autocommit: a failed probe spoils nothing
                    missing.append(table.name)
    except Exception as exc:  # noqa: BLE001 - a probe reports any failure as not ready
        return source_component(kind, location, [], _error(exc))
    return source_component(kind, location, missing, None)


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


def collect_readiness(
    warehouse: Warehouse,
    source: SourceDatabase,
    options: DigestOptions,
    instance: dg.DagsterInstance | None,
    now: datetime | None = None,
) -> ReadinessReport:
    """Probe everything once and build the report (each probe's failure is its component's error)."""
    now = (now or datetime.now(UTC)).astimezone(UTC)
    schema = warehouse.schema
    components: dict[str, Component] = {"source": probe_source(source)}
    try:
        with warehouse.connect() as conn:
            conn.fetchone("select 1")
    except Exception as exc:  # noqa: BLE001 - a probe reports any failure as not ready
        components["warehouse"] = warehouse_component(warehouse.kind, warehouse.describe(), _error(exc))
        for name in COMPONENTS:
            components.setdefault(name, Component(name, "error", "not checked: the warehouse is unreachable"))
        return ReadinessReport(now, tuple(components[name] for name in COMPONENTS))
    components["warehouse"] = warehouse_component(warehouse.kind, warehouse.describe(), None)

    def probe(read: Callable[[WarehouseConnection], dict[str, Component]], *names: str) -> None:
        # A connection per probe: a failed query (say, a table of another shape) spoils only its
        # own components, also on Postgres where it would abort the whole transaction.
        try:
            with warehouse.connect() as conn:
                components.update(read(conn))
        except Exception as exc:  # noqa: BLE001 - a probe reports any failure as not ready
            for name in names:
                components[name] = Component(name, "error", f"check failed: {redact(_error(exc))}")

    max_age = options.marts_freshness_minutes

    def marts_and_digest(conn: WarehouseConnection) -> dict[str, Component]:
        missing, built, built_source = mart_build_times(conn, schema, instance)
        # The weekly digest depends on the conversion feed: the snapshot mart's own freshness.
        feed = marts_component(
            [m for m in missing if m == CONVERSION_MART],
            {CONVERSION_MART: built.get(CONVERSION_MART)},
            now,
            max_age,
            built_source,
        )
        digest = weekly_digest_component(
            options.weekly_digest_enabled, feed, delivery_state(conn, schema, "email"), period_containing("email", now)
        )
        return {"marts_freshness": marts_component(missing, built, now, max_age, built_source), "weekly_digest": digest}

    probe(marts_and_digest, "marts_freshness", "weekly_digest")
    probe(lambda conn: {"export": export_component(_export_runs(conn, schema))}, "export")
    probe(lambda conn: {"guardrails": guardrails_component(*_guardrails(conn, schema))}, "guardrails")
    probe(lambda conn: {"experiments": experiments_component(_srm_slugs(conn, schema))}, "experiments")
    return ReadinessReport(now, tuple(components[name] for name in COMPONENTS))


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
