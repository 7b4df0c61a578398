"""Benchmark: the experiment statistics step (contract sections 9 and 9.1) for many slugs.

    uv run python bench/bench_experiment_stats.py                       # 10,000 slugs x 3 arms
    uv run python bench/bench_experiment_stats.py --slugs 20000 --currencies 2
    uv run python bench/bench_experiment_stats.py --no-warehouse        # the statistics alone

Builds the metrics mart's rows for N slugs of 3 arms each (conversion, loyalty points and revenue in
each currency, with booked journeys: 4 comparison rows per challenger and currency once order value
is derived), then times:
- the statistics step, `models.experiment_results.evaluate`: every column of both tables (lift,
  intervals, p-values, Bayesian columns, corrections, power, journeys and days needed), median of
  --rounds, wall and CPU time. Target (issue 21): under 2 s for 10,000 slugs x 3 arms;
- the asset's whole step on a DuckDB warehouse, or PostgreSQL with --postgres (read the inputs,
  evaluate, write both tables), once into empty tables and once more with nothing new (which writes
  nothing).
Wall times on a shared machine are inflated by the other processes; CPU time is this process's own.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import tempfile
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

AS_OF = date(2026, 3, 5)
TARGET_S = 2.0


def metric_rows(slugs: int, currencies: int, seed: int = 7) -> list[tuple]:
    """(slug, variant, metric, currency, journeys, booked, total, total_squares): ~1,000 journeys an
    arm, ~5% booked, orders of ~100 (sums as exact decimals, as the mart holds them)."""
    rng = random.Random(seed)
    names = ["USD", "EUR", "GBP", "CAD"][:currencies]
    out = []
    for s in range(slugs):
        slug = f"slug-{s:05d}"
        size = rng.randint(800, 1200)
        for variant in "abc":
            n = size + rng.randint(-20, 20)  # an even split: few slugs in SRM
            booked = rng.randint(30, 80)
            out.append((slug, variant, "conversion", None, n, booked, Decimal(booked), Decimal(booked)))
            points = booked * 10
            out.append((slug, variant, "loyalty_points", None, n, booked, Decimal(points), Decimal(points * 12)))
            for currency in names:
                share = booked // len(names)
                total = Decimal(share * 100) + Decimal(rng.randint(0, 9999)) / 100
                squares = total * 100 + Decimal(share * rng.randint(300, 500))
                out.append((slug, variant, "revenue", currency, n // len(names), share, total, squares))
    return out


def window_journeys(slugs: int) -> dict[str, int]:
    return {f"slug-{s:05d}": 7 * 300 for s in range(slugs)}


def time_statistics(rows: list[tuple], slugs: int, rounds: int) -> dict:
    from models.experiment_results import ExperimentSettings, MetricRow, evaluate

    metrics = [MetricRow(slug, v, m, c, n, t, q, b) for slug, v, m, c, n, b, t, q in rows]
    controls = {f"slug-{s:05d}": ["a"] for s in range(slugs)}
    window = window_journeys(slugs)
    evaluate(metrics[:100], controls, {}, {}, AS_OF, ExperimentSettings())  # scipy's first-use import
    walls, cpus = [], []
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        health, results = evaluate(metrics, controls, {}, {}, AS_OF, ExperimentSettings(), window)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    decisions: dict[str, int] = {}
    for r in results:
        decisions[r.decision] = decisions.get(r.decision, 0) + 1
    return {"wall": statistics.median(walls), "cpu": statistics.median(cpus), "walls": walls,
            "slugs": len(health), "rows": len(results), "decisions": decisions}


def write_mart(warehouse, rows: list[tuple], slugs: int) -> None:
    """The dbt tables the statistics read, in bulk (Arrow), as a build leaves them."""
    import pyarrow as pa

    s, st = warehouse.schema, warehouse.staging_schema
    columns = list(zip(*rows))
    metrics = pa.table({
        "slug": columns[0], "variant_key": columns[1], "metric": columns[2], "currency": columns[3],
        "journeys": pa.array(columns[4], pa.int64()), "booked_journeys": pa.array(columns[5], pa.int64()),
        "total": pa.array(columns[6], pa.decimal128(38, 2)), "total_squares": pa.array(columns[7], pa.decimal128(38, 4)),
        "as_of_date": pa.array([AS_OF] * len(rows), pa.date32()),
    })
    arms = sorted({(r[0], r[1]) for r in rows})
    days = [AS_OF - timedelta(days=d) for d in range(1, 8)]
    with warehouse.connect() as conn:
        for schema in (s, st):
            conn.execute(f"create schema if not exists {schema}")
        conn.execute(f"create table {s}.experiment_variant_metrics (slug text, variant_key text, metric text, "
                     "currency text, journeys bigint, booked_journeys bigint, total numeric(38,2), "
                     "total_squares numeric(38,4), as_of_date date)")
        conn.execute(f"create table {s}.experiment_variant_journeys (slug text, variant_key text, is_control boolean)")
        conn.execute(f"create table {s}.experiment_daily_assignments (slug text, activity_date date, "
                     "exposure_count bigint, journey_count bigint)")
        conn.execute(f"create table {st}.int_experiment_journey_arms (slug text, journey_id text, "
                     "is_multiple_exposure boolean)")
        conn.append_arrow(f"{s}.experiment_variant_metrics", metrics)
        conn.append_arrow(f"{s}.experiment_variant_journeys", pa.table({
            "slug": [a[0] for a in arms], "variant_key": [a[1] for a in arms],
            "is_control": [a[1] == "a" for a in arms]}))
        conn.append_arrow(f"{s}.experiment_daily_assignments", pa.table({
            "slug": [f"slug-{i:05d}" for i in range(slugs) for _ in days],
            "activity_date": pa.array([d for _ in range(slugs) for d in days], pa.date32()),
            "exposure_count": pa.array([300] * (slugs * 7), pa.int64()),
            "journey_count": pa.array([300] * (slugs * 7), pa.int64())}))


def time_asset_step(rows: list[tuple], slugs: int, url: str | None) -> dict:
    """The step on a fresh DuckDB file, or in a new schema of the Postgres at `url` (dropped after):
    into empty tables, then again with nothing new."""
    from resources.warehouse import Warehouse

    with tempfile.TemporaryDirectory(prefix="bench_experiment_stats_") as tmp:
        schema = f"bench_experiments_{os.getpid()}" if url else "analytics"
        warehouse = Warehouse(url=url or f"duckdb:///{Path(tmp) / 'w.duckdb'}", schema_name=schema)
        try:
            write_mart(warehouse, rows, slugs)
            return {run: _asset_step(warehouse) for run in ("first", "again")}
        finally:
            if url:
                with warehouse.connect() as conn:
                    for name in (warehouse.schema, warehouse.staging_schema):
                        conn.execute(f"drop schema if exists {name} cascade")


def _asset_step(warehouse) -> dict:
    """What the experiment_statistics asset does: read, evaluate, write (timed apart)."""
    from models.experiment_results import ExperimentSettings, evaluate
    from resources.experiment_tables import read_inputs, replace_results

    wall, cpu = time.perf_counter(), time.process_time()
    inputs = read_inputs(warehouse)
    read = time.perf_counter()
    health, results = evaluate(inputs["metrics"], inputs["controls"], inputs["allocations"], inputs["multiple"],
                               inputs["as_of"], ExperimentSettings(), inputs["window_journeys"])
    computed = time.perf_counter()
    rewritten = replace_results(warehouse, health, results)
    done = time.perf_counter()
    return {"read": read - wall, "evaluate": computed - read, "write": done - computed, "wall": done - wall,
            "cpu": time.process_time() - cpu, "rewritten": len(rewritten)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--slugs", type=int, default=10_000)
    parser.add_argument("--currencies", type=int, default=1, choices=range(1, 5))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--no-warehouse", action="store_true", help="time the statistics alone")
    parser.add_argument("--postgres", metavar="URL", help="time the asset step on this PostgreSQL (a scratch "
                        "schema, dropped after) instead of a DuckDB file")
    args = parser.parse_args()

    rows = metric_rows(args.slugs, args.currencies)
    print(f"{args.slugs:,} slugs x 3 arms, {args.currencies} currency(ies): {len(rows):,} metric rows", flush=True)
    stats = time_statistics(rows, args.slugs, args.rounds)
    verdict = "met" if stats["wall"] < TARGET_S else "NOT met"
    print(f"statistics step (evaluate): {stats['wall']:.2f} s wall, {stats['cpu']:.2f} s CPU (median of "
          f"{args.rounds}: {', '.join(f'{w:.2f}' for w in stats['walls'])}) for {stats['slugs']:,} slugs and "
          f"{stats['rows']:,} comparison rows; target < {TARGET_S:.0f} s: {verdict}")
    print(f"decisions: {stats['decisions']}")
    if not args.no_warehouse:
        steps = time_asset_step(rows, args.slugs, args.postgres)
        engine = "PostgreSQL" if args.postgres else "DuckDB"
        for run, label in (("first", "into empty tables"), ("again", "again, nothing new")):
            r = steps[run]
            print(f"asset step on {engine}, {label}: {r['wall']:.2f} s wall ({r['cpu']:.2f} s CPU): read "
                  f"{r['read']:.2f} s, evaluate {r['evaluate']:.2f} s, write {r['write']:.2f} s; "
                  f"{r['rewritten']:,} slugs rewritten")


if __name__ == "__main__":
    main()
