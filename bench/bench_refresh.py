"""Benchmark: what a refresh costs with nothing new, with new events, in full, and the demo's first and
second run, each as a whole process (start-up, definitions, extract, dbt, exit), beside its baseline.

    uv run python bench/bench_refresh.py                      # the acceptance sizes (5M takes a while)
    uv run python bench/bench_refresh.py --small 20000 --large 100000 --history 300000 --new 10000 \\
        --demo-events 50000                                   # a quick pass
    uv run python bench/bench_refresh.py --only nothing-new,mart
    uv run python bench/bench_refresh.py --only postgres,duckdb   # issue 18's acceptance (5M and 20M: long)

Sections (--only): nothing-new (refresh with nothing new on --small and --large history), new
(--new events on --history, and the same events on an empty warehouse), full (full rebuild vs
incremental on --history), demo (`pricing-ops demo` in a fresh data folder with no dbt parse, then
again), mart (one mart materialized through Dagster's implicit asset job, as the UI launches it),
ui (the same mart launched from a running `dg dev`, the README's UI command, through its GraphQL API,
as the Materialize button does: queued, a run worker process, the in-process executor; target < 12 s),
clone (the README's first command, install included, on a fresh clone of this repository's HEAD),
postgres (the production setup: PostgreSQL source and warehouse; --new events on --pg-small and
--pg-large history, --order-changes order status changes and a refresh with nothing new on the
large one), duckdb (the embedded default: --new events on --duck-small and --duck-large history).
Every other run uses the embedded default: the demo source (DuckDB file) and a DuckDB warehouse, in
a temporary DATA_DIR. Baselines are the figures measured before incremental dbt (issue 11) and
before the incremental mechanism of issue 18 (docs in ../shared/performance-notes.md). Each figure
is printed with the load average of the machine when it ended.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PRICING_OPS = str(Path(sys.executable).parent / "pricing-ops")
# Before this work (same machine class): seconds.
BASELINE = {
    "nothing-new small": 43.7,  # 100k history (Postgres source; 35-45 s on the embedded default)
    "nothing-new large": 58.6,  # 1M history
    "new on history": 63.4,  # 50k new on 1M history (5M was not measured: it grows with history)
    "demo first": 100.0,
    "demo second": 80.0,
    "mart": 94.0,
}
# Before issue 18, PostgreSQL source and warehouse (../shared/performance-notes.md, turn 3): 5M was
# not measured then; 2M's figures are the nearest (they grow with history).
BASELINE_PG = {
    "new small": 131.0,  # +50k on 500k
    "new large": 179.0,  # +50k on 2M
    "orders large": 164.0,  # 1,000 order updates on 2M
    "nothing-new large": 31.7,  # 5M, measured on this machine before issue 18 (load ~6)
}
BASELINE_DUCK = {"new small": 63.4, "new large": 63.4}  # +50k on 1M (20M was never measured)
SECTIONS = ("nothing-new", "new", "full", "demo", "mart", "ui", "clone", "postgres", "duckdb")
_DBT_SECONDS = re.compile(r"dbt build: .* in ([0-9.]+) s")
_DBT_OWN = re.compile(r"Finished running .* \(([0-9.]+)s\)")


def _children_cpu() -> float:
    """CPU seconds (user + system) of finished child processes and theirs (the dbt subprocess)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


class Bench:
    def __init__(self, root: Path):
        self.root = root
        self.rows: list[tuple[str, float, str, str]] = []

    def data_dir(self, name: str) -> Path:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def run(self, label: str, data_dir: Path, args: list[str], baseline: str | float | None = None,
            target: str = "", env: dict[str, str] | None = None) -> float:
        """One whole process (`pricing-ops ...` or this script's child mode); prints and records it."""
        env = {**os.environ, **(env or {}), "DATA_DIR": str(data_dir)}
        env.pop("PRICING_OPS_VERBOSE", None)
        cpu_before = _children_cpu()
        started = time.perf_counter()
        out = subprocess.run(args, env=env, capture_output=True, text=True, cwd=ROOT, check=False)
        seconds = time.perf_counter() - started
        cpu = _children_cpu() - cpu_before
        if out.returncode != 0:
            sys.stderr.write(out.stdout[-3000:] + out.stderr[-6000:])
            raise SystemExit(f"{label}: exit {out.returncode}")
        log = out.stdout + out.stderr
        dbt = _DBT_SECONDS.findall(log)
        own = _DBT_OWN.findall(log)
        detail = f"cpu {cpu:.1f} s" + (f", dbt step {float(dbt[-1]):.1f} s" if dbt else "") + (
            f", dbt's own {float(own[-1]):.1f} s" if own else "") + f", load {os.getloadavg()[0]:.1f}"
        seconds_base = BASELINE[baseline] if isinstance(baseline, str) else baseline
        base = f"baseline {seconds_base:6.1f} s" if baseline else ""
        print(f"{label:<48} {seconds:7.1f} s   {base:<18} {target:<16} {detail}", flush=True)
        if os.getloadavg()[0] > (os.cpu_count() or 1) * 1.5:
            print(f"  (load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores: wall time inflated)")
        self.rows.append((label, seconds, base, target))
        return seconds


def write_source(data_dir: Path, events: int) -> None:
    from resources.demo_source import write_demo_source

    write_demo_source(events=events, seed=7, duckdb_path=data_dir / "demo_source.duckdb", progress=lambda m: None)


def hold_back(data_dir: Path, count: int) -> None:
    """Move the `count` newest events of the source aside (`held_events`): history without them."""
    import duckdb

    with duckdb.connect(str(data_dir / "demo_source.duckdb")) as conn:
        conn.execute(f"create or replace table held_events as select * from onboarding_journey_events "
                     f"order by id desc limit {count}")
        conn.execute("delete from onboarding_journey_events where id in (select id from held_events)")


def release(data_dir: Path) -> None:
    """The held events arrive now (ingested_at = now, as new rows of the app would)."""
    import duckdb

    with duckdb.connect(str(data_dir / "demo_source.duckdb")) as conn:
        conn.execute("insert into onboarding_journey_events select * replace (now() as ingested_at) from held_events")
        conn.execute("drop table held_events")


def only_held(source_dir: Path, data_dir: Path) -> None:
    """A source with just the held events and the journeys, orders and providers they reference."""
    import duckdb

    shutil.copy(source_dir / "demo_source.duckdb", data_dir / "demo_source.duckdb")
    with duckdb.connect(str(data_dir / "demo_source.duckdb")) as conn:
        conn.execute("delete from onboarding_journey_events")
        conn.execute("insert into onboarding_journey_events select * replace (now() as ingested_at) from held_events")
        conn.execute("delete from onboarding_journeys where id not in (select journey_id from onboarding_journey_events)")
        conn.execute("delete from orders where id not in (select order_id from onboarding_journeys)")
        conn.execute("drop table held_events")


def refresh(bench: Bench, label: str, data_dir: Path, baseline: str | float | None = None, target: str = "",
            env: dict[str, str] | None = None) -> float:
    return bench.run(label, data_dir, [PRICING_OPS, "refresh"], baseline, target, env)


def section_nothing_new(bench: Bench, args) -> None:
    figures = {}
    for size_name, events in (("small", args.small), ("large", args.large)):
        data = bench.data_dir(f"nothing-new-{events}")
        write_source(data, events)
        refresh(bench, f"first refresh, {events:,} events (full build)", data)
        refresh(bench, f"refresh again, {events:,} events of history", data)  # warm caches
        figures[size_name] = refresh(
            bench, f"refresh with nothing new, {events:,} history", data, f"nothing-new {size_name}",
            "target < 8 s" if size_name == "large" else "")
    ratio = figures["large"] / figures["small"]
    print(f"  nothing new: {args.large:,} vs {args.small:,} history = {ratio:.2f}x (target <= 1.5x)")


def section_new(bench: Bench, args) -> None:
    data = bench.data_dir(f"new-{args.history}")
    write_source(data, args.history + args.new)
    hold_back(data, args.new)
    refresh(bench, f"first refresh, {args.history:,} events (full build)", data)
    refresh(bench, f"refresh with nothing new, {args.history:,} history", data)
    empty = bench.data_dir(f"new-empty-{args.new}")
    only_held(data, empty)
    on_empty = refresh(bench, f"{args.new:,} new events on an empty warehouse", empty)
    release(data)
    on_history = refresh(bench, f"{args.new:,} new events on {args.history:,} history", data, "new on history",
                         "target < 20 s")
    print(f"  {args.new:,} new: on history / on empty = {on_history / on_empty:.2f}x (target <= 3x)")
    bench.new_data_dir = data


def section_full(bench: Bench, args) -> None:
    data = getattr(bench, "new_data_dir", None)
    if data is None:
        data = bench.data_dir(f"full-{args.history}")
        write_source(data, args.history)
        refresh(bench, f"first refresh, {args.history:,} events (full build)", data)
    child = [sys.executable, __file__, "--child-refresh"]
    # dbt forced to run (a refresh with nothing new would leave it alone): the incremental models'
    # own cost on this history, against rebuilding them from every row.
    incremental = bench.run(f"incremental build (dbt forced), {args.history:,} history", data, [*child, "--force"])
    full = bench.run(f"full refresh (--full-refresh), {args.history:,} history", data, [*child, "--full-refresh"])
    print(f"  full rebuild {full:.1f} s vs incremental {incremental:.1f} s on the same history")


def section_demo(bench: Bench, args) -> None:
    from assets.dbt_project import PARSE_ROOT

    data = bench.data_dir("demo")
    shutil.rmtree(PARSE_ROOT, ignore_errors=True)  # as on a fresh clone: no parse yet
    cmd = [PRICING_OPS, "demo", "--events", str(args.demo_events)]
    bench.run(f"pricing-ops demo, fresh ({args.demo_events:,} events)", data, cmd, "demo first", "target < 40 s")
    bench.run("pricing-ops demo, second run", data, cmd, "demo second", "target < 15 s")
    bench.demo_data_dir = data


def section_mart(bench: Bench, args) -> None:
    data = getattr(bench, "demo_data_dir", None)
    if data is None:
        data = bench.data_dir("mart")
        write_source(data, args.demo_events)
        refresh(bench, f"first refresh, {args.demo_events:,} events", data)
    bench.run("one mart materialized through Dagster", data, [sys.executable, __file__, "--child-mart"], "mart",
              "target < 15 s")


def section_ui(bench: Bench, args) -> None:
    """`dg dev` on the data folder, then `launchRun` of one mart through its GraphQL API (what the
    UI's Materialize button sends), timed from the launch to the run's success."""
    import json
    import socket
    import urllib.request

    data = getattr(bench, "demo_data_dir", None)
    if data is None:
        data = bench.data_dir("ui")
        write_source(data, args.demo_events)
        refresh(bench, f"first refresh, {args.demo_events:,} events", data)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "DATA_DIR": str(data), "DAGSTER_HOME": str(data / "dagster_home")}
    # SIGINT/SIGTERM at their defaults (a background process may inherit them ignored, and then
    # `dg dev` would not stop): the same wrapper as tests/test_ui_browser.py.
    wrapper = ("import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); "
               "signal.signal(signal.SIGTERM, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])")
    dev = subprocess.Popen([sys.executable, "-c", wrapper, str(Path(sys.executable).parent / "dg"), "dev",
                            "-h", "127.0.0.1", "-p", str(port)],
                           cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    url = f"http://127.0.0.1:{port}/graphql"

    def gql(query: str, variables: dict) -> dict:
        body = json.dumps({"query": query, "variables": variables}).encode()
        request = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.load(response)["data"]

    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                state = gql("{ workspaceOrError { ... on Workspace { locationEntries { loadStatus } } } }", {})
                entries = state["workspaceOrError"]["locationEntries"]
                if entries and all(e["loadStatus"] == "LOADED" for e in entries):
                    break
                raise OSError("the code location is loading")
            except OSError:
                if time.monotonic() > deadline or dev.poll() is not None:
                    raise SystemExit("ui: dg dev did not come up") from None
                time.sleep(0.5)
        selector = {"repositoryLocationName": "pricing_ops", "repositoryName": "__repository__",
                    "jobName": "__ASSET_JOB", "assetSelection": [{"path": ["experiment_slug_summary"]}]}
        launch = ("mutation($p: ExecutionParams!) { launchRun(executionParams: $p) { __typename "
                  "... on LaunchRunSuccess { run { runId } } ... on PythonError { message } } }")
        started = time.perf_counter()
        launched = gql(launch, {"p": {"selector": selector, "runConfigData": "{}"}})["launchRun"]
        if launched["__typename"] != "LaunchRunSuccess":
            raise SystemExit(f"ui: launch refused: {launched}")
        status_query = "query($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
        while (status := gql(status_query, {"id": launched["run"]["runId"]})["runOrError"]["status"]) not in (
                "SUCCESS", "FAILURE", "CANCELED"):
            time.sleep(0.25)
        seconds = time.perf_counter() - started
    finally:
        _stop_with_descendants(dev)
    print(f"{'one mart launched from the UI (dg dev)':<48} {seconds:7.1f} s   "
          f"{'baseline ' + format(BASELINE['mart'], '6.1f') + ' s':<18} {'target < 12 s':<16} run {status}", flush=True)
    if status != "SUCCESS":
        raise SystemExit(f"ui: the run ended {status}")


def _stop_with_descendants(proc: subprocess.Popen) -> None:
    """SIGTERM to `proc`'s process group, then to each process it started that is still running
    (the code server `dg dev` starts sits in a process group of its own), by PID; SIGKILL after 60 s."""
    import signal

    import psutil

    try:
        descendants = psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
    for child in descendants:
        try:
            child.terminate()
        except psutil.NoSuchProcess:
            continue
    _, alive = psutil.wait_procs(descendants, timeout=30)
    for child in alive:
        child.kill()


def _pg_admin():
    """A connection to the benchmark's PostgreSQL server (BENCH_PG_ADMIN_URL, default the local one)."""
    import psycopg

    admin = os.environ.get("BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
    return psycopg.connect(admin, autocommit=True), admin


def _pg_database(bench: Bench, name: str) -> str:
    """A new database on the benchmark's PostgreSQL (BENCH_PG_ADMIN_URL, default the local server),
    dropped when the run ends; its URL."""
    conn, admin = _pg_admin()
    with conn:
        conn.execute(f'drop database if exists "{name}" with (force)')
        conn.execute(f'create database "{name}"')
    bench.databases.append(name)
    return admin.rsplit("/", 1)[0] + "/" + name


def _drop_pg_databases(bench: Bench) -> None:
    if not getattr(bench, "databases", None):
        return
    conn, _ = _pg_admin()
    with conn:
        for name in bench.databases:
            conn.execute(f'drop database if exists "{name}" with (force)')


def _pg_hold_back(url: str, count: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"create table held_events as select * from onboarding_journey_events order by id desc limit {count}")
        conn.execute("delete from onboarding_journey_events where id in (select id from held_events)")
        conn.execute("vacuum analyze onboarding_journey_events")


def _pg_release(url: str) -> None:
    """The held events arrive now, as new rows of the app would (ingested_at = now)."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("insert into onboarding_journey_events (id, journey_id, event_type, payload, recorded_at, ingested_at) "
                     "overriding system value select id, journey_id, event_type, payload, recorded_at, clock_timestamp() "
                     "from held_events")
        conn.execute("drop table held_events")


def _pg_change_orders(url: str, count: int) -> None:
    """`count` orders of journeys change status now (paid <-> refunded), as the app would update them."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(
            "update orders set status = case when status in ('paid', 'fulfilled') then 'refunded' else 'paid' end, "
            "updated_at = clock_timestamp() "
            f"where id in (select order_id from onboarding_journeys order by md5(id) limit {count})")


def section_postgres(bench: Bench, args) -> None:
    """The production setup (docs/deploy.md): PostgreSQL source, PostgreSQL warehouse."""
    from resources.demo_source import write_demo_source

    tag = f"{os.getpid()}"
    figures: dict[str, float] = {}
    for size_name, events in (("small", args.pg_small), ("large", args.pg_large)):
        data = bench.data_dir(f"postgres-{events}")
        source = _pg_database(bench, f"bench_refresh_src_{events}_{tag}")
        warehouse = _pg_database(bench, f"bench_refresh_wh_{events}_{tag}")
        env = {"WAREHOUSE_URL": warehouse, "ONBOARDING_EXPORT_DATABASE_URL": source}
        write_demo_source(events=events + args.new, seed=7, postgres_url=source, progress=lambda m: None)
        _pg_hold_back(source, args.new)
        refresh(bench, f"PG: first refresh, {events:,} events (full build)", data, env=env)
        if size_name == "large":
            refresh(bench, f"PG: refresh again, {events:,} history", data, env=env)  # warm caches
            figures["nothing-new"] = refresh(
                bench, f"PG: refresh with nothing new, {events:,} history", data, BASELINE_PG["nothing-new large"],
                "target < 8 s", env=env)
        _pg_release(source)
        figures[f"new {size_name}"] = refresh(
            bench, f"PG: {args.new:,} new events on {events:,} history", data, BASELINE_PG[f"new {size_name}"],
            "target < 30 s" if size_name == "large" else "", env=env)
        if size_name == "large":
            _pg_change_orders(source, args.order_changes)
            figures["orders"] = refresh(
                bench, f"PG: {args.order_changes:,} order status changes, {events:,}", data,
                BASELINE_PG["orders large"], "target < 20 s", env=env)
    ratio = figures["new large"] / figures["new small"]
    print(f"  PG: {args.new:,} new on {args.pg_large:,} vs on {args.pg_small:,} history = {ratio:.2f}x "
          "(target <= 2x)", flush=True)


def section_duckdb(bench: Bench, args) -> None:
    """The embedded default (demo source and warehouse in DuckDB files) at scale."""
    figures: dict[str, float] = {}
    for size_name, events in (("small", args.duck_small), ("large", args.duck_large)):
        data = bench.data_dir(f"duckdb-{events}")
        write_source(data, events + args.new)
        hold_back(data, args.new)
        refresh(bench, f"DuckDB: first refresh, {events:,} events (full build)", data)
        refresh(bench, f"DuckDB: refresh with nothing new, {events:,} history", data)
        release(data)
        figures[size_name] = refresh(
            bench, f"DuckDB: {args.new:,} new events on {events:,} history", data, BASELINE_DUCK[f"new {size_name}"],
            "target < 20 s" if size_name == "large" else "")
        shutil.rmtree(data, ignore_errors=True)  # 20M of history is several GB
    ratio = figures["large"] / figures["small"]
    print(f"  DuckDB: {args.new:,} new on {args.duck_large:,} vs on {args.duck_small:,} history = {ratio:.2f}x "
          "(target <= 1.5x)", flush=True)


def readme_first_command() -> str:
    """The README's first command (the first line of its first bash block), without its comment."""
    text = (ROOT / "README.md").read_text()
    line = text.split("```bash\n", 1)[1].splitlines()[0]
    return line.split("  #", 1)[0].strip()


def section_clone(bench: Bench, args) -> None:
    """`git clone` of HEAD into a temporary folder, then the README's first command there, timed
    whole: uv's install (from its cache) with the bytecode compilation, then the demo."""
    clone = bench.root / "clone"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True)
    # As a new shell would have it: not inside this checkout's virtualenv (`uv run` put it first on PATH).
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "DATA_DIR", "DAGSTER_HOME")}
    venv_bin = str(Path(sys.prefix) / "bin")
    env["PATH"] = os.pathsep.join(p for p in env.get("PATH", "").split(os.pathsep) if p != venv_bin)
    started = time.perf_counter()
    out = subprocess.run(["bash", "-c", readme_first_command()], cwd=clone, env=env, capture_output=True, text=True,
                         check=False)
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        sys.stderr.write(out.stdout[-3000:] + out.stderr[-3000:])
        raise SystemExit(f"fresh clone: exit {out.returncode}")
    install = re.findall(r"(?:Installed .* in|Bytecode compiled .* in) ([0-9.]+m?s)", out.stderr)
    print(f"{'README first command on a fresh clone':<48} {seconds:7.1f} s   {'':<18} {'target < 40 s':<16} "
          f"install steps {', '.join(install) or '?'}", flush=True)


def child_refresh(full_refresh: bool, force: bool) -> None:
    """The refresh job through the CLI's runner, optionally with DbtBuildConfig.full_refresh / force."""
    from orchestration.job_runner import run_job

    config = {"ops": {"pricing_dbt_models": {"config": {"full_refresh": full_refresh, "force": force}}}}
    run_job("refresh", config)


def child_mart() -> None:
    """experiment_slug_summary alone, through the implicit asset job with the Definitions' executor
    (what the UI's Materialize button launches), recorded in the data folder's Dagster instance."""
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.instance import prepare_dagster_home
    from orchestration.settings import get_settings

    prepare_dagster_home(get_settings())
    job = defs.resolve_implicit_global_asset_job_def()
    print(f"executor: {job.executor_def.name}")
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(asset_selection=[dg.AssetKey("experiment_slug_summary")], instance=instance)
    assert result.success


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    parser.add_argument("--small", type=int, default=100_000, help="smaller history for nothing-new")
    parser.add_argument("--large", type=int, default=1_000_000, help="larger history for nothing-new")
    parser.add_argument("--history", type=int, default=5_000_000, help="history for new events and full")
    parser.add_argument("--new", type=int, default=50_000, help="new events")
    parser.add_argument("--demo-events", type=int, default=200_000)
    parser.add_argument("--pg-small", type=int, default=500_000, help="smaller history of the postgres section")
    parser.add_argument("--pg-large", type=int, default=5_000_000, help="larger history of the postgres section")
    parser.add_argument("--duck-small", type=int, default=1_000_000, help="smaller history of the duckdb section")
    parser.add_argument("--duck-large", type=int, default=20_000_000, help="larger history of the duckdb section")
    parser.add_argument("--order-changes", type=int, default=1_000, help="order status changes (postgres)")
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated, of {', '.join(SECTIONS)}")
    parser.add_argument("--keep", action="store_true", help="keep the data folders (printed)")
    parser.add_argument("--child-refresh", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--full-refresh", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--force", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--child-mart", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_refresh:
        return child_refresh(args.full_refresh, args.force)
    if args.child_mart:
        return child_mart()

    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}; choose from {', '.join(SECTIONS)}")
    root = Path(tempfile.mkdtemp(prefix="bench_refresh_"))
    print(f"{'run (whole process)':<48} {'wall':>9}   {'baseline':<18} {'target':<16} detail")
    bench = Bench(root)
    bench.databases = []
    try:
        for name in SECTIONS:
            if name in sections:
                globals()[f"section_{name.replace('-', '_')}"](bench, args)
    finally:
        if not args.keep:
            _drop_pg_databases(bench)
        if args.keep:
            print(f"data kept in {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
