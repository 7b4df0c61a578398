"""The demo source's experiments with a known truth (models/demo/truth.py) come out as designed
when the section 9 rules are applied to it: a clear winner, a clear loser, a sample ratio mismatch
and a neutral slug. The per-arm sums are taken here in plain SQL on the source (first exposure,
journeys seeing two variants left out, current order status); the statistics are the real ones."""

from __future__ import annotations

from datetime import UTC, datetime

import duckdb
import pytest

from models.demo import truth
from models.demo.plan import EXPERIMENTS
from models.experiment_results import ExperimentSettings, MetricRow, evaluate
from resources.demo_source import write_demo_source

NOW = datetime(2026, 11, 26, 12, 0, 0, tzinfo=UTC)
SLUGS = (truth.WINNER.slug, truth.LOSER.slug, truth.SRM_SLUG, truth.NEUTRAL_SLUG)

ARMS_SQL = """
with exposures as (
    select e.id, e.journey_id, e.recorded_at, x.slug, x.variantKey as variant_key
    from onboarding_journey_events e,
         unnest(from_json(e.payload, '{"pricingExperiments": [{"slug": "VARCHAR", "variantKey": "VARCHAR"}]}')
                .pricingExperiments) as t(x)
    where e.event_type = 'pricing_experiment_segment' and json_type(e.payload -> 'pricingExperiments') = 'ARRAY'
      and x.slug in (SLUGS) and x.variantKey <> ''
),
journeys as (
    select slug, journey_id, arg_min(variant_key, (recorded_at, id)) as arm, count(distinct variant_key) as variants
    from exposures group by slug, journey_id
)
select slug, arm, count(*) as n, count(*) filter (where o.status in ('paid', 'fulfilled')) as booked
from journeys join onboarding_journeys j on j.id = journeys.journey_id join orders o on o.id = j.order_id
where variants = 1
group by slug, arm
"""


@pytest.fixture(scope="module")
def decisions(tmp_path_factory):
    path = tmp_path_factory.mktemp("demo_truth") / "demo_source.duckdb"
    write_demo_source(events=200_000, seed=7, duckdb_path=path, now=NOW, progress=lambda _: None)
    with duckdb.connect(str(path), read_only=True) as conn:
        rows = conn.execute(ARMS_SQL.replace("SLUGS", ", ".join(f"'{s}'" for s in SLUGS))).fetchall()
    metrics = [MetricRow(slug, arm, "conversion", None, n, booked, booked, booked) for slug, arm, n, booked in rows]
    # Only the experiments' own variants (a dirty payload may carry another key, rarely alone).
    known = {(e.slug, v.key) for e in EXPERIMENTS for v in e.variants}
    metrics = [m for m in metrics if (m.slug, m.variant_key) in known]
    controls = {e.slug: [v.key for v in e.variants if v.is_control] for e in EXPERIMENTS}
    health, results = evaluate(metrics, controls, {}, {}, NOW.date(), ExperimentSettings())
    return {h.slug: h.status for h in health}, {(r.slug, r.variant_key): r.decision for r in results}


def test_demo_has_a_winner_a_loser_an_srm_and_a_neutral_slug(decisions):
    statuses, by_variant = decisions
    assert by_variant[(truth.WINNER.slug, truth.WINNER.variant_key)] == "winning"
    assert by_variant[(truth.LOSER.slug, truth.LOSER.variant_key)] == "losing"
    assert statuses[truth.SRM_SLUG] == "srm"
    assert {d for (slug, _), d in by_variant.items() if slug == truth.SRM_SLUG} == {"srm"}
    assert statuses[truth.NEUTRAL_SLUG] == "ok"
    assert {d for (slug, _), d in by_variant.items() if slug == truth.NEUTRAL_SLUG} == {"inconclusive"}
    # The winner's other challenger (c) has no effect.
    assert by_variant[(truth.WINNER.slug, "c")] == "inconclusive"
