"""Asset checks on what the pipeline produced that a data engineer should notice."""

from __future__ import annotations

import dagster as dg

from resources.warehouse import Warehouse

# dagster-dbt prefixes a model in a custom schema with that schema.
REJECTS_KEY = dg.AssetKey(["staging", "pricing_experiment_payload_rejects"])
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
