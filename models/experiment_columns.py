"""What each column of `experiment_health` and `experiment_results` means (contract sections 9 and
9.1), in a line each: the asset's column schema in the Dagster UI and whoever documents the tables
for BI read them from here. Relative figures are fractions of the control mean (0.05 = +5%).
"""

from __future__ import annotations

HEALTH_COLUMN_DESCRIPTIONS: dict[str, str] = {
    "slug": "Experiment slug.",
    "control_variant_key": "The slug's control arm (null with no control or more than one).",
    "status": "ok, srm (sample ratio mismatch), no_control, multiple_controls or not_enough_data.",
    "arms": "Variant keys ever exposed up to the as-of date (0-journey arms included).",
    "journeys": "Journeys counted in the slug's arms (first exposure's variant; switchers left out).",
    "multiple_exposure_journeys": "Journeys left out for seeing two or more variants of the slug.",
    "srm_p_value": "Chi-square p-value of the arms' journeys against the allocation (null: too few journeys).",
    "as_of_date": "UTC date the statistics are as of.",
}

RESULT_COLUMN_DESCRIPTIONS: dict[str, str] = {
    "slug": "Experiment slug.",
    "variant_key": "The challenger arm compared with control.",
    "metric": "conversion, revenue, loyalty_points or average_order_value (revenue per booked journey).",
    "currency": "Order currency for revenue and average_order_value; null for the others.",
    "control_variant_key": "The slug's control arm.",
    "control_journeys": "Journeys in the control arm (in the currency, for revenue and order value).",
    "control_mean": "Control mean per journey (per booked journey for average_order_value; null without one).",
    "journeys": "Journeys in the challenger arm (in the currency, for revenue and order value).",
    "mean": "Challenger mean per journey (per booked journey for average_order_value; null without one).",
    "relative_lift": "(challenger mean - control mean) / control mean.",
    "ci_low": "Lower end of the fixed-horizon 95% interval of the relative lift.",
    "ci_high": "Upper end of the fixed-horizon 95% interval of the relative lift.",
    "p_value": "Fixed-horizon two-sided p-value (Welch t-test on the relative lift).",
    "sequential_ci_low": "Lower end of the always-valid 95% interval (safe to read every day).",
    "sequential_ci_high": "Upper end of the always-valid 95% interval.",
    "sequential_p_value": "Always-valid p-value.",
    "decision": "winning / losing (always-valid interval above / below 0), inconclusive, srm or not_enough_data.",
    "as_of_date": "UTC date the statistics are as of.",
    "chance_to_win": "Bayesian probability that the challenger's lift is above 0 (GrowthBook, flat prior).",
    "credible_low": "Lower end of the Bayesian 95% credible interval of the relative lift.",
    "credible_high": "Upper end of the Bayesian 95% credible interval of the relative lift.",
    "risk_challenger": "Expected relative loss of shipping the challenger if it is worse: E[max(0, -lift)].",
    "risk_control": "Expected relative loss of keeping control if the challenger is better: E[max(0, lift)].",
    "adjusted_p_value": "p_value corrected across the slug's comparisons (EXPERIMENT_CORRECTION: holm, bh, none).",
    "power": "Chance to detect a lift of EXPERIMENT_TARGET_MDE with the journeys there are now (alpha 0.05).",
    "journeys_needed": "More journeys (both arms, same split) for 80% power at EXPERIMENT_TARGET_MDE; 0 when enough.",
    "days_needed": "Days those journeys take at the last 7 days' traffic; null when there is none.",
}
