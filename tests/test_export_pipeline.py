"""The export behind the real pipeline (extract + dbt, the Definitions `dagster dev` loads): a late
event and an event that commits after a later one was extracted and exported both go out in the
next run; rows the extraction re-reads in its overlap do not go out again."""

from __future__ import annotations

import json

import dagster as dg
import pytest
from handmade_source import add_duckdb_rows, ts, write_duckdb_source

AS_OF = "2026-11-26"
T0 = ts("2026-11-20T00:00:00Z")


def _event(id_, journey, recorded, ingested, *slugs):
    entries = [{"slug": s, "variantKey": "b", "variantName": "Spring 15% off", "isControl": False} for s in slugs]
    return {"id": id_, "journey_id": journey, "event_type": "pricing_experiment_segment",
            "payload": {"surface": "checkout", "pricingExperiments": entries},
            "recorded_at": ts(recorded), "ingested_at": ts(ingested)}


def _order(id_, status, total):
    from decimal import Decimal

    return {"id": id_, "order_number": f"N-{id_}", "provider_id": "p1", "status": status, "total": Decimal(total),
            "currency": "USD", "loyalty_projection_points": 10, "platform": "tiktok", "channel": "web",
            "created_at": T0, "updated_at": T0}


def _journey(id_, order_id, status, updated=T0):
    return {"id": id_, "order_id": order_id, "status": status, "progress_pct": 10, "referral_risk": None,
            "created_at": T0, "updated_at": updated}


SOURCE = {
    "fulfillment_providers": [{"id": "p1", "name": "Alpha", "platform": "tiktok", "created_at": T0}],
    "orders": [_order("o1", "paid", "100.00"), _order("o2", "pending", "12.50")],
    "onboarding_journeys": [_journey("j1", "o1", "active"), _journey("j2", "o2", "active")],
    "onboarding_journey_events": [
        _event(1, "j1", "2026-11-25T10:00:00Z", "2026-11-25T10:00:01Z", "spring-offer"),
        _event(2, "j2", "2026-11-25T10:05:00Z", "2026-11-25T10:05:01Z", "spring-offer"),
        _event(4, "j1", "2026-11-26T08:00:00Z", "2026-11-26T08:00:00Z", "spring-offer", "winter"),
    ],
    "provider_guardrail_telemetry": [],
}
LATER = {
    # Event 3: a smaller id and an older ingested_at than event 4, committed after event 4 was
    # extracted and exported (inside the 10-minute lookback of the next extraction).
    # Event 5: happened on 2026-10-01, reached the source only now (a late event).
    "onboarding_journey_events": [
        _event(3, "j1", "2026-11-26T07:59:00Z", "2026-11-26T07:59:00Z", "spring-offer"),
        _event(5, "j2", "2026-10-01T12:00:00Z", "2026-11-26T09:00:00Z", "spring-offer"),
    ],
    # j1 moved on since the first export: the export carries the value at export time.
    "onboarding_journeys": [_journey("j1", "o1", "completed", updated=ts("2026-11-26T08:30:00Z"))],
}


@pytest.fixture
def pipeline(make_settings, dbt_manifest):
    from orchestration.definitions import build_definitions

    settings = make_settings(ONBOARDING_EXPORT_BATCH_SIZE=2)
    write_duckdb_source(settings.demo_source_path, SOURCE)
    return settings, build_definitions(settings)


def _refresh(defs, instance):
    """The refresh job, limited to the segments mart and what it is built from (fewer dbt models)."""
    upstream = dg.AssetSelection.assets("onboarding_pricing_experiment_segments").upstream()
    result = defs.resolve_job_def("refresh").execute_in_process(
        instance=instance,
        asset_selection=list(upstream.resolve(defs.resolve_asset_graph())),
        run_config={"ops": {"pricing_dbt_models": {"config": {"as_of_date": AS_OF}}}},
    )
    assert result.success


def _export(defs, instance) -> list[dict]:
    result = defs.resolve_job_def("onboarding_experiment_export").execute_in_process(instance=instance)
    assert result.success
    return result


def _rows_of(settings, run_id) -> list[dict]:
    files = sorted(p for p in settings.export_dir.iterdir() if f"_{run_id}_" in p.name)
    return [json.loads(line) for f in files for line in f.read_text().splitlines()]


def test_late_and_late_committed_events_go_out_next_run_and_overlap_rereads_do_not(pipeline):
    settings, defs = pipeline
    with dg.instance_for_test() as instance:
        _refresh(defs, instance)
        first = _export(defs, instance)
        add_duckdb_rows(settings.demo_source_path, LATER)
        _refresh(defs, instance)
        second = _export(defs, instance)
        third = _export(defs, instance)

    got = _rows_of(settings, first.run_id)
    assert [(r["eventId"], r["slug"], r["status"]) for r in got] == [
        (1, "spring-offer", "active"), (2, "spring-offer", "active"), (4, "spring-offer", "active"), (4, "winter", "active"),
    ]
    assert got[0]["orderTotal"] == "100.00" and got[0]["recordedAt"] == "2026-11-25T10:00:00.000000Z"

    # Next run: exactly the late-committed event 3 and the late event 5, in load order; event 4,
    # re-read by the extraction's overlap, is not sent again.
    again = _rows_of(settings, second.run_id)
    assert [(r["eventId"], r["slug"]) for r in again] == [(3, "spring-offer"), (5, "spring-offer")]
    assert again[0]["status"] == "completed"  # j1's status at export time
    assert again[1]["recordedAt"] == "2026-10-01T12:00:00.000000Z" and again[1]["orderTotal"] == "12.50"
    assert _rows_of(settings, third.run_id) == []
    cursor = json.loads(settings.export_cursor_path.read_text())
    assert (cursor["lastEventId"], cursor["lastSlug"], cursor["rowsExported"]) == (5, "spring-offer", 6)
