"""The readiness report (`pricing-ops readyz`, the readiness asset checks), pure.

`assets/readiness.py` probes the warehouse, the source, the Dagster instance and the state tables;
the functions here turn what it found into one status per component and the overall verdict.
A component is `ready` unless something is broken or out of date: `suppressed` (the weekly digest
switched off on purpose), `never_run` and `degraded` (one export failure) are ready; `missing`,
`stale`, `failing` and `error` are not.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from models.digests.periods import DigestPeriod, previous_period
from models.digests.text import iso_z
from models.export_runs import export_is_failing, failures_in_a_row
from models.marts import CONVERSION_SNAPSHOT

COMPONENTS = ("warehouse", "source", "marts_freshness", "weekly_digest", "export", "guardrails", "experiments")
CONVERSION_MART = CONVERSION_SNAPSHOT
READY_STATUSES = frozenset({"ok", "suppressed", "never_run", "degraded"})

_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://\S+")


def redact(message: str | None, limit: int = 300) -> str | None:
    """An error message fit for a report: URLs (which may carry tokens or webhook secrets) removed,
    one line, at most `limit` characters."""
    if message is None:
        return None
    text = " ".join(_URL.sub("<url redacted>", message).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass(frozen=True)
class Component:
    name: str
    status: str
    message: str
    detail: Mapping[str, Any] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return self.status in READY_STATUSES

    def to_json(self) -> dict[str, Any]:
        return {"status": self.status, "ready": self.ready, "message": self.message, **_jsonable(self.detail)}


@dataclass(frozen=True)
class ReadinessReport:
    checked_at: datetime
    components: tuple[Component, ...]
    # A probe was still waiting when the report was made (left behind on its thread).
    unfinished: bool = False

    @property
    def ready(self) -> bool:
        return all(c.ready for c in self.components)

    def component(self, name: str) -> Component:
        return next(c for c in self.components if c.name == name)

    def not_ready(self) -> list[Component]:
        return [c for c in self.components if not c.ready]

    def to_json(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "checked_at": iso_z(self.checked_at),
            "components": {c.name: c.to_json() for c in self.components},
        }


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return iso_z(value)
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


# Components ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class FailingTest:
    """A dbt data test whose latest result failed: its check, the model it tests, the run."""

    check_name: str
    model: str
    run_id: str
    failed_rows: int | None = None

    @property
    def duplicates(self) -> bool:
        return "unique" in self.check_name

    def to_json(self) -> dict[str, Any]:
        return {"test": self.check_name, "model": self.model, "run_id": self.run_id, "failed_rows": self.failed_rows}


def warehouse_component(
    kind: str, location: str, error: str | None, failing_tests: Sequence[FailingTest] = ()
) -> Component:
    """`ok` when the warehouse answers and no dbt test fails; `failing` when one does (a refresh
    stops building what depends on the model it tests: the marts stop updating)."""
    detail: dict[str, Any] = {"kind": kind, "location": location}
    if error:
        return Component("warehouse", "error", f"cannot query the warehouse: {redact(error)}", detail)
    if failing_tests:
        detail["failing_tests"] = [t.to_json() for t in failing_tests]
        named = "; ".join(
            f"{t.check_name} on {t.model}" + (f" ({t.failed_rows} rows)" if t.failed_rows is not None else "")
            + f" in run {t.run_id[:8]}"
            for t in failing_tests
        )
        if any(t.duplicates for t in failing_tests):
            fix = ("duplicate rows (two builds at once?): repair with `pricing-ops refresh --full-refresh`, which "
                   "rebuilds every incremental model from the raw tables")
        else:
            fix = "fix what the test reports, then `pricing-ops refresh` (or `--full-refresh` to rebuild from the raw tables)"
        return Component("warehouse", "failing", f"dbt tests fail: {named}; {fix}", detail)
    return Component("warehouse", "ok", f"{kind} warehouse answers", detail)


def instance_component(home: str, error: str) -> Component:
    """The Dagster instance (runs, schedules, the marts' builds) cannot be read: reported only then."""
    return Component(
        "dagster_instance", "error",
        f"cannot open the Dagster instance at {home}: {redact(error)}; runs cannot be recorded (disk full? "
        "storage down?), marts freshness is judged from the warehouse alone",
        {"dagster_home": home},
    )


def timed_out(name: str, timeout_s: float) -> Component:
    """A probe that did not answer in time: a table it reads is locked, or a server does not answer."""
    return Component(
        name, "error",
        f"no answer within {timeout_s:g} s (READYZ_TIMEOUT): a table it reads is locked by another session, "
        "or the server does not answer",
        {"timeout_seconds": timeout_s},
    )


def source_component(
    kind: str, location: str, missing_tables: Sequence[str], error: str | None,
    locked_tables: Sequence[str] = (), lock_wait_s: float | None = None,
) -> Component:
    detail: dict[str, Any] = {"kind": kind, "location": location}
    if error:
        return Component("source", "error", f"cannot read the source: {redact(error)}", detail)
    if locked_tables:
        detail["locked_tables"] = list(locked_tables)
        return Component(
            "source", "locked",
            f"source tables locked by another session (not readable within {lock_wait_s:g} s): "
            f"{', '.join(locked_tables)}; an extract would wait for them (see pg_locks on the source)",
            detail,
        )
    if kind == "api":
        detail["probed"] = False
        return Component("source", "ok", "reporting API source (read by the extract runs; no tables to probe)", detail)
    if missing_tables:
        detail["missing_tables"] = list(missing_tables)
        return Component(
            "source", "missing", f"source tables missing: {', '.join(missing_tables)}", detail
        )
    return Component("source", "ok", f"{kind} source has the contract's tables", detail)


def experiments_component(srm: Sequence[Mapping[str, Any]] | None) -> Component:
    """The slugs in sample ratio mismatch (`experiment_health` status `srm`), listed by name with
    their p-value. Ready all the same (`degraded`): the platform works, those slugs' numbers are not
    to be trusted. `srm` None: the table is not built yet."""
    if srm is None:
        return Component("experiments", "never_run", "experiment_health not built yet; run `pricing-ops refresh`")
    detail = {"srm_slugs": [dict(row) for row in srm]}
    if not srm:
        return Component("experiments", "ok", "no slug in sample ratio mismatch", detail)
    names = ", ".join(str(row["slug"]) for row in srm)
    return Component(
        "experiments", "degraded",
        f"sample ratio mismatch on {names}: check their assignment before reading their results", detail,
    )


def marts_component(
    missing: Sequence[str],
    built_at: Mapping[str, datetime | None],
    now: datetime,
    max_age_minutes: int,
    built_at_source: str,
    error: str | None = None,
) -> Component:
    """Fresh when every mart exists and the oldest was built within `max_age_minutes`."""
    detail: dict[str, Any] = {"max_age_minutes": max_age_minutes, "built_at_source": built_at_source}
    if error:
        return Component("marts_freshness", "error", f"cannot inspect the marts: {redact(error)}", detail)
    if missing:
        detail["missing"] = list(missing)
        return Component(
            "marts_freshness",
            "missing",
            f"marts not built yet: {', '.join(missing)}; run `pricing-ops refresh`",
            detail,
        )
    known = {name: at for name, at in built_at.items() if at is not None}
    detail["built_at"] = dict(built_at)
    if len(known) < len(built_at) or not known:
        unknown = sorted(name for name, at in built_at.items() if at is None)
        return Component(
            "marts_freshness", "stale", f"no recorded build of {', '.join(unknown)}; run `pricing-ops refresh`", detail
        )
    oldest_name, oldest = min(known.items(), key=lambda item: item[1])
    age = now - oldest
    detail["oldest_built_at"] = oldest
    detail["age_minutes"] = int(age.total_seconds() // 60)
    if age > timedelta(minutes=max_age_minutes):
        return Component(
            "marts_freshness",
            "stale",
            f"{oldest_name} was built {detail['age_minutes']} min ago (limit {max_age_minutes} min, "
            "MARTS_FRESHNESS_MINUTES); check the refresh schedule or run `pricing-ops refresh`",
            detail,
        )
    return Component("marts_freshness", "ok", f"marts built within {max_age_minutes} min", detail)


@dataclass(frozen=True)
class DeliveryState:
    """The latest rows of `digest_deliveries` for one kind."""

    last_sent_period: str | None
    last_sent_at: datetime | None
    latest_period: str | None
    latest_status: str | None
    latest_error: str | None


def weekly_digest_component(
    enabled: bool,
    conversion_feed: Component,
    delivery: DeliveryState,
    current: DigestPeriod,
) -> Component:
    """`suppressed` when WEEKLY_DIGEST_ENABLED=false; `stale` when the conversion feed it reads is not
    fresh, its latest send failed, or a whole week went by without one; `ok` otherwise."""
    detail: dict[str, Any] = {
        "enabled": enabled,
        "conversion_feed": conversion_feed.status,
        "last_sent_period": delivery.last_sent_period,
        "last_sent_at": delivery.last_sent_at,
    }
    if not enabled:
        return Component(
            "weekly_digest",
            "suppressed",
            "WEEKLY_DIGEST_ENABLED=false: conversion rows are suppressed in the email and Slack digests",
            detail,
        )
    if not conversion_feed.ready:
        return Component(
            "weekly_digest", "stale", f"the conversion feed is not fresh: {conversion_feed.message}", detail
        )
    if delivery.latest_status == "failed":
        detail["failed_period"] = delivery.latest_period
        detail["last_error"] = redact(delivery.latest_error)
        return Component(
            "weekly_digest",
            "stale",
            f"the weekly digest for {delivery.latest_period} failed to send; it is retried, "
            "or run `pricing-ops digest email`",
            detail,
        )
    due = previous_period(current).label
    if delivery.last_sent_period is not None and delivery.last_sent_period < due:
        return Component(
            "weekly_digest",
            "stale",
            f"the last weekly digest sent is {delivery.last_sent_period}; {due} was never sent",
            detail,
        )
    return Component("weekly_digest", "ok", "conversion feed fresh, weekly digest up to date", detail)


@dataclass(frozen=True)
class ExportRun:
    status: str  # success | failed
    started_at: datetime
    finished_at: datetime | None
    error: str | None


def export_component(runs: Sequence[ExportRun] | None) -> Component:
    """From `export_runs`, newest first (None when the table does not exist yet)."""
    if not runs:
        return Component(
            "export", "never_run", "no export run recorded yet", {"last_success_at": None, "failures_in_a_row": 0}
        )
    failures = failures_in_a_row([run.status for run in runs])
    last_success = next((r.finished_at or r.started_at for r in runs if r.status == "success"), None)
    detail: dict[str, Any] = {"last_success_at": last_success, "failures_in_a_row": failures}
    if failures:
        detail["last_error"] = redact(runs[0].error)
    if export_is_failing(failures):
        return Component(
            "export",
            "failing",
            f"{failures} export runs failed in a row; check the sink and cursor, then `pricing-ops export`",
            detail,
        )
    if failures:
        return Component("export", "degraded", "the last export run failed; the next run retries it", detail)
    return Component("export", "ok", f"last export succeeded at {iso_z(last_success)}", detail)


@dataclass(frozen=True)
class GuardrailRun:
    ran_at: datetime
    providers_evaluated: int
    warnings: int
    criticals: int
    auto_paused: int
    auto_resumed: int
    summary: str | None


def guardrails_component(last_run: GuardrailRun | None, paused_providers: int | None) -> Component:
    detail: dict[str, Any] = {"paused_providers": paused_providers}
    if last_run is None:
        detail["last_evaluation_at"] = None
        return Component("guardrails", "never_run", "no guardrail evaluation recorded yet", detail)
    detail.update(
        last_evaluation_at=last_run.ran_at,
        providers_evaluated=last_run.providers_evaluated,
        warnings=last_run.warnings,
        criticals=last_run.criticals,
        auto_paused=last_run.auto_paused,
        auto_resumed=last_run.auto_resumed,
        summary=last_run.summary,
    )
    return Component("guardrails", "ok", f"last evaluation at {iso_z(last_run.ran_at)}", detail)

