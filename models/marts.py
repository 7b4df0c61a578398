"""The marts of contract section 3 that dbt builds, by name: what BI reads and `bi_reader` may
SELECT. (The guardrail job's tables live in the same schema but are state, not marts.)"""

MART_TABLES: tuple[str, ...] = (
    "onboarding_pricing_experiment_segments",
    "experiment_variant_journeys",
    "experiment_slug_summary",
    "experiment_daily_assignments",
    "experiment_conversion_snapshot",
    "experiment_conversion_snapshot_history",
    "provider_guardrail_status",
)
