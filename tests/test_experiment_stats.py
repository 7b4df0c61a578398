"""The statistics of contract section 9 against published reference values (GrowthBook's gbstats
frequentist engine), a revenue case computed by hand, and every slug status and decision."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal as D

import pytest

from models.experiment_results import (
    ExperimentSettings,
    MetricRow,
    decisions_markdown,
    evaluate,
    srm_description,
)
from models.experiment_stats import ArmSums, compare, srm_p_value

AS_OF = date(2026, 3, 5)
SETTINGS = ExperimentSettings(srm_p_threshold=0.001, sequential_tuning=5000, min_journeys=100)
TOL = 1e-6


def test_conversion_reference_values():
    control = ArmSums(10000, D(520), D(520))
    challenger = ArmSums(10100, D(580), D(580))
    c = compare(control, challenger, "conversion", sequential_tuning=5000, min_journeys=100)
    assert c.relative_lift == pytest.approx(0.104341, abs=TOL)
    assert (c.ci_low, c.ci_high) == (pytest.approx(-0.022767, abs=TOL), pytest.approx(0.231450, abs=TOL))
    assert c.p_value == pytest.approx(0.107632, abs=TOL)
    assert (c.sequential_ci_low, c.sequential_ci_high) == (
        pytest.approx(-0.098484, abs=TOL), pytest.approx(0.307166, abs=TOL))


def test_srm_reference_value_at_equal_weights():
    assert srm_p_value([10000, 10100, 9800]) == pytest.approx(0.0962182, abs=TOL)
    # Weights given as equal are the same test.
    assert srm_p_value([10000, 10100, 9800], [2, 2, 2]) == pytest.approx(0.0962182, abs=TOL)


def test_revenue_case_by_hand():
    # Control y = 10, 20, 0, 30: n 4, sum 60, sum of squares 100 + 400 + 0 + 900 = 1400.
    # Challenger y = 20, 30, 40, 0, 10: n 5, sum 100, sum of squares 400 + 900 + 1600 + 0 + 100 = 3000.
    control, challenger = ArmSums(4, D(60), D(1400)), ArmSums(5, D(100), D(3000))
    assert (control.mean, challenger.mean) == (15.0, 20.0)
    # s^2 = (1400 - 60^2/4)/3 = 500/3; (3000 - 100^2/5)/4 = 250.
    assert control.variance("revenue") == pytest.approx(500 / 3, abs=1e-12)
    assert challenger.variance("revenue") == 250.0
    c = compare(control, challenger, "revenue", sequential_tuning=5000, min_journeys=2)
    # L = (20 - 15)/15 = 1/3; V = 250/(15^2*5) + (500/3)*20^2/(15^4*4) = 0.2222222 + 0.3292181 = 0.5514403;
    # Welch: (41.667 + 50)^2 / (41.667^2/3 + 50^2/4) = 6.9807692 df, t_0.975 = 2.3659454.
    assert c.relative_lift == pytest.approx(1 / 3, abs=TOL)
    half = 2.3659454212 * math.sqrt(0.5514403292)
    assert (c.ci_low, c.ci_high) == (pytest.approx(1 / 3 - half, abs=TOL), pytest.approx(1 / 3 + half, abs=TOL))
    assert c.p_value == pytest.approx(0.6671221, abs=TOL)
    # Sequential: N = 9, rho^2 = (-2 ln .05 + ln(1 - 2 ln .05))/5000 = 0.00140207.
    rho2 = (-2 * math.log(0.05) + math.log(1 - 2 * math.log(0.05))) / 5000
    seq = math.sqrt(0.5514403292 * 9) * math.sqrt(2 * (9 * rho2 + 1) * math.log(math.sqrt(9 * rho2 + 1) / 0.05) / (81 * rho2))
    assert c.sequential_ci_high - 1 / 3 == pytest.approx(seq, abs=TOL)
    assert c.sequential_p_value == 1.0


# --- statuses and decisions ---------------------------------------------------------------------

def conv(slug, variant, n, conversions):
    return MetricRow(slug, variant, "conversion", None, n, D(conversions), D(conversions))


def rev(slug, variant, n, total, squares, currency="USD"):
    return MetricRow(slug, variant, "revenue", currency, n, D(total), D(squares))


def run(rows, controls, allocations=None, multiple=None, settings=SETTINGS):
    health, results = evaluate(rows, controls, allocations or {}, multiple or {}, AS_OF, settings)
    return {h.slug: h for h in health}, results


def test_no_control_and_two_controls_have_no_comparison_rows():
    rows = [conv("none", "a", 1000, 50), conv("none", "b", 1000, 60),
            conv("two", "a", 1000, 50), conv("two", "b", 1000, 60)]
    health, results = run(rows, {"two": ["a", "b"], "none": ["zz"]})  # zz is no arm of none
    assert (health["none"].status, health["none"].control_variant_key) == ("no_control", None)
    assert (health["two"].status, health["two"].control_variant_key) == ("multiple_controls", None)
    assert results == []


def test_too_few_journeys():
    # K = 2 arms need 16 journeys for the SRM test; each comparison needs 100 per arm.
    health, results = run([conv("s", "a", 7, 1), conv("s", "b", 8, 2)], {"s": ["a"]}, multiple={"s": 3})
    h = health["s"]
    assert (h.status, h.arms, h.journeys, h.multiple_exposure_journeys, h.srm_p_value) == (
        "not_enough_data", 2, 15, 3, None)
    [r] = results
    assert (r.decision, r.relative_lift, r.sequential_ci_low, r.control_mean) == ("not_enough_data", None, None, 1 / 7)
    # 99 against 100 journeys: still too few for a comparison (the SRM test runs: status ok).
    health, results = run([conv("s", "a", 99, 10), conv("s", "b", 100, 20)], {"s": ["a"]})
    assert health["s"].status == "ok" and results[0].decision == "not_enough_data"


def test_zero_control_mean_and_zero_variance():
    rows = [conv("s", "a", 1000, 0), conv("s", "b", 1000, 10),  # control mean 0
            conv("t", "a", 1000, 100), conv("t", "b", 1000, 1000),  # challenger converts always: s^2 = 0
            rev("t", "a", 1000, 5000, 25000), rev("t", "b", 1000, 6000, 36000 + 9000)]  # control y = 5 each: s^2 = 0
    health, results = run(rows, {"s": ["a"], "t": ["a"]})
    assert {(r.slug, r.metric): r.decision for r in results} == {
        ("s", "conversion"): "not_enough_data", ("t", "conversion"): "not_enough_data",
        ("t", "revenue"): "not_enough_data"}
    assert all(r.p_value is None and r.ci_low is None for r in results)
    assert health["s"].status == health["t"].status == "ok"


def test_srm_flags_the_slug_and_every_decision():
    rows = [conv("s", "a", 10000, 500), conv("s", "b", 9000, 630)]
    health, results = run(rows, {"s": ["a"]})
    h = health["s"]
    assert h.status == "srm" and h.srm_p_value < 1e-10
    assert [r.decision for r in results] == ["srm"]
    assert results[0].relative_lift == pytest.approx(0.4)  # the numbers are still there, not trusted
    assert srm_description(h).startswith("s: sample ratio mismatch (arms a=10000, b=9000; p=")


def test_weighted_allocations_matching_and_not():
    rows = [conv("s", "a", 2500, 125), conv("s", "b", 7500, 375)]
    # 1:3 as allocated: no mismatch.
    assert run(rows, {"s": ["a"]}, {"s": {"a": 1, "b": 3}})[0]["s"].status == "ok"
    assert run(rows, {"s": ["a"]}, {"s": {"a": 1, "b": 3}})[0]["s"].srm_p_value == pytest.approx(1.0)
    # Allocated equally (by the seed or by default): a mismatch.
    assert run(rows, {"s": ["a"]}, {"s": {"a": 1, "b": 1}})[0]["s"].status == "srm"
    assert run(rows, {"s": ["a"]})[0]["s"].status == "srm"
    # An arm the seed does not name gets weight 0 and still counts in K: journeys in it are a mismatch.
    three = [*rows, conv("s", "c", 10, 0)]
    health, _ = run(three, {"s": ["a"]}, {"s": {"a": 1, "b": 3}})
    assert (health["s"].status, health["s"].arms, health["s"].srm_p_value) == ("srm", 3, 0.0)
    # ... and an unnamed arm with 0 journeys adds nothing: K = 3, still 1:3 between a and b.
    health, _ = run([*rows, conv("s", "c", 0, 0)], {"s": ["a"]}, {"s": {"a": 1, "b": 3}})
    assert (health["s"].status, health["s"].arms) == ("ok", 3)


def test_winning_losing_inconclusive():
    rows = [conv("w", "a", 10000, 500), conv("w", "b", 10000, 700),
            conv("l", "a", 10000, 700), conv("l", "b", 10000, 500),
            conv("n", "a", 10000, 520), conv("n", "b", 10100, 580)]
    health, results = run(rows, {"w": ["a"], "l": ["a"], "n": ["a"]})
    assert {r.slug: r.decision for r in results} == {"w": "winning", "l": "losing", "n": "inconclusive"}
    win = next(r for r in results if r.slug == "w")
    assert win.sequential_ci_low > 0 and win.ci_low > win.sequential_ci_low  # always-valid is wider
    table = decisions_markdown(health.values(), results)
    assert "| w | ok | b | conversion | +40.0% | +15.1% … +64.9% | winning |" in table


def test_revenue_rows_per_currency_and_zero_journey_arms():
    rows = [conv("s", "a", 1000, 100), conv("s", "b", 1000, 120), conv("s", "c", 0, 0),
            rev("s", "a", 1000, 1000, 20000), rev("s", "b", 1000, 1500, 30000), rev("s", "c", 0, 0, 0),
            rev("s", "a", 1000, 0, 0, "EUR"), rev("s", "b", 1000, 0, 0, "EUR"), rev("s", "c", 0, 0, 0, "EUR")]
    health, results = run(rows, {"s": ["a"]})
    keys = sorted((r.variant_key, r.metric, r.currency or "") for r in results)
    assert keys == [("b", "conversion", ""), ("b", "revenue", "EUR"), ("b", "revenue", "USD"),
                    ("c", "conversion", ""), ("c", "revenue", "EUR"), ("c", "revenue", "USD")]
    c_rows = [r for r in results if r.variant_key == "c"]
    assert all(r.mean is None and r.journeys == 0 and r.relative_lift is None for r in c_rows)
    # 3 arms, c with 0 journeys: 2000 journeys split 1000/1000/0 against thirds is an SRM, which
    # overrides every decision of the slug.
    assert health["s"].arms == 3 and health["s"].status == "srm"
    assert {r.decision for r in results} == {"srm"}
