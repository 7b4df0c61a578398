"""`experiment_health` and `experiment_results` (contract section 9): the statistics of every slug,
computed from the dbt metrics mart and written to the warehouse in the same refresh, with the
decisions as a markdown table in the metadata and an asset check that fails on any slug in SRM.

The statistics of every slug are computed each time from the metrics mart (a few rows per arm,
incremental in dbt: its rows change only for the slugs new or changed rows touch); only the slugs
whose health or results differ from the stored rows are rewritten, so a refresh with nothing new
writes nothing and the tables always equal a rebuild (bench/bench_pipeline.py: the stage's cost).
"""

# No `from __future__ import annotations`: Dagster reads the asset context annotation at runtime.
import hashlib
from datetime import UTC, datetime

import dagster as dg

from models.experiment_allocations import AllocationError, unknown_slugs
from models.experiment_columns import HEALTH_COLUMN_DESCRIPTIONS, RESULT_COLUMN_DESCRIPTIONS
from models.experiment_results import (
    HEALTH_COLUMNS,
    RESULT_COLUMNS,
    ExperimentSettings,
    decisions_markdown,
    evaluate,
    srm_description,
    srm_slugs,
)
from models.marts import EXPERIMENT_HEALTH, EXPERIMENT_RESULTS
from resources.experiment_tables import column_type, read_inputs, replace_results
from resources.warehouse import Warehouse
from resources.warehouse_writer import WarehouseWriter

HEALTH_KEY = dg.AssetKey("experiment_health")
RESULTS_KEY = dg.AssetKey("experiment_results")
SRM_CHECK = "no_sample_ratio_mismatch"
# Where merchandising edits the intended split (the dbt seed `experiment_allocations`).
SEED_FILE = "dbt_project/seeds/experiment_allocations.csv"
# dbt assets this reads (models in the staging schema carry its name as a key prefix).
UPSTREAM = [
    dg.AssetKey("experiment_variant_metrics"),
    dg.AssetKey("experiment_variant_journeys"),
    dg.AssetKey("experiment_daily_assignments"),
    dg.AssetKey(["staging", "experiment_allocations"]),
    dg.AssetKey(["staging", "int_experiment_journey_arms"]),
]


def _content_version(rows: object) -> dg.DataVersion:
    """A data version from the rows themselves: a refresh that computes the same statistics leaves
    the digests downstream current."""
    return dg.DataVersion(hashlib.sha256(repr(rows).encode()).hexdigest()[:24])


def _column_schema(columns: tuple[str, ...], descriptions: dict[str, str]) -> dict:
    """The table's columns, SQL types and meanings, as the Dagster UI shows them."""
    return {"dagster/column_schema": dg.TableSchema(columns=[
        dg.TableColumn(name, column_type(name), description=descriptions[name]) for name in columns])}


def build_experiment_assets(settings: ExperimentSettings, schema: str | None = None) -> dg.AssetsDefinition:
    """Both tables from one computation (they share every input); the SRM check rides on health.
    `schema` (the warehouse schema) names the tables in the UI."""

    def table(name: str) -> dict[str, str]:
        return {"dagster/table_name": f"{schema}.{name}"} if schema else {}

    @dg.multi_asset(
        specs=[
            dg.AssetSpec(HEALTH_KEY, deps=UPSTREAM, group_name="marts", kinds={"python", "sql"},
                         description="Per slug: control, status (ok, srm, no_control, multiple_controls, "
                         "not_enough_data), arms, journeys, multiple_exposure_journeys, SRM p-value.",
                         metadata={**table(EXPERIMENT_HEALTH), **_column_schema(HEALTH_COLUMNS, HEALTH_COLUMN_DESCRIPTIONS)}),
            dg.AssetSpec(RESULTS_KEY, deps=UPSTREAM, group_name="marts", kinds={"python", "sql"},
                         description="Per challenger, metric and currency: lift against control, 95% and "
                         "always-valid intervals, p-values and the decision; chance to win, credible "
                         "interval, risks, corrected p-value, power, journeys and days still needed.",
                         metadata={**table(EXPERIMENT_RESULTS), **_column_schema(RESULT_COLUMNS, RESULT_COLUMN_DESCRIPTIONS)}),
        ],
        check_specs=[dg.AssetCheckSpec(SRM_CHECK, asset=HEALTH_KEY,
                                       description="No slug has a sample ratio mismatch")],
        pool="warehouse_writer",
    )
    def experiment_statistics(
        context: dg.AssetExecutionContext, warehouse: Warehouse,
        warehouse_writer: WarehouseWriter,  # held for the whole run: one writer on the warehouse
    ):
        try:
            inputs = read_inputs(warehouse)
        except AllocationError as exc:
            # No SRM test against a bad split: the tables keep the last good statistics.
            raise dg.Failure(description=f"experiment statistics not computed: {exc}; fix {SEED_FILE} and run "
                             "`pricing-ops refresh`") from exc
        unknown = unknown_slugs(inputs["allocations"], {m.slug for m in inputs["metrics"]})
        if unknown:
            context.log.warning(f"{SEED_FILE} names slug(s) no exposure has: {', '.join(map(repr, unknown))}; "
                                "their weights are unused (a typo, or an experiment not started yet?)")
        as_of = inputs["as_of"] or datetime.now(UTC).date()
        health, results = evaluate(inputs["metrics"], inputs["controls"], inputs["allocations"],
                                   inputs["multiple"], as_of, settings, inputs["window_journeys"])
        rewritten = replace_results(warehouse, health, results)
        table = decisions_markdown(health, results)
        flagged = srm_slugs(health)
        statuses: dict[str, int] = {}
        for h in health:
            statuses[h.status] = statuses.get(h.status, 0) + 1
        context.log.info(f"experiment statistics as of {as_of}: {len(health)} slugs, {len(results)} comparisons, "
                         f"{len(rewritten)} slugs rewritten")
        yield dg.MaterializeResult(asset_key=HEALTH_KEY, data_version=_content_version(health), metadata={
            "dagster/row_count": dg.MetadataValue.int(len(health)),
            "statuses": dg.MetadataValue.json(statuses),
            "rewritten_slugs": dg.MetadataValue.int(len(rewritten)),
            "unknown_allocation_slugs": dg.MetadataValue.json(unknown),
            "decisions": dg.MetadataValue.md(table),
        })
        yield dg.MaterializeResult(asset_key=RESULTS_KEY, data_version=_content_version(results), metadata={
            "dagster/row_count": dg.MetadataValue.int(len(results)),
            "decisions": dg.MetadataValue.md(table),
        })
        yield dg.AssetCheckResult(
            asset_key=HEALTH_KEY,
            check_name=SRM_CHECK,
            passed=not flagged,
            description="; ".join(srm_description(h) for h in flagged) or "no slug in SRM",
            metadata={"srm_slugs": dg.MetadataValue.json([h.slug for h in flagged])},
        )

    return experiment_statistics
