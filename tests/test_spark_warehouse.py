"""The Spark warehouse (contract section 10) on a real local cluster: a standalone master, two workers
and a Spark Connect server on loopback, started once per test session, its JVMs in a non-UTC time
zone. The platform's commands run against it exactly as a person runs them (`pricing-ops refresh`,
`guardrails evaluate`, `export`, `digest slack|email`, `readyz`), with state in PostgreSQL, and every
mart, experiment table, export row, follow-up and digest equals what the embedded DuckDB warehouse
gives on the same source.

Every Spark test is in the `spark` xdist group: one worker, one cluster.
"""

from __future__ import annotations

import json
import re
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from bi_support import cli_env, free_port, run_cli

pytestmark = [pytest.mark.postgres, pytest.mark.xdist_group("spark")]

# UTC+13:45: a day boundary or an instant converted in the JVM's zone anywhere would show.
JVM_TIMEZONE = "Pacific/Chatham"
AS_OF = "2026-03-01"
# When the digest was generated and when each automatic action was taken differ between the two runs.
_INSTANT = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")


@pytest.fixture(scope="session")
def spark_cluster(tmp_path_factory):
    """The local cluster of `pricing-ops spark-cluster start`, once per session, stopped by PID."""
    from resources.engines.spark_cluster import LocalSparkCluster

    data_dir = tmp_path_factory.mktemp("spark-data")
    # Where `pricing-ops spark-cluster` keeps it for DATA_DIR=data_dir.
    cluster = LocalSparkCluster(data_dir / "spark", connect_port=free_port(), jvm_timezone=JVM_TIMEZONE)
    state = cluster.start()
    try:
        yield state.connect_url, data_dir
    finally:
        cluster.stop()


def _pricing_ops(args: list[str], env: dict[str, str]) -> str:
    done = run_cli(args, env)
    assert done.returncode == 0, f"pricing-ops {' '.join(args)} failed:\n{done.stderr[-4000:]}"
    return done.stdout


def _run_everything(env: dict[str, str], readyz: bool = True) -> None:
    for args in (["refresh", "--as-of-date", AS_OF], ["guardrails", "evaluate"], ["export", "--sink", "file"],
                 ["digest", "slack"], ["digest", "email"], *([["readyz"]] if readyz else [])):
        started = time.monotonic()
        _pricing_ops(args, env)
        # Where a slow run spends its time (shown with -rP or on failure).
        print(f"pricing-ops {' '.join(args)} on {env.get('WAREHOUSE_URL', 'duckdb')}: {time.monotonic() - started:.0f} s")


def _sorted(rows: list[dict]) -> list[dict]:
    """Rows in one order whatever the engine's null ordering; `loaded_at` left out (when a row was
    loaded differs between two extracts)."""
    rows = [{k: v for k, v in r.items() if k != "loaded_at"} for r in rows]
    return sorted(rows, key=lambda r: [(v is None, str(v)) for v in r.values()])


def _duckdb_tables(path: Path, tables) -> dict[str, list[dict]]:
    with duckdb.connect(str(path), read_only=True) as conn:
        out = {}
        for table in tables:
            cur = conn.execute(f"select * from analytics.{table}")
            names = [d[0] for d in cur.description]
            out[table] = _sorted([dict(zip(names, row)) for row in cur.fetchall()])
        return out


def _spark_tables(url: str, schema: str, tables) -> dict[str, list[dict]]:
    from resources.engines.spark import SparkEngine

    with SparkEngine(url).connect() as conn:
        return {table: _sorted(conn.fetch_dicts(f"select * from {schema}.{table}")) for table in tables}


def _exported(data_dir: Path) -> list[dict]:
    lines = []
    for path in sorted((data_dir / "exports").glob("*.ndjson")):
        lines += [json.loads(line) for line in path.read_text().splitlines()]
    return lines


def _followups(rows: list[tuple]) -> list[tuple]:
    return sorted((r[0], r[1], r[2], r[3]) for r in rows)


def _slack_messages(data_dir: Path) -> list[str]:
    """Every Slack message in the outbox (the guardrail alerts and the digest), text and blocks."""
    messages = [json.loads(p.read_text()) for p in (data_dir / "outbox").glob("slack-*.json")]
    assert any(m["text"].startswith("Provider automation digest") for m in messages)
    return sorted(_INSTANT.sub("<instant>", json.dumps([m["text"], m["blocks"]], sort_keys=True)) for m in messages)


def test_every_command_on_spark_gives_what_duckdb_gives(spark_cluster, make_pg_database, tmp_path):
    from resources.demo_source import write_demo_source
    from resources.engines.postgres import PostgresEngine

    spark_url, cluster_data = spark_cluster
    status = json.loads(_pricing_ops(["spark-cluster", "status"], cli_env(cluster_data)))
    assert status["running"] and status["connect_url"] == spark_url
    assert sorted(status["daemons"]) == ["connect", "master", "worker-1", "worker-2"]

    source_url = make_pg_database()
    write_demo_source(events=3000, seed=11, postgres_url=source_url, now=datetime(2026, 3, 1, 9, tzinfo=UTC),
                      progress=lambda _: None)
    state_url = make_pg_database()
    schema = f"spark_{tmp_path.name[-8:].lower().replace('-', '_')}".strip("_")
    spark_dir, duck_dir = tmp_path / "spark", tmp_path / "duck"
    common = {"ONBOARDING_EXPORT_DATABASE_URL": source_url, "TZ": "America/Sao_Paulo"}
    _run_everything(cli_env(spark_dir, WAREHOUSE_URL=spark_url, STATE_DATABASE_URL=state_url,
                            WAREHOUSE_SCHEMA=schema, **common))
    _run_everything(cli_env(duck_dir, **common), readyz=False)  # what readyz says is not compared

    from models.marts import BI_TABLES

    on_spark = _spark_tables(spark_url, schema, BI_TABLES)
    on_duckdb = _duckdb_tables(duck_dir / "warehouse.duckdb", BI_TABLES)
    for table in BI_TABLES:
        assert on_spark[table], f"{table} is empty on Spark"
        assert on_spark[table] == on_duckdb[table], table
    assert {r["status"] for r in on_spark["experiment_health"]} & {"ok", "srm"}, "no slug was compared"

    # Export: the same rows in the same (load) order; the state (follow-ups) in PostgreSQL.
    assert _exported(spark_dir) == _exported(duck_dir) != []
    with PostgresEngine(state_url).connect() as conn:
        on_state = conn.fetchall(f"select provider_id, action, severity, actor from {schema}.guardrail_followups")
    with duckdb.connect(str(duck_dir / "warehouse.duckdb"), read_only=True) as conn:
        on_file = conn.execute("select provider_id, action, severity, actor from analytics.guardrail_followups").fetchall()
    assert _followups(on_state) == _followups(on_file) != []
    assert _slack_messages(spark_dir) == _slack_messages(duck_dir)
    # Tables of the catalog, not of the session: a new session sees them.
    from resources.engines.spark import SparkEngine

    with SparkEngine(spark_url).connect() as conn:
        assert conn.table_exists(schema, "onboarding_pricing_experiment_segments")


def test_incremental_equals_full_refresh_on_spark(spark_cluster, make_pg_database, tmp_path):
    """The loads of test_dbt_incremental on Spark: the first built whole, then new events, late
    events, a late-committed event, late journeys and orders, status and currency changes, built
    incrementally in one build (a Spark build is the slow part). Its marts, the statistics written
    from them and the intermediate rows equal a full refresh of the same rows (on DuckDB, which the
    first test shows Spark equals), and no model is built whole by the incremental build."""
    from dbt_helpers import parse_manifest, run_dbt
    from test_dbt_incremental import COMPARED, DBT_VARS, _loads, _rebuilt_at, _snapshot, _statistics

    from resources.warehouse import Warehouse

    spark_url, _ = spark_cluster
    # SCHEMA of the dbt tests, so their comparisons apply as written (the first test uses another).
    incremental = Warehouse(url=spark_url, schema_name="analytics", state_url=make_pg_database())
    (tmp_path / "full").mkdir()
    full = Warehouse(url=f"duckdb:///{tmp_path / 'full' / 'warehouse.duckdb'}", schema_name="analytics")
    dbt_vars = {**DBT_VARS, "as_of_date": "2026-03-07"}  # every event in, every comparison made
    # Tests are left to the DuckDB build (the same SQL): on Spark each is a query of its own, and a
    # unit test's fixture is SQL literals, where Spark reads a backslash as an escape.
    spark_build = ["build", "--exclude-resource-type", "unit_test", "--exclude-resource-type", "test"]
    manifest = parse_manifest(incremental, tmp_path / "spark")
    loads = _loads(incremental)
    next(loads)  # the first load: history so far
    run_dbt(incremental, spark_build, tmp_path / "spark", dbt_vars, manifest=manifest)
    built_whole = _rebuilt_at(incremental)
    assert len(built_whole) >= 15
    steps = [next(loads), next(loads)]  # then everything late, in one incremental build
    run_dbt(incremental, spark_build, tmp_path / "spark", dbt_vars, manifest=manifest)
    assert _rebuilt_at(incremental) == built_whole, "a model was built whole by the incremental build"
    _statistics(incremental, rebuild=False)

    for _ in zip(range(3), _loads(full), strict=False):
        pass  # the same three loads
    run_dbt(full, ["build", "--full-refresh"], tmp_path / "duckdb", dbt_vars)
    _statistics(full, rebuild=True)
    built, rebuilt = _json_entries(_snapshot(incremental)), _json_entries(_snapshot(full))
    assert [r for r in COMPARED if not rebuilt[r]] == [], "empty: the comparison would prove nothing"
    assert [r for r in COMPARED if built[r] != rebuilt[r]] == [], f"differ after {steps}"


def _json_entries(tables: dict[str, list[dict]]) -> dict[str, list[dict]]:
    """A reject's entry as the JSON value it is: its text is each engine's own rendering
    (DuckDB `[1, 2]`, Spark `[1,2]`)."""
    return {name: [{**row, "entry": json.loads(row["entry"])} if isinstance(row.get("entry"), str) else row
                   for row in rows] for name, rows in tables.items()}
