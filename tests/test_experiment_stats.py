"""The statistics of contract sections 9 and 9.1 against published reference values (GrowthBook's
gbstats 0.8.0: frequentist engine, Bayesian engine with its flat prior, RatioStatistic), a revenue
case computed by hand, the p-value corrections, power and journeys/days needed, every slug status
and decision, and the null cases."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal as D

import pytest

from models.experiment_comparison import compare
from models.experiment_power import days_needed, rate_window
from models.experiment_results import (
    ExperimentSettings,
    MetricRow,
    decisions_markdown,
    evaluate,
    srm_description,
)
from models.experiment_stats import ArmSums, srm_p_value
from models.p_value_corrections import adjust_p_values

AS_OF = date(2026, 3, 5)
SETTINGS = ExperimentSettings(srm_p_threshold=0.001, sequential_tuning=5000, min_journeys=100)
TOL = 1e-6


def test_conversion_reference_values():
    control = ArmSums(10000, D(520), D(520), 520)
    challenger = ArmSums(10100, D(580), D(580), 580)
    c = compare(control, challenger, "conversion", sequential_tuning=5000, min_journeys=100, target_mde=0.10)
    assert c.relative_lift == pytest.approx(0.104341, abs=TOL)
    assert (c.ci_low, c.ci_high) == (pytest.approx(-0.022767, abs=TOL), pytest.approx(0.231450, abs=TOL))
    assert c.p_value == pytest.approx(0.107632, abs=TOL)
    assert (c.sequential_ci_low, c.sequential_ci_high) == (
        pytest.approx(-0.098484, abs=TOL), pytest.approx(0.307166, abs=TOL))
    # Section 9.1's proportion reference (gbstats 0.8.0 EffectBayesianABTest, flat prior).
    assert c.chance_to_win == pytest.approx(0.946192, abs=TOL)
    assert (c.credible_low, c.credible_high) == (pytest.approx(-0.022759, abs=TOL), pytest.approx(0.231442, abs=TOL))
    assert c.risk_control == pytest.approx(0.105817, abs=TOL)
    assert c.risk_challenger == pytest.approx(0.001476, abs=TOL)
    # The two risks differ by the expected lift: E[max(0, X)] - E[max(0, -X)] = E[X].
    assert c.risk_control - c.risk_challenger == pytest.approx(c.relative_lift, abs=1e-12)
    # Power for a 10% lift and the journeys still needed (N (sigma/sigma*)^2 - N = 46,244.26, up).
    assert round(c.power, 3) == 0.338
    assert c.power == pytest.approx(0.3382381, abs=TOL)
    assert c.journeys_needed == 46_245


def test_average_order_value_reference_values():
    # Section 9.1's ratio reference: revenue over booked journeys (gbstats RatioStatistic, delta method).
    control = ArmSums(1000, D(5200), D(560000), 52)
    challenger = ArmSums(1020, D(5700), D(590000), 60)
    assert control.statistic("average_order_value")[0] == 100.0  # revenue per booked journey
    assert challenger.statistic("average_order_value")[0] == 95.0
    c = compare(control, challenger, "average_order_value", sequential_tuning=5000, min_journeys=100)
    assert c.relative_lift == pytest.approx(-0.05, abs=TOL)
    assert (c.ci_low, c.ci_high) == (pytest.approx(-0.151619, abs=TOL), pytest.approx(0.051619, abs=TOL))
    assert c.p_value == pytest.approx(0.334688, abs=TOL)
    assert c.chance_to_win == pytest.approx(0.167286, abs=TOL)
    assert c.risk_control == pytest.approx(0.004613, abs=TOL)
    assert c.risk_challenger == pytest.approx(0.054613, abs=TOL)


def test_ratio_variance_by_hand():
    # Control: n 1000, B 52 booked, S 5200, Q 560000. Delta method with y = revenue, d = booked:
    # var_y = (560000 - 5200^2/1000)/999, var_d = (52 - 52^2/1000)/999, cov = (5200 - 5200*52/1000)/999,
    # var = var_y/0.052^2 - 2 cov 5.2/0.052^3 + 5.2^2 var_d/0.052^4.
    var_y, var_d, cov = (560000 - 5200**2 / 1000) / 999, (52 - 52**2 / 1000) / 999, (5200 - 5200 * 52 / 1000) / 999
    by_hand = var_y / 0.052**2 - 2 * cov * 5.2 / 0.052**3 + 5.2**2 * var_d / 0.052**4
    _, variance = ArmSums(1000, D(5200), D(560000), 52).statistic("average_order_value")
    assert variance == pytest.approx(by_hand, rel=1e-9)
    # ... which is n^2 (Q B - S^2) / ((n - 1) B^3) = 10^6 * 2,080,000 / (999 * 140,608).
    assert variance == pytest.approx(1e6 * 2_080_000 / (999 * 140_608), rel=1e-12)


def test_srm_reference_value_at_equal_weights():
    assert srm_p_value([10000, 10100, 9800]) == pytest.approx(0.0962182, abs=TOL)
    # Weights given as equal are the same test.
    assert srm_p_value([10000, 10100, 9800], [2, 2, 2]) == pytest.approx(0.0962182, abs=TOL)


def test_revenue_case_by_hand():
    # Control y = 10, 20, 0, 30: n 4, sum 60, sum of squares 100 + 400 + 0 + 900 = 1400.
    # Challenger y = 20, 30, 40, 0, 10: n 5, sum 100, sum of squares 400 + 900 + 1600 + 0 + 100 = 3000.
    control, challenger = ArmSums(4, D(60), D(1400), 3), ArmSums(5, D(100), D(3000), 4)
    # Means 15 and 20; s^2 = (1400 - 60^2/4)/3 = 500/3; (3000 - 100^2/5)/4 = 250.
    assert control.statistic("revenue") == (15.0, pytest.approx(500 / 3, abs=1e-12))
    assert challenger.statistic("revenue") == (20.0, 250.0)
    c = compare(control, challenger, "revenue", sequential_tuning=5000, min_journeys=2, target_mde=0.05)
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
    # Bayesian, flat prior: lift ~ N(1/3, V); Phi and phi from math.erf, not scipy.
    lift, sd = 1 / 3, math.sqrt(0.5514403292)
    z = lift / sd

    def phi(x):
        return 0.5 * (1 + math.erf(x / math.sqrt(2)))

    density = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    assert c.chance_to_win == pytest.approx(phi(z), abs=TOL)  # 0.673237
    assert (c.credible_low, c.credible_high) == (pytest.approx(lift - 1.959964 * sd, abs=TOL),
                                                 pytest.approx(lift + 1.959964 * sd, abs=TOL))
    assert c.risk_control == pytest.approx(lift * phi(z) + sd * density, abs=TOL)
    assert c.risk_challenger == pytest.approx(-lift * phi(-z) + sd * density, abs=TOL)
    # Power at 5%: Phi(0.05/sd - 1.959964) + Phi(-0.05/sd - 1.959964); needed 9 (sd/sigma*)^2 - 9,
    # sigma* = 0.05 / (1.959964 + 0.841621).
    assert c.power == pytest.approx(phi(0.05 / sd - 1.959964) + phi(-0.05 / sd - 1.959964), abs=TOL)
    assert c.journeys_needed == math.ceil(9 * (sd / (0.05 / (1.959964 + 0.841621))) ** 2 - 9)  # 17,382


# --- statuses and decisions ---------------------------------------------------------------------

def conv(slug, variant, n, conversions):
    return MetricRow(slug, variant, "conversion", None, n, D(conversions), D(conversions), conversions)


def rev(slug, variant, n, total, squares, currency="USD", booked=None):
    return MetricRow(slug, variant, "revenue", currency, n, D(total), D(squares), n if booked is None else booked)


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
    # Every booked control order is 5: its order value has no variance either.
    assert {(r.slug, r.metric): r.decision for r in results} == {
        ("s", "conversion"): "not_enough_data", ("t", "conversion"): "not_enough_data",
        ("t", "revenue"): "not_enough_data", ("t", "average_order_value"): "not_enough_data"}
    assert all(_new_columns(r) == dict.fromkeys(NEW_COLUMNS) for r in results)
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
    # Chance to win, Holm-adjusted p (one comparison: the p itself), power at 5%, days (no traffic: blank).
    assert "| w | ok | b | conversion | +40.0% | +15.1% … +64.9% | >99.9% | 4.99e-07 | 10% |  | winning |" in table
    assert "| n | ok | b | conversion | +10.4% | -9.8% … +30.7% | 94.6% | 0.108 | 12% |  | inconclusive |" in table


def test_revenue_rows_per_currency_and_zero_journey_arms():
    rows = [conv("s", "a", 1000, 100), conv("s", "b", 1000, 120), conv("s", "c", 0, 0),
            rev("s", "a", 1000, 1000, 20000), rev("s", "b", 1000, 1500, 30000), rev("s", "c", 0, 0, 0),
            rev("s", "a", 1000, 0, 0, "EUR"), rev("s", "b", 1000, 0, 0, "EUR"), rev("s", "c", 0, 0, 0, "EUR")]
    health, results = run(rows, {"s": ["a"]})
    keys = [(r.variant_key, r.metric, r.currency or "") for r in results]
    assert keys == [("b", "average_order_value", "EUR"), ("b", "average_order_value", "USD"), ("b", "conversion", ""),
                    ("b", "revenue", "EUR"), ("b", "revenue", "USD"),
                    ("c", "average_order_value", "EUR"), ("c", "average_order_value", "USD"), ("c", "conversion", ""),
                    ("c", "revenue", "EUR"), ("c", "revenue", "USD")]
    c_rows = [r for r in results if r.variant_key == "c"]
    assert all(r.mean is None and r.journeys == 0 and r.relative_lift is None for r in c_rows)
    # 3 arms, c with 0 journeys: 2000 journeys split 1000/1000/0 against thirds is an SRM, which
    # overrides every decision of the slug.
    assert health["s"].arms == 3 and health["s"].status == "srm"
    assert {r.decision for r in results} == {"srm"}


# --- section 9.1: corrections, days needed, order value, null cases -----------------------------

NEW_COLUMNS = ("chance_to_win", "credible_low", "credible_high", "risk_challenger", "risk_control",
               "adjusted_p_value", "power", "journeys_needed", "days_needed")


def _new_columns(row):
    return {name: getattr(row, name) for name in NEW_COLUMNS}


def test_holm_and_benjamini_hochberg_three_challengers():
    assert adjust_p_values([0.01, 0.02, 0.04], "holm") == pytest.approx([0.03, 0.04, 0.04], abs=1e-12)
    assert adjust_p_values([0.01, 0.02, 0.04], "bh") == pytest.approx([0.03, 0.03, 0.04], abs=1e-12)
    assert adjust_p_values([0.01, 0.02, 0.04], "none") == [0.01, 0.02, 0.04]
    # The order given is kept; monotone in p; capped at 1; ties get one value.
    assert adjust_p_values([0.04, 0.01, 0.02], "holm") == pytest.approx([0.04, 0.03, 0.04], abs=1e-12)
    assert adjust_p_values([0.04, 0.01, 0.02], "bh") == pytest.approx([0.04, 0.03, 0.03], abs=1e-12)
    assert adjust_p_values([0.5, 0.6], "holm") == [1.0, 1.0]
    assert adjust_p_values([0.02, 0.02, 0.5], "holm") == pytest.approx([0.06, 0.06, 0.5])
    assert adjust_p_values([0.02, 0.02, 0.5], "bh") == pytest.approx([0.03, 0.03, 0.5])
    assert adjust_p_values([], "bh") == []
    with pytest.raises(ValueError, match="unknown p-value correction 'bonferroni'"):
        adjust_p_values([0.1], "bonferroni")


def test_adjusted_p_values_span_every_row_of_a_slug_with_a_p_value():
    # Three challengers on conversion plus revenue rows: every row with a p-value is one comparison;
    # c has too few journeys (no p) and is not counted; the other slug is corrected apart.
    rows = [conv("s", "a", 10000, 520), conv("s", "b", 10100, 580), conv("s", "d", 10000, 600),
            conv("s", "c", 50, 5),
            rev("s", "a", 10000, 52000, 5_600_000, booked=520), rev("s", "b", 10100, 58000, 6_100_000, booked=580),
            rev("s", "d", 10000, 61000, 6_500_000, booked=600), rev("s", "c", 50, 500, 50_000, booked=5),
            conv("t", "a", 10000, 520), conv("t", "b", 10100, 580)]
    for method in ("holm", "bh", "none"):
        settings = ExperimentSettings(correction=method)
        _, results = run(rows, {"s": ["a"], "t": ["a"]}, settings=settings)
        s_rows = [r for r in results if r.slug == "s" and r.p_value is not None]
        assert len(s_rows) == 6  # b and d: conversion, revenue USD, average order value USD
        assert [r.adjusted_p_value for r in s_rows] == adjust_p_values([r.p_value for r in s_rows], method)
        assert all(r.adjusted_p_value is None for r in results if r.variant_key == "c")
        [t_row] = [r for r in results if r.slug == "t"]
        assert t_row.adjusted_p_value == t_row.p_value  # one comparison: nothing to correct
    _, holm = run(rows, {"s": ["a"], "t": ["a"]})
    assert all(r.adjusted_p_value >= r.p_value for r in holm if r.p_value is not None)
    # srm slugs are corrected as well (section 9.1): their rows keep every column.
    _, srm = run([conv("x", "a", 10000, 500), conv("x", "b", 9000, 630)], {"x": ["a"]})
    assert srm[0].decision == "srm" and srm[0].adjusted_p_value == srm[0].p_value and srm[0].chance_to_win > 0.99


def test_days_needed_from_the_rate_window():
    as_of = date(2026, 3, 5)
    assert rate_window(as_of) == (date(2026, 2, 26), date(2026, 3, 4))  # 7 dates, the as-of date left out
    # 46,245 journeys at 7,000 journeys over the 7 dates (1,000 a day), the pair holding all of them: 47 days.
    assert days_needed(46_245, 20_100, 20_100, 7_000) == 47
    # The pair holds a tenth of the slug's journeys: 100 a day -> 463 days (462.45 up).
    assert days_needed(46_245, 2_010, 20_100, 7_000) == 463
    # Exact: 700 needed at 100 a day is 7 days, not 8.
    assert days_needed(700, 10, 10, 700) == 7
    assert days_needed(0, 10, 10, 0) == 0  # nothing needed: 0 even without traffic
    assert days_needed(1, 10, 10, 0) is None  # needed, no traffic: never


def test_new_columns_through_evaluate_with_days_and_the_markdown():
    rows = [conv("n", "a", 10000, 520), conv("n", "b", 10100, 580),
            conv("quiet", "a", 10000, 520), conv("quiet", "b", 10100, 580)]
    settings = ExperimentSettings(target_mde=0.10)
    health, results = evaluate(rows, {"n": ["a"], "quiet": ["a"]}, {}, {}, AS_OF, settings,
                               window_journeys={"n": 7000})
    by_slug = {r.slug: r for r in results}
    n = by_slug["n"]
    assert (n.journeys_needed, n.days_needed) == (46_245, 47)  # 1,000 a day, the pair is the whole slug
    assert n.chance_to_win == pytest.approx(0.946192, abs=TOL) and n.power == pytest.approx(0.338238, abs=TOL)
    quiet = by_slug["quiet"]
    assert (quiet.journeys_needed, quiet.days_needed) == (46_245, None)  # no journeys in the window
    table = decisions_markdown(health, results)
    assert "| n | ok | b | conversion | +10.4% | -9.8% … +30.7% | 94.6% | 0.108 | 34% | 47 | inconclusive |" in table


def test_average_order_value_rows_and_their_null_cases():
    usd = [rev("s", "a", 1000, 5200, 560000, booked=52), rev("s", "b", 1020, 5700, 590000, booked=60)]
    # One booked journey in b (EUR): too few for the ratio (its mean is there); none in c: no mean.
    eur = [rev("s", "a", 1000, 5200, 560000, "EUR", booked=52), rev("s", "b", 1000, 100, 10000, "EUR", booked=1)]
    rows = [conv("s", "a", 2000, 104), conv("s", "b", 2020, 61), conv("s", "c", 2010, 0),
            *usd, *eur, rev("s", "c", 1000, 0, 0, booked=0), rev("s", "c", 1010, 0, 0, "EUR", booked=0)]
    _, results = run(rows, {"s": ["a"]})
    aov = {(r.variant_key, r.currency): r for r in results if r.metric == "average_order_value"}
    usd_b = aov[("b", "USD")]
    assert (usd_b.control_journeys, usd_b.journeys, usd_b.control_mean, usd_b.mean) == (1000, 1020, 100.0, 95.0)
    assert usd_b.relative_lift == pytest.approx(-0.05, abs=TOL) and usd_b.decision == "inconclusive"
    assert usd_b.chance_to_win == pytest.approx(0.167286, abs=TOL)
    eur_b = aov[("b", "EUR")]
    assert (eur_b.mean, eur_b.decision, eur_b.relative_lift) == (100.0, "not_enough_data", None)
    assert _new_columns(eur_b) == dict.fromkeys(NEW_COLUMNS)
    for currency in ("USD", "EUR"):
        c = aov[("c", currency)]
        assert (c.mean, c.decision) == (None, "not_enough_data") and _new_columns(c) == dict.fromkeys(NEW_COLUMNS)
    # The 100-journey rule applies to order value rows as well: 99 journeys, plenty booked, no comparison.
    _, few = run([conv("s", "a", 2000, 100), conv("s", "b", 2000, 100),
                  rev("s", "a", 99, 5200, 560000, booked=52), rev("s", "b", 1020, 5700, 590000, booked=60)], {"s": ["a"]})
    [few_aov] = [r for r in few if r.metric == "average_order_value"]
    assert (few_aov.control_journeys, few_aov.decision, few_aov.chance_to_win) == (99, "not_enough_data", None)


def test_too_few_journeys_leave_every_new_column_null():
    _, results = run([conv("s", "a", 99, 10), conv("s", "b", 100, 20)], {"s": ["a"]}, )
    [r] = results
    assert r.decision == "not_enough_data" and _new_columns(r) == dict.fromkeys(NEW_COLUMNS)


def test_settings_refuse_an_unknown_correction_and_a_target_mde_not_above_0():
    with pytest.raises(ValueError, match="correction must be one of holm, bh, none"):
        ExperimentSettings(correction="bonferroni")
    with pytest.raises(ValueError, match="target_mde must be above 0"):
        ExperimentSettings(target_mde=0)
