"""Dirty source rows are rejected with a reason and never act (contract sections 2 and 3): the run
succeeds, the good rows arrive, the bad ones are in `source_row_rejects` and counted in the run's
metadata. On the embedded default (DuckDB); the rules are dbt macros that build on both engines."""

from __future__ import annotations

from decimal import Decimal

import duckdb
import pipeline_dataset as ds
import pytest
from handmade_source import write_duckdb_source
from test_pipeline_embedded import build_and_refresh

DIRTY = {
    "fulfillment_providers": [{"id": "p9", "name": "Dirty", "platform": "web", "created_at": ds.T0}],
    "provider_guardrail_telemetry": [
        ds._window(50, "p9", "2026-11-19T09:00:00Z", 0, 0),  # the sound, ok window
        # Later, critical, and impossible: would become p9's latest window and auto-pause it.
        {**ds._window(51, "p9", "2026-11-19T12:00:00Z", 9, 9), "window_start": ds.ts("2026-11-19T13:00:00Z")},
        {**ds._window(52, "p9", "2026-11-19T12:30:00Z", 9, 0), "replay_total": -3},
    ],
    "orders": [
        ds._order("o-lower", "paid", "10.00", "usd", 1),  # only the case is wrong: USD
        ds._order("o-code", "paid", "99.00", "U5D", 9),  # not a currency: rejected
        ds._order("o-neg", "paid", "-5.00", "USD", 4),  # a negative total never becomes revenue
    ],
    "onboarding_journeys": [
        ds._journey("j-lower", "o-lower", "active"),
        ds._journey("j-code", "o-code", "active"),
        ds._journey("j-neg", "o-neg", "active"),
    ],
    "onboarding_journey_events": [
        ds._event(60, "j-lower", "2026-11-18T10:00:00Z", [ds._exp("dirty-slug", "a", "A", True)]),
        ds._event(61, "j-code", "2026-11-18T10:00:00Z", [ds._exp("dirty-slug", "a")]),
        ds._event(62, "j-neg", "2026-11-18T10:00:00Z", [ds._exp("dirty-slug", "a")]),
        ds._event(63, "j-ghost", "2026-11-18T10:00:00Z", [ds._exp("dirty-slug", "a")]),  # no such journey
    ],
}


@pytest.fixture(scope="module")
def dirty_build(tmp_path_factory, dbt_manifest):
    from orchestration.settings import Settings

    settings = Settings(_env_file=None, DATA_DIR=tmp_path_factory.mktemp("dirty") / "data")
    write_duckdb_source(settings.demo_source_path, {t: ds.SOURCE[t] + DIRTY.get(t, []) for t in ds.SOURCE})
    result = build_and_refresh(settings)
    return settings, result


def _rows(settings, sql: str) -> list[tuple]:
    with duckdb.connect(str(settings.data_dir / "warehouse.duckdb"), read_only=True) as conn:
        return conn.execute(sql).fetchall()


def test_every_dirty_row_is_rejected_with_its_reason(dirty_build):
    settings, _ = dirty_build
    assert _rows(settings, "select source_table, row_id, reason from analytics_staging.source_row_rejects "
                           "order by source_table, row_id") == [
        ("onboarding_journey_events", "63", "journey_missing"),
        ("orders", "o-code", "currency_invalid"),
        ("orders", "o-neg", "negative_total"),
        ("provider_guardrail_telemetry", "51", "window_end_before_start"),
        ("provider_guardrail_telemetry", "52", "negative_count"),
    ]


def test_a_bad_telemetry_window_never_becomes_the_latest_nor_pauses(dirty_build):
    settings, _ = dirty_build
    assert _rows(settings, "select provider_id, guardrail_failures, replay_failures, severity "
                           "from analytics.provider_guardrail_status where provider_id = 'p9'") == [("p9", 0, 0, "ok")]


def test_money_counts_only_sound_orders_and_the_case_of_a_currency_is_normalised(dirty_build):
    settings, _ = dirty_build
    assert _rows(settings, "select order_currency, order_total, order_count, journey_count "
                           "from analytics.experiment_conversion_snapshot where slug = 'dirty-slug'") == [
        ("USD", Decimal("10.00"), 1, 1)]
    segments = dict(_rows(settings, "select event_id, order_currency from analytics.onboarding_pricing_experiment_segments "
                                    "where slug = 'dirty-slug'"))
    assert segments == {60: "USD", 61: None, 62: None, 63: None}


def test_the_good_rows_arrive_as_without_the_dirty_ones(dirty_build):
    settings, _ = dirty_build
    conversion = {(s, c): (t, o, j) for s, c, t, o, j, *_ in
                  _rows(settings, "select * from analytics.experiment_conversion_snapshot where slug <> 'dirty-slug'")}
    assert conversion == {k: v[:3] for k, v in ds.CONVERSION.items()}
    assert _rows(settings, "select provider_id, severity from analytics.provider_guardrail_status "
                           "where provider_id <> 'p9' order by 1") == [("p1", "critical"), ("p2", "warning")]


def test_the_rejects_are_counted_in_the_run_metadata(dirty_build):
    _, result = dirty_build
    [check] = [e for e in result.get_asset_check_evaluations() if e.check_name == "source_row_rejects_check"]
    meta = {k: v.value for k, v in check.metadata.items()}
    assert (check.passed, meta["rejected_rows"]) == (False, 5)
    assert (meta["orders.currency_invalid"], meta["orders.negative_total"]) == (1, 1)
    assert (meta["provider_guardrail_telemetry.window_end_before_start"],
            meta["provider_guardrail_telemetry.negative_count"], meta["onboarding_journey_events.journey_missing"]) == (1, 1, 1)


def test_an_event_without_its_journey_stays_out_of_every_journey_count(dirty_build):
    settings, _ = dirty_build
    # Four exposures of dirty-slug, variant a; j-ghost's journey is not in the source.
    assert _rows(settings, "select journey_count, exposure_count from analytics.experiment_slug_summary "
                           "where slug = 'dirty-slug'") == [(3, 4)]
    assert _rows(settings, "select variant_key, journey_count, active_journeys from analytics.experiment_variant_journeys "
                           "where slug = 'dirty-slug'") == [("a", 3, 3)]
    assert _rows(settings, "select sum(journey_count), sum(exposure_count) from analytics.experiment_daily_assignments "
                           "where slug = 'dirty-slug'") == [(3, 4)]
