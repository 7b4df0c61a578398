"""Benchmark: the embedded default end to end — demo source of N events, extract, dbt build, statistics.

    uv run python bench/bench_pipeline.py              # 1M events
    uv run python bench/bench_pipeline.py --events 5000000

Each stage runs in its own process so its peak memory (RSS, the stage's process and its children,
e.g. the dbt subprocess) is its own. Prints events/s per stage and peak MB, and what the experiment
results (contract section 9) add to a refresh: their dbt nodes (from dbt's run_results.json) plus
the statistics stage (experiment_health / experiment_results from the metrics mart).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _peak_mb() -> float:
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return max(own, children) / 1024


def stage_generate(data_dir: Path, events: int) -> dict:
    from resources.demo_source import write_demo_source

    write_demo_source(events=events, seed=7, duckdb_path=data_dir / "demo_source.duckdb", progress=lambda m: None)
    return {}


def stage_extract(data_dir: Path, events: int) -> dict:
    from assets.extract import extract_table
    from models.source_tables import SOURCE_TABLES
    from resources.source import SourceDatabase
    from resources.warehouse import Warehouse

    source = SourceDatabase(demo_path=str(data_dir / "demo_source.duckdb"))
    warehouse = Warehouse(url=f"duckdb:///{data_dir / 'warehouse.duckdb'}")
    rows = {}
    for table in SOURCE_TABLES:
        rows[table.name] = extract_table(source, warehouse, table, timedelta(minutes=10)).rows_inserted
    return {"rows": rows}


def stage_dbt(data_dir: Path, events: int) -> dict:
    from assets.dbt import DBT_PROJECT_DIR, dbt_vars
    from resources.warehouse import Warehouse

    warehouse = Warehouse(url=f"duckdb:///{data_dir / 'warehouse.duckdb'}")
    from datetime import UTC, datetime

    env = {**os.environ, **warehouse.dbt_env(), "PRICING_OPS_AS_OF_DATE": datetime.now(UTC).date().isoformat()}
    variables = json.dumps(dbt_vars(2, 4))
    subprocess.run(
        [str(Path(sys.executable).parent / "dbt"), "build", "--vars", variables, "--quiet",
         "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir", str(DBT_PROJECT_DIR),
         "--target-path", str(data_dir / "dbt_target")],
        check=True, env=env,
    )
    # Per-node times: the experiment models, their seed and their tests against the whole build.
    nodes = json.loads((data_dir / "dbt_target" / "run_results.json").read_text())["results"]
    experiment = [n for n in nodes if _is_experiment_node(n["unique_id"])]
    return {"experiment_nodes_s": sum(n["execution_time"] for n in experiment),
            "all_nodes_s": sum(n["execution_time"] for n in nodes),
            "experiment_nodes": {_node_name(n["unique_id"]): round(n["execution_time"], 2)
                                 for n in sorted(experiment, key=lambda n: -n["execution_time"])[:6]}}


def _node_name(unique_id: str) -> str:
    """`model.pricing_ops.x` -> x; `test.pricing_ops.<name>.<hash>` -> <name>."""
    parts = unique_id.split(".")
    return parts[2] if parts[0] == "test" else parts[-1]


def _is_experiment_node(unique_id: str) -> bool:
    return any(name in unique_id for name in ("int_experiment_", "experiment_variant_metrics", "experiment_allocations"))


def stage_statistics(data_dir: Path, events: int) -> dict:
    # A refresh process has Dagster and the project loaded already: only scipy (imported on first
    # use) and the work itself count.
    from models.experiment_results import ExperimentSettings, evaluate
    from resources.experiment_tables import read_inputs, replace_results
    from resources.warehouse import Warehouse

    started = time.perf_counter()
    from scipy import special  # noqa: F401  (what models/experiment_stats.py imports on first use)

    imported = time.perf_counter()
    warehouse = Warehouse(url=f"duckdb:///{data_dir / 'warehouse.duckdb'}")
    inputs = read_inputs(warehouse)
    health, results = evaluate(inputs["metrics"], inputs["controls"], inputs["allocations"], inputs["multiple"],
                               inputs["as_of"], ExperimentSettings(), inputs["window_journeys"])
    replace_results(warehouse, health, results)
    decisions: dict[str, int] = {}
    for r in results:
        decisions[r.decision] = decisions.get(r.decision, 0) + 1
    done = time.perf_counter()
    return {"seconds": done - started, "scipy_import_s": imported - started, "compute_s": done - imported,
            "slugs": len(health), "comparisons": len(results), "decisions": decisions}


STAGES = {"generate": stage_generate, "extract": stage_extract, "dbt": stage_dbt, "statistics": stage_statistics}


def run_stage(name: str, data_dir: Path, events: int) -> dict:
    started = time.perf_counter()
    extra = STAGES[name](data_dir, events)
    # A stage may time itself (`seconds` in its result) to leave out imports a refresh has done.
    return {"seconds": time.perf_counter() - started, "peak_mb": _peak_mb(), **extra}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--stage", choices=sorted(STAGES), help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.stage:  # child process: run one stage, report as JSON on stdout
        print(json.dumps(run_stage(args.stage, args.data_dir, args.events)))
        return

    with tempfile.TemporaryDirectory(prefix="bench_pipeline_") as tmp:
        data_dir = Path(tmp)
        print(f"embedded pipeline, {args.events:,} events, data in {data_dir}", flush=True)
        results = {}
        for name in ("generate", "extract", "dbt", "statistics"):
            out = subprocess.run(
                [sys.executable, __file__, "--stage", name, "--data-dir", str(data_dir), "--events", str(args.events)],
                check=True, capture_output=True, text=True,
            )
            results[name] = json.loads(out.stdout.strip().splitlines()[-1])
            r = results[name]
            print(f"{name:>9}: {r['seconds']:7.2f} s  {args.events / r['seconds']:>10,.0f} events/s  "
                  f"peak {r['peak_mb']:6.0f} MB", flush=True)
        total = results["extract"]["seconds"] + results["dbt"]["seconds"]
        print(f"extract + dbt build: {total:.2f} s, {args.events / total:,.0f} events/s end to end; "
              f"peak {max(results['extract']['peak_mb'], results['dbt']['peak_mb']):.0f} MB")
        print(f"rows loaded: {results['extract']['rows']}")
        stats, dbt = results["statistics"], results["dbt"]
        added = dbt["experiment_nodes_s"] + stats["seconds"]
        refresh = total + stats["seconds"]
        print(f"experiment results: dbt nodes {dbt['experiment_nodes_s']:.2f} s (of {dbt['all_nodes_s']:.2f} s "
              f"summed over all nodes) + statistics {stats['seconds']:.2f} s (scipy import {stats['scipy_import_s']:.2f} s, "
              f"compute and write {stats['compute_s']:.2f} s; {stats['slugs']} slugs, "
              f"{stats['comparisons']} comparisons) = {added:.2f} s, {100 * added / refresh:.1f}% of the refresh "
              f"(extract + dbt build + statistics, {refresh:.2f} s); target < 10%")
        print(f"slowest experiment dbt nodes (s): {dbt['experiment_nodes']}")
        print(f"decisions: {stats['decisions']}")


if __name__ == "__main__":
    main()
