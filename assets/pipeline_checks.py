"""Asset checks on what the pipeline produced that a data engineer should notice."""

from __future__ import annotations

import dagster as dg

from resources.warehouse import Warehouse

# dagster-dbt prefixes a model in a custom schema with that schema.
REJECTS_KEY = dg.AssetKey(["staging", "pricing_experiment_payload_rejects"])
SOURCE_REJECTS_KEY = dg.AssetKey(["staging", "source_row_rejects"])
# Above this share of rejected pricing-experiment entries the source app is probably broken.
MAX_REJECTS_RATE = 0.10


@dg.asset_check(asset=REJECTS_KEY, description="Share of pricing-experiment payload entries rejected")
def payload_rejects_rate_check(warehouse: Warehouse) -> dg.AssetCheckResult:
    with warehouse.connect(read_only=True) as conn:
        rejects = conn.fetch_dicts(
            f"select reason, count(*) as n from {warehouse.staging_schema}.pricing_experiment_payload_rejects "
            "group by reason order by n desc, reason"
        )
        exposures = conn.fetchone(
            f"select count(*) from {warehouse.schema}.onboarding_pricing_experiment_segments"
        )[0]
    rejected = sum(int(r["n"]) for r in rejects)
    total = rejected + int(exposures)
    rate = rejected / total if total else 0.0
    return dg.AssetCheckResult(
        passed=rate <= MAX_REJECTS_RATE,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "rejected_entries": dg.MetadataValue.int(rejected),
            "exposures": dg.MetadataValue.int(int(exposures)),
            "rejects_rate": dg.MetadataValue.float(round(rate, 5)),
            "by_reason": dg.MetadataValue.md(
                "\n".join(f"- `{r['reason']}`: {r['n']}" for r in rejects) or "_none_"
            ),
        },
    )


@dg.asset_check(
    asset=SOURCE_REJECTS_KEY,
    description="Source rows kept out of the marts (dirty telemetry and orders) or held (events without journey)",
)
def source_row_rejects_check(warehouse: Warehouse) -> dg.AssetCheckResult:
    """Counts per table and reason in the run's metadata; a warning, never a failed run (dirty rows
    are expected and never act)."""
    with warehouse.connect(read_only=True) as conn:
        rejects = conn.fetch_dicts(
            f"select source_table, reason, count(*) as n from {warehouse.staging_schema}.source_row_rejects "
            "group by source_table, reason order by source_table, reason"
        )
    counts = {f"{r['source_table']}.{r['reason']}": int(r["n"]) for r in rejects}
    return dg.AssetCheckResult(
        passed=not counts,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "rejected_rows": dg.MetadataValue.int(sum(counts.values())),
            **{key: dg.MetadataValue.int(n) for key, n in counts.items()},
            "by_reason": dg.MetadataValue.md("\n".join(f"- `{k}`: {n}" for k, n in counts.items()) or "_none_"),
        },
    )
