"""The guardrail sensor: new telemetry windows in the source start one guardrail run.

Cursor (`models/telemetry_cursor.py`): the greatest `recorded_at` seen (the watermark) plus the ids
of the windows seen within `EXTRACT_LOOKBACK` of it, merged on every tick with the cursor the latest
guardrail evaluation recorded (a run the CLI made, say): windows already evaluated start no run. Each tick reads the windows recorded since `watermark - lookback`; any id
not in the cursor is new. A window that commits late, with a smaller id and an older
`recorded_at` than one already seen, is still inside that overlap and so is still noticed. The run
key is a hash of the new ids, so the same set of windows never starts two runs.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, timedelta

import dagster as dg

from assets.guardrails import EVALUATED_TELEMETRY, GUARDRAIL_ACTIONS_KEY
from models.guardrails import iso_utc
from models.source_tables import PROVIDER_GUARDRAIL_TELEMETRY
from models.telemetry_cursor import (  # noqa: F401  (id_ranges: callers know it from here)
    SENSOR_NAME,
    TelemetryCursor,
    id_ranges,
    merge_cursors,
)
from resources.source import SourceDatabase

TELEMETRY_TABLE = PROVIDER_GUARDRAIL_TELEMETRY.name


@dataclass(frozen=True)
class TelemetryScan:
    """What one tick found: how many windows are new, the cursor after them and the run key."""

    new_windows: int
    cursor: TelemetryCursor | None
    run_key: str | None
    reason: str


def _key(*parts: object) -> str:
    return "guardrails-" + hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest()[:24]


def scan_telemetry(
    source: SourceDatabase, cursor: TelemetryCursor | None, lookback: timedelta
) -> TelemetryScan:
    """Compare the source's telemetry windows with the cursor."""
    table = source.table(TELEMETRY_TABLE)
    with source.connect() as conn:
        if cursor is None:
            count, max_id, watermark = conn.fetchone(
                f"select count(*), max(id), max(recorded_at) from {table}"
            )
            if not count:
                return TelemetryScan(0, None, None, f"no telemetry windows in {source.describe()} yet")
            ids = conn.fetchall(
                f"select id from {table} where recorded_at >= :since", {"since": watermark - lookback}
            )
            new_cursor = TelemetryCursor(watermark.astimezone(UTC), frozenset(int(r[0]) for r in ids))
            # Nothing evaluated yet (no cursor, no evaluation recorded): every window so far is new.
            # First tick: everything recorded so far is one set of new windows.
            return TelemetryScan(
                int(count), new_cursor, _key("all", count, max_id, iso_utc(watermark)), "first scan"
            )
        since = cursor.watermark - lookback
        rows = conn.fetchall(
            f"select id, recorded_at from {table} where recorded_at >= :since", {"since": since}
        )
    new_ids = sorted(int(i) for i, _ in rows if int(i) not in cursor.seen_ids)
    if not new_ids:
        return TelemetryScan(
            0,
            cursor,
            None,
            f"no new telemetry windows: all {len(rows)} windows recorded since {iso_utc(since)} "
            f"(watermark {iso_utc(cursor.watermark)} minus the {lookback} lookback) were already seen",
        )
    watermark = max([cursor.watermark, *(r for _, r in rows)]).astimezone(UTC)
    keep_from = watermark - lookback
    seen = frozenset(int(i) for i, recorded_at in rows if recorded_at >= keep_from)
    return TelemetryScan(
        len(new_ids),
        TelemetryCursor(watermark, seen),
        _key(",".join(map(str, new_ids))),
        f"{len(new_ids)} new telemetry windows (ids {new_ids[0]}..{new_ids[-1]})",
    )


def last_evaluated_cursor(instance: dg.DagsterInstance) -> TelemetryCursor | None:
    """The telemetry the latest `guardrail_actions` materialization evaluated (None: none recorded)."""
    event = instance.get_latest_materialization_event(GUARDRAIL_ACTIONS_KEY)
    materialization = event.asset_materialization if event else None
    value = materialization.metadata.get(EVALUATED_TELEMETRY) if materialization else None
    return TelemetryCursor.parse(value.value) if value is not None else None  # type: ignore[arg-type]


def build_guardrail_telemetry_sensor(
    job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition, lookback: timedelta
):
    """The sensor (every 30 s) that starts `job` once per new set of telemetry windows."""

    @dg.sensor(
        name=SENSOR_NAME,
        job=job,
        minimum_interval_seconds=30,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description=(
            "Every 30 s: new provider_guardrail_telemetry windows in the source (late commits included) "
            "start one guardrail evaluation run."
        ),
    )
    def guardrail_telemetry_sensor(context: dg.SensorEvaluationContext, source: SourceDatabase):
        if not source.has_tables:
            return dg.SkipReason(
                f"the source is {source.describe()}, which has no provider_guardrail_telemetry; guardrail "
                "automation needs ONBOARDING_EXPORT_DATABASE_URL or the embedded demo source"
            )
        known = merge_cursors(TelemetryCursor.parse(context.cursor), last_evaluated_cursor(context.instance))
        try:
            scan = scan_telemetry(source, known, lookback)
        except FileNotFoundError as exc:  # the demo source is not written yet
            return dg.SkipReason(str(exc))
        if scan.run_key is None or scan.cursor is None:
            kept = scan.cursor.serialize() if scan.cursor else context.cursor
            return dg.SensorResult(skip_reason=dg.SkipReason(scan.reason), cursor=kept)
        context.log.info(scan.reason)
        return dg.SensorResult(
            run_requests=[
                dg.RunRequest(run_key=scan.run_key, tags={"guardrails/new_windows": str(scan.new_windows)})
            ],
            cursor=scan.cursor.serialize(),
        )

    return guardrail_telemetry_sensor
