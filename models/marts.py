"""The marts of contract section 3 that dbt builds, by name: what BI reads and `bi_reader` may
SELECT. (The guardrail job's tables live in the same schema but are state, not marts: their names
are in `resources/stores/`.) Every room names a mart through these constants."""

SEGMENTS_MART = "onboarding_pricing_experiment_segments"
VARIANT_JOURNEYS = "experiment_variant_journeys"
SLUG_SUMMARY = "experiment_slug_summary"
DAILY_ASSIGNMENTS = "experiment_daily_assignments"
CONVERSION_SNAPSHOT = "experiment_conversion_snapshot"
CONVERSION_SNAPSHOT_HISTORY = "experiment_conversion_snapshot_history"
PROVIDER_GUARDRAIL_STATUS = "provider_guardrail_status"
EXPERIMENT_VARIANT_METRICS = "experiment_variant_metrics"

MART_TABLES: tuple[str, ...] = (
    SEGMENTS_MART,
    VARIANT_JOURNEYS,
    SLUG_SUMMARY,
    DAILY_ASSIGNMENTS,
    CONVERSION_SNAPSHOT,
    CONVERSION_SNAPSHOT_HISTORY,
    PROVIDER_GUARDRAIL_STATUS,
    EXPERIMENT_VARIANT_METRICS,
)

# Written by the experiment results assets (Python, contract section 9), read by BI like the marts.
EXPERIMENT_HEALTH = "experiment_health"
EXPERIMENT_RESULTS = "experiment_results"
EXPERIMENT_RESULT_TABLES: tuple[str, ...] = (EXPERIMENT_HEALTH, EXPERIMENT_RESULTS)
# Everything `bi_reader` may SELECT.
BI_TABLES: tuple[str, ...] = MART_TABLES + EXPERIMENT_RESULT_TABLES
