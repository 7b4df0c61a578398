"""The marts of contract sections 3 and 9 that dbt builds, by name: what BI reads and `bi_reader` may
SELECT. (The guardrail job's tables live in the same schema but are state, not marts.)"""

MART_TABLES: tuple[str, ...] = (
    "onboarding_pricing_experiment_segments",
    "experiment_variant_journeys",
    "experiment_slug_summary",
    "experiment_daily_assignments",
    "experiment_conversion_snapshot",
    "experiment_conversion_snapshot_history",
    "provider_guardrail_status",
    "experiment_variant_metrics",
)

# Written by the experiment results assets (Python, contract section 9), read by BI like the marts.
EXPERIMENT_RESULT_TABLES: tuple[str, ...] = ("experiment_health", "experiment_results")
# Everything `bi_reader` may SELECT.
BI_TABLES: tuple[str, ...] = MART_TABLES + EXPERIMENT_RESULT_TABLES
