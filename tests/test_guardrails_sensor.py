"""The guardrail telemetry sensor through `build_sensor_context`, on a real source: the embedded demo
DuckDB file and a Postgres database."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest
from handmade_source import create_source, insert_rows

from orchestration.guardrails import guardrail_evaluation_job
from resources.source import SourceDatabase
from sensors.guardrail_telemetry import TelemetryCursor, build_guardrail_telemetry_sensor, id_ranges

T = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
LOOKBACK = timedelta(minutes=10)
sensor = build_guardrail_telemetry_sensor(guardrail_evaluation_job, LOOKBACK)


class DemoSource:
    def __init__(self, path: Path):
        self.path = path
        with duckdb.connect(str(path)) as conn:
            create_source("duckdb", conn)
        self.resource = SourceDatabase(demo_path=str(path))

    def add(self, *rows: dict) -> None:
        with duckdb.connect(str(self.path)) as conn:
            insert_rows("duckdb", conn, "provider_guardrail_telemetry", rows)


class PostgresSource:
    def __init__(self, url: str):
        import psycopg

        self.url = url
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("create schema app")
            create_source("postgres", conn, schema="app")
        self.resource = SourceDatabase(database_url=url, schema_name="app")

    def add(self, *rows: dict) -> None:
        import psycopg

        # Identity ids are given explicitly so the test controls their order against recorded_at.
        with psycopg.connect(self.url, autocommit=True) as conn:
            for row in rows:
                columns = ", ".join(row)
                conn.execute(
                    f"insert into app.provider_guardrail_telemetry ({columns}) overriding system value "
                    f"values ({', '.join(['%s'] * len(row))})",
                    list(row.values()),
                )


@pytest.fixture(
    params=[
        "demo",
        pytest.param(
            "postgres",
            marks=[
                pytest.mark.postgres,
            ],
        ),
    ]
)
def source(request, tmp_path):
    if request.param == "demo":
        return DemoSource(tmp_path / "demo_source.duckdb")
    return PostgresSource(request.getfixturevalue("pg_url"))


def window(id_: int, recorded_at: datetime, provider: str = "prov-1") -> dict:
    return {
        "id": id_,
        "provider_id": provider,
        "experiment_slug": "spring-offer",
        "variant_key": "b",
        "window_start": recorded_at - timedelta(minutes=5),
        "window_end": recorded_at,
        "guardrail_checks": 10,
        "guardrail_failures": 0,
        "replay_total": 0,
        "replay_failures": 0,
        "recorded_at": recorded_at,
    }


def tick(source, cursor: str | None, instance: dg.DagsterInstance):
    context = dg.build_sensor_context(cursor=cursor, instance=instance, resources={"source": source.resource})
    return sensor(context)


def test_new_windows_skip_late_commits_and_cursor(source):
    instance = dg.DagsterInstance.ephemeral()

    # Nothing yet: skip, and no cursor.
    result = tick(source, None, instance)
    assert isinstance(result, dg.SensorResult) and result.run_requests in (None, [])
    assert result.skip_reason.skip_message.startswith("no telemetry windows in ")
    assert result.cursor is None

    # First windows: one request, cursor at the newest recorded_at with the ids seen.
    source.add(window(1, T), window(2, T + timedelta(seconds=1)))
    first = tick(source, None, instance)
    [request] = first.run_requests
    assert sensor.job_name == "guardrail_evaluation"
    assert request.tags["guardrails/new_windows"] == "2"
    assert json.loads(first.cursor) == {"watermark": "2026-11-26T10:00:01Z", "ids": [[1, 2]]}

    # The same tick twice: the same run key (the daemon starts one run per key)...
    assert tick(source, None, instance).run_requests[0].run_key == request.run_key
    # ... and from the advanced cursor: nothing new, a reason, the cursor unchanged.
    again = tick(source, first.cursor, instance)
    assert not again.run_requests
    assert again.cursor == first.cursor
    assert again.skip_reason.skip_message == (
        "no new telemetry windows: all 2 windows recorded since 2026-11-26T09:50:01Z "
        "(watermark 2026-11-26T10:00:01Z minus the 0:10:00 lookback) were already seen"
    )

    # A newer window: one request, a different key, cursor advanced.
    source.add(window(4, T + timedelta(seconds=30), "prov-2"))
    second = tick(source, first.cursor, instance)
    [request2] = second.run_requests
    assert request2.run_key != request.run_key
    assert json.loads(second.cursor) == {"watermark": "2026-11-26T10:00:30Z", "ids": [[1, 2], [4, 4]]}

    # A window that commits late, with a smaller id and an older recorded_at: still one request.
    source.add(window(3, T + timedelta(seconds=20), "prov-3"))
    late = tick(source, second.cursor, instance)
    [request3] = late.run_requests
    assert request3.tags["guardrails/new_windows"] == "1"
    assert request3.run_key not in (request.run_key, request2.run_key)
    assert json.loads(late.cursor) == {"watermark": "2026-11-26T10:00:30Z", "ids": [[1, 4]]}
    assert not tick(source, late.cursor, instance).run_requests

    # Ids older than the lookback before the watermark leave the cursor (it stays small).
    source.add(window(5, T + timedelta(minutes=20)))
    pruned = tick(source, late.cursor, instance)
    assert len(pruned.run_requests) == 1
    assert json.loads(pruned.cursor) == {"watermark": "2026-11-26T10:20:00Z", "ids": [[5, 5]]}


def test_windows_an_evaluation_covered_start_no_run_and_the_tag_counts_the_rest(source):
    from assets.guardrails import EVALUATED_TELEMETRY, GUARDRAIL_ACTIONS_KEY

    instance = dg.DagsterInstance.ephemeral()
    source.add(window(1, T), window(2, T + timedelta(seconds=1)), window(3, T + timedelta(seconds=2)))
    # An evaluation (a CLI run, say) recorded that it covered windows 1..3.
    covered = TelemetryCursor(T + timedelta(seconds=2), frozenset({1, 2, 3}))
    instance.report_runless_asset_event(
        dg.AssetMaterialization(GUARDRAIL_ACTIONS_KEY, metadata={EVALUATED_TELEMETRY: covered.serialize()})
    )
    first = tick(source, None, instance)
    assert not first.run_requests and first.cursor == covered.serialize()
    source.add(window(4, T + timedelta(seconds=3)))
    [request] = tick(source, first.cursor, instance).run_requests
    assert request.tags["guardrails/new_windows"] == "1"  # true: one window is new to automation
    # A sensor cursor behind the evaluation is caught up by it, too.
    behind = TelemetryCursor(T, frozenset({1})).serialize()
    [request] = tick(source, behind, instance).run_requests
    assert request.tags["guardrails/new_windows"] == "1"


def test_sources_without_telemetry_skip_with_a_reason(tmp_path):
    instance = dg.DagsterInstance.ephemeral()
    missing = SourceDatabase(demo_path=str(tmp_path / "none.duckdb"))
    result = sensor(dg.build_sensor_context(instance=instance, resources={"source": missing}))
    assert "does not exist; create it with `pricing-ops demo-source`" in result.skip_message
    api = SourceDatabase(api_base_url="http://127.0.0.1:9", api_key="secret-key")
    result = sensor(dg.build_sensor_context(instance=instance, resources={"source": api}))
    assert (
        "has no provider_guardrail_telemetry" in result.skip_message
        and "secret-key" not in result.skip_message
    )


def test_cursor_round_trip_and_unreadable_cursor():
    cursor = TelemetryCursor(T, frozenset({1, 2, 3, 7, 9, 10}))
    assert id_ranges(cursor.seen_ids) == [[1, 3], [7, 7], [9, 10]]
    assert TelemetryCursor.parse(cursor.serialize()) == cursor
    with pytest.raises(ValueError, match="unreadable cursor 'garbage'.*reset it in the Dagster UI"):
        TelemetryCursor.parse("garbage")
