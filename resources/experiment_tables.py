"""The experiment results tables (`experiment_health`, `experiment_results`, contract section 9) in
the warehouse: reading their inputs and replacing their rows, on every engine.

Rows are replaced in one transaction (delete, insert), never dropped and recreated, so readers
never see a missing table and `bi_reader`'s SELECT grant stays in place. The computed rows are
staged in bulk and compared with the stored ones in SQL: 10,000 slugs (80,000 result rows) are
written, or found unchanged, in seconds (bench/bench_experiment_stats.py).
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from models.experiment_allocations import AllocationRow, validated_allocations
from models.experiment_digest import ChallengerResult, SlugExperiment
from models.experiment_power import rate_window
from models.experiment_results import HEALTH_COLUMNS, RESULT_COLUMNS, HealthRow, MetricRow, ResultRow
from resources.stores.tables import stage, unstage
from resources.warehouse import Warehouse, WarehouseConnection

_TYPES = {
    "slug": "text", "variant_key": "text", "metric": "text", "currency": "text", "status": "text",
    "control_variant_key": "text", "decision": "text", "as_of_date": "date",
    "arms": "bigint", "journeys": "bigint", "multiple_exposure_journeys": "bigint", "control_journeys": "bigint",
    "journeys_needed": "bigint", "days_needed": "bigint",
}  # every other column is a statistic: double precision
BI_READER = "bi_reader"


def column_type(name: str) -> str:
    """The SQL type of a column of either table."""
    return _TYPES.get(name, "double precision")


def _engine_columns(conn: WarehouseConnection, columns: Sequence[str]) -> list[tuple[str, str]]:
    """(name, type in this engine) of each column."""
    return [(name, conn.engine.state_type(_STAGE_KINDS[column_type(name)])) for name in columns]


def read_inputs(warehouse: Warehouse) -> dict[str, Any]:
    """What the statistics need: metrics rows, controls, allocations (the seed, when built; a bad
    row raises `AllocationError`), the journeys left out for seeing two or more variants, and each
    slug's daily journeys summed over the rate window before the as-of date (days_needed), all per
    slug."""
    schema, staging = warehouse.schema, warehouse.staging_schema
    with warehouse.connect(read_only=True) as conn:
        metrics = [
            MetricRow(r[0], r[1], r[2], r[3], int(r[4]), Decimal(r[5]), Decimal(r[6]), int(r[7]))
            for r in conn.fetchall(
                "select slug, variant_key, metric, currency, journeys, total, total_squares, booked_journeys "
                f"from {schema}.experiment_variant_metrics")
        ]
        as_of = conn.fetchone(f"select max(as_of_date) from {schema}.experiment_variant_metrics")[0]
        window: dict[str, int] = {}
        if as_of is not None:
            first, last = rate_window(as_of)
            window = {slug: int(n) for slug, n in conn.fetchall(
                f"select slug, sum(journey_count) from {schema}.experiment_daily_assignments "
                "where activity_date between :first and :last group by slug", {"first": first, "last": last})}
        controls: dict[str, list[str]] = {}
        for slug, key in conn.fetchall(
                f"select slug, variant_key from {schema}.experiment_variant_journeys where is_control"):
            controls.setdefault(slug, []).append(key)
        allocations: dict[str, dict[str, float]] = {}
        if conn.table_exists(staging, "experiment_allocations"):
            # Checked again as loaded (a seed loaded by hand, or by an older version, never reached
            # the file check): an SRM test never runs against a bad split (AllocationError).
            rows = [AllocationRow(slug, key, weight, f"row (slug {slug!r}, variant_key {key!r})")
                    for slug, key, weight in conn.fetchall(
                        f"select slug, variant_key, weight from {staging}.experiment_allocations "
                        "order by slug, variant_key")]
            allocations = validated_allocations(rows, f"{staging}.experiment_allocations")
        multiple = {slug: int(n) for slug, n in conn.fetchall(
            f"select slug, count(*) from {staging}.int_experiment_journey_arms "
            "where is_multiple_exposure group by slug")}
    return {"metrics": metrics, "as_of": as_of, "controls": controls, "allocations": allocations,
            "multiple": multiple, "window_journeys": window}


def replace_results(warehouse: Warehouse, health: Sequence[HealthRow], results: Sequence[ResultRow]) -> list[str]:
    """Both tables end up holding exactly these rows, in one transaction; returns the slugs rewritten.

    Only the slugs whose rows differ from the stored ones are deleted and inserted again (a slug gone
    from `health` loses its rows): a refresh that changed nothing writes nothing, and the result never
    depends on what was stored before, so it equals a rebuild from empty tables.
    """
    health_rows = [tuple(getattr(h, name) for name in HEALTH_COLUMNS) for h in health]
    tables = ((f"{warehouse.schema}.experiment_health", HEALTH_COLUMNS, health_rows),
              (f"{warehouse.schema}.experiment_results", RESULT_COLUMNS, results))
    changed: set[str] = set()
    with warehouse.connect() as conn:
        staged: list[str] = []
        try:
            for index, (qualified, columns, rows) in enumerate(tables):
                _ensure_table(conn, qualified, columns)
                staged.append(stage(conn, f"_stage_experiment_{index}",
                                    [(c, _STAGE_KINDS[column_type(c)], True) for c in columns], rows))
                changed |= _differing_slugs(conn, qualified, staged[-1], columns)
            if changed:
                slugs = stage(conn, "_stage_experiment_slugs", [("slug", "text", False)], [(s,) for s in changed])
                staged.append(slugs)
                for (qualified, columns, _), name in zip(tables, staged):
                    conn.engine.rewrite_rows(conn, qualified, ", ".join(columns), name, slugs)
        finally:
            for name in staged:
                unstage(conn, name)
    return sorted(changed)


# Column types as the state stores' staging names them.
_STAGE_KINDS = {"text": "text", "bigint": "bigint", "date": "date", "double precision": "double"}


def _differing_slugs(conn: WarehouseConnection, qualified: str, staged: str, columns: Sequence[str]) -> set[str]:
    """Slugs with a row stored but not computed, or computed but not stored (values compared
    exactly, nulls alike: SQL's EXCEPT)."""
    listed = ", ".join(columns)
    rows = conn.fetchall(
        f"select slug from (select {listed} from {staged} except select {listed} from {qualified}) as added "
        f"union select slug from (select {listed} from {qualified} except select {listed} from {staged}) as gone")
    return {slug for (slug,) in rows}


def _ensure_table(conn: WarehouseConnection, qualified: str, columns: Sequence[str]) -> None:
    """The table with every column: one made by an earlier version gets the new columns added
    (null until its slugs are rewritten, which the comparison with the wanted rows makes happen)."""
    typed = _engine_columns(conn, columns)
    conn.execute(conn.engine.create_state_table_sql(qualified, typed))
    conn.engine.add_missing_columns(conn, qualified, typed)
    conn.engine.grant_bi_reader(conn, qualified)


def read_digest_experiments(conn: WarehouseConnection, schema: str) -> tuple[SlugExperiment, ...]:
    """Every slug's health and challenger results, for the digests (nothing before the first build)."""
    if not (conn.table_exists(schema, "experiment_health") and conn.table_exists(schema, "experiment_results")):
        return ()
    results: dict[str, list[ChallengerResult]] = {}
    control_journeys: dict[str, int] = {}
    # `select *`: a table the statistics have not yet widened (section 9.1 columns) still reads.
    for r in conn.fetch_dicts(f"select * from {schema}.experiment_results"):
        days = r.get("days_needed")
        results.setdefault(r["slug"], []).append(ChallengerResult(
            r["variant_key"], r["metric"], r["currency"], int(r["journeys"]), r["relative_lift"],
            r["sequential_ci_low"], r["sequential_ci_high"], r["decision"], r.get("chance_to_win"),
            r.get("risk_challenger"), r["control_mean"], None if days is None else int(days)))
        if r["metric"] == "conversion":
            control_journeys[r["slug"]] = int(r["control_journeys"])
    out = []
    for h in conn.fetch_dicts(
        f"select slug, status, control_variant_key, srm_p_value, as_of_date from {schema}.experiment_health"
    ):
        challengers = sorted(results.get(h["slug"], []), key=lambda c: (c.variant_key, c.metric, c.currency or ""))
        out.append(SlugExperiment(h["slug"], h["status"], h["control_variant_key"], control_journeys.get(h["slug"], 0),
                                  h["srm_p_value"], h["as_of_date"], tuple(challengers)))
    return tuple(sorted(out, key=lambda e: e.slug))
