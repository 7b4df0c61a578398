"""`pricing-ops bi` end to end (contract section 11), once per warehouse: `pricing-ops demo`, then
`pricing-ops bi` in the background; a person logs in with Chromium, opens the dashboard
`pricing-experiments` and sees the five charts, none failing, and the conversion snapshot shows the
warehouse's own order total of a slug, in full. On DuckDB Superset reads the BI copy (and a reader
holding that copy open blocks no refresh); on PostgreSQL it reads as bi_reader.

Superset starts once per warehouse for the whole session (its first start provisions the data
folder; a second start must only serve, in seconds): session fixtures, so tests of another module
run between these on the same worker do not make them start again. The servers are stopped by PID.
"""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg
import pytest
from bi_support import CHART_TITLES, PRICING_OPS, cli_env, run_cli, start_bi, view_dashboard
from conftest import PG_ADMIN_DSN, TEST_DB_TIMEZONE, _admin, bi_reader_kept

# One worker runs them in file order: bi_reader is a cluster-wide role test_bi_reader also changes.
pytestmark = pytest.mark.xdist_group("bi_reader")

DEMO_EVENTS = "3000"


@pytest.fixture(scope="session")
def duckdb_demo(tmp_path_factory) -> dict:
    data = tmp_path_factory.mktemp("bi-duckdb") / "data"
    env = cli_env(data, BI_ADMIN_PASSWORD="pw-duckdb-" + datetime.now(UTC).strftime("%H%M%S"))
    done = run_cli(["demo", "--events", DEMO_EVENTS], env)
    assert done.returncode == 0, done.stderr[-3000:]
    return {"data": data, "env": env, "warehouse": data / "warehouse.duckdb"}


@pytest.fixture(scope="session")
def duckdb_bi(duckdb_demo, tmp_path_factory):
    server = start_bi(duckdb_demo["env"], tmp_path_factory.mktemp("bi-duckdb-log") / "bi.log")
    yield server
    assert server.stop() == 0, server.output()[-2000:]


@pytest.fixture(scope="session")
def postgres_demo(tmp_path_factory):
    name = f"pricing_ops_test_bi_{datetime.now(UTC).strftime('%H%M%S%f')}"
    with _admin() as conn:
        conn.execute(f'create database "{name}"')
        conn.execute(f"alter database \"{name}\" set timezone to '{TEST_DB_TIMEZONE}'")
    url = f"{PG_ADMIN_DSN.rsplit('/', 1)[0]}/{name}"
    data = tmp_path_factory.mktemp("bi-postgres") / "data"
    reader_password = "pw-reader-" + name[-8:]
    env = cli_env(data, WAREHOUSE_URL=url, BI_READER_PASSWORD=reader_password)
    try:
        with bi_reader_kept(url):
            done = run_cli(["demo", "--events", DEMO_EVENTS], env)
            assert done.returncode == 0, done.stderr[-3000:]
            # As an operator does: bi_reader logs in with a password given to `pricing-ops bi` too.
            granted = run_cli(["warehouse", "grant-bi-reader", "--password"], env, input=reader_password + "\n")
            assert granted.returncode == 0, granted.stderr[-2000:]
            yield {"data": data, "env": env, "url": url}
    finally:
        with _admin() as conn:
            conn.execute(f'drop database if exists "{name}" with (force)')


@pytest.fixture(scope="session")
def postgres_bi(postgres_demo, tmp_path_factory):
    server = start_bi(postgres_demo["env"], tmp_path_factory.mktemp("bi-postgres-log") / "bi.log")
    yield server
    assert server.stop() == 0, server.output()[-2000:]


def largest_snapshot_row(rows) -> tuple[str, str, Decimal]:
    slug, currency, total = max(rows, key=lambda r: r[2])
    return slug, currency, Decimal(total)


def table_rows(chart_text: str) -> list[str]:
    """A table chart's body rows as text (cells tab-separated; the header's cells are on lines of their own)."""
    return [line for line in chart_text.splitlines() if line.count("\t") >= 2]


def assert_dashboard_shows(server, user: str, password: str, expected: tuple[str, str, Decimal], shot: Path):
    view = view_dashboard(server.base_url, user, password, shot.parent / "chromium-profile", shot,
                          filter_slug=expected[0])
    print(f"screenshot: {shot}")
    assert sorted(view.titles) == sorted(CHART_TITLES)
    assert view.errors == []
    assert view.data_responses and all(status == 200 for _, status in view.data_responses), view.data_responses
    for column in ("relative_lift", "sequential_ci_low", "sequential_ci_high", "chance_to_win", "decision", "days_needed"):
        assert column in view.chart_text["Experiment results"], column
    slug, currency, total = expected
    # In full with thousands separators (1,160,525.82), never abbreviated (1.16M).
    shown = f"{total:,.2f}"
    line = next(line for line in table_rows(view.chart_text["Conversion snapshots"])
                if line.startswith(f"{slug}\t{currency}\t"))
    assert line.split("\t")[2] == shown, line
    # Filtered by that slug: the slug charts show its rows only; the providers' chart is left alone.
    snapshot_rows = table_rows(view.filtered_text["Conversion snapshots"])
    assert snapshot_rows and {r.split("\t")[0] for r in snapshot_rows} == {slug}
    assert any(r.startswith(f"{slug}\t{currency}\t{shown}\t") for r in snapshot_rows)
    variant_rows = table_rows(view.filtered_text["Variant guardrails: active vs stalled"])
    assert variant_rows and {r.split("\t")[0] for r in variant_rows} == {slug}
    assert view.filtered_text["Provider guardrails"] == view.chart_text["Provider guardrails"]
    assert shot.stat().st_size > 50_000


def test_bi_on_duckdb_serves_the_dashboard_from_the_bi_copy(duckdb_demo, duckdb_bi, tmp_path, record_property):
    out = duckdb_bi.output()
    password_file = duckdb_demo["data"] / "bi" / "admin-password"
    assert not password_file.exists()  # BI_ADMIN_PASSWORD is set: nothing generated
    assert "password in BI_ADMIN_PASSWORD" in out and duckdb_demo["env"]["BI_ADMIN_PASSWORD"] not in out
    assert f"the BI copy {duckdb_demo['data'] / 'bi' / 'marts.duckdb'}" in out
    with duckdb.connect(str(duckdb_demo["warehouse"]), read_only=True) as conn:
        rows = conn.execute("select slug, order_currency, order_total from analytics.experiment_conversion_snapshot"
                            ).fetchall()
    shot = tmp_path / "bi-duckdb.png"
    record_property("screenshot", str(shot))
    assert_dashboard_shows(duckdb_bi, "admin", duckdb_demo["env"]["BI_ADMIN_PASSWORD"], largest_snapshot_row(rows),
                           shot)


def test_bi_on_postgres_reads_as_bi_reader(postgres_demo, postgres_bi, tmp_path, record_property):
    out = postgres_bi.output()
    assert "as bi_reader" in out and postgres_demo["env"]["BI_READER_PASSWORD"] not in out
    # No password set: one generated once, the owner's only, and the command says where, not what.
    password_file = postgres_demo["data"] / "bi" / "admin-password"
    assert password_file.stat().st_mode & 0o777 == 0o600
    password = password_file.read_text().strip()
    assert f"password in {password_file}" in out and password not in out
    # Superset's database connection is bi_reader's.
    with psycopg.connect(postgres_demo["url"]) as conn:
        rows = conn.execute("select slug, order_currency, order_total from analytics.experiment_conversion_snapshot"
                            ).fetchall()
    shot = tmp_path / "bi-postgres.png"
    record_property("screenshot", str(shot))
    assert_dashboard_shows(postgres_bi, "admin", password, largest_snapshot_row(rows), shot)
    # The one database Superset knows is the warehouse as bi_reader (its password kept encrypted).
    with sqlite3.connect(postgres_demo["data"] / "bi" / "superset.db") as meta:
        uris = [uri for (uri,) in meta.execute("select sqlalchemy_uri from dbs")]
    assert len(uris) == 1 and uris[0].startswith("postgresql://bi_reader:XXXXXXXXXX@"), uris
    assert postgres_demo["env"]["BI_READER_PASSWORD"] not in uris[0]


def test_a_second_start_only_serves(duckdb_demo, duckdb_bi, tmp_path):
    """Provisioned already: the next start (another port, same data folder) serves in seconds."""
    server = start_bi(duckdb_demo["env"], tmp_path / "bi-again.log", timeout=120)
    try:
        out = server.output()
        assert "provisioned already" in out and "dashboard bundle imported" not in out
        print(f"second start: served after {server.started_in:.1f} s")
        assert server.started_in < 60, out  # contract: later starts serve within a minute
    finally:
        assert server.stop() == 0


HOLDER = textwrap.dedent("""
    import sys, time, duckdb
    conn = duckdb.connect(sys.argv[1], read_only=True)
    queries = 0
    first = conn.execute("select max(activity_date) from analytics.experiment_daily_assignments").fetchone()[0]
    print("open", first, flush=True)
    while sys.stdin.readline().strip() != "stop":
        assert conn.execute("select max(activity_date) from analytics.experiment_daily_assignments").fetchone()[0] == first
        conn.execute("select sum(order_total) from analytics.experiment_conversion_snapshot").fetchone()
        queries += 1
    print("queries", queries, flush=True)
""")


def test_a_reader_holding_the_bi_copy_blocks_no_refresh_and_is_not_broken(duckdb_demo):
    """Hold marts.duckdb open in another process (as a dashboard does) through a refresh that changes
    a mart: the refresh succeeds and publishes a new copy, the reader keeps reading its copy."""
    copy = duckdb_demo["data"] / "bi" / "marts.duckdb"
    assert copy.exists()  # published by the demo's refresh
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(copy)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        opened = holder.stdout.readline().split()
        assert opened[0] == "open", holder.stderr.read()
        before = opened[1]
        tomorrow = (datetime.now(UTC).date() + timedelta(days=1)).isoformat()
        refresh = subprocess.Popen(
            [str(PRICING_OPS), "refresh", "--as-of-date", tomorrow], env=duckdb_demo["env"],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        # The reader queries all through the refresh.
        while refresh.poll() is None:
            holder.stdin.write("go\n")
            holder.stdin.flush()
            time.sleep(0.05)
        output = refresh.stdout.read()
        assert refresh.returncode == 0, output[-3000:]
        assert "BI copy published" in output
        holder.stdin.write("stop\n")
        holder.stdin.flush()
        answered = holder.stdout.readline().split()
        assert holder.wait(timeout=30) == 0, holder.stderr.read()
        assert answered[0] == "queries" and int(answered[1]) > 10
    finally:
        if holder.poll() is None:
            holder.kill()
    # A new reader sees the new copy: the daily rows now run through the new as-of date.
    with duckdb.connect(str(copy), read_only=True) as conn:
        assert str(conn.execute("select max(activity_date) from analytics.experiment_daily_assignments"
                                ).fetchone()[0]) == tomorrow != before
