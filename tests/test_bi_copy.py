"""The DuckDB BI copy (`DATA_DIR/bi/marts.duckdb`, contract section 11) on its own: exactly the marts
and experiment tables, exact decimals, published only when their contents changed, replaced by a
rename that an open reader survives; and `pricing-ops bi` loads no dbt."""

from __future__ import annotations

import subprocess
import sys
from decimal import Decimal

import duckdb

from resources.bi_copy import publish_bi_copy
from resources.warehouse import Warehouse


def make_warehouse(tmp_path) -> Warehouse:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as conn:
        conn.execute("create schema analytics")
        conn.execute("create schema analytics_raw")
        conn.execute("create table analytics.experiment_conversion_snapshot (slug text, order_currency text, "
                     "order_total decimal(38,2))")
        conn.execute("insert into analytics.experiment_conversion_snapshot values ('spring-offer', 'USD', 1160525.82)")
        conn.execute("create table analytics.experiment_results (slug text, decision text)")
        conn.execute("create table analytics_raw.orders (order_id text)")  # never copied
    return Warehouse(url=f"duckdb:///{path}", schema_name="analytics")


def test_the_copy_holds_the_bi_tables_and_is_replaced_only_when_they_change(tmp_path):
    warehouse = make_warehouse(tmp_path)
    target = tmp_path / "bi" / "marts.duckdb"
    tables = ("experiment_conversion_snapshot", "experiment_results", "experiment_health")
    first = publish_bi_copy(warehouse, target, tables)
    assert first.published and first.missing == ("experiment_health",)
    assert first.rows == {"experiment_conversion_snapshot": 1, "experiment_results": 0}
    reader = duckdb.connect(str(target), read_only=True)
    try:
        assert reader.execute("select order_total from analytics.experiment_conversion_snapshot").fetchone() == (
            Decimal("1160525.82"),)
        assert {t for (t,) in reader.execute("select table_schema || '.' || table_name from information_schema.tables").fetchall()
                } == {"analytics.experiment_conversion_snapshot", "analytics.experiment_results"}
        inode = target.stat().st_ino
        # Nothing changed: nothing published, the same file.
        assert not publish_bi_copy(warehouse, target, tables).published
        assert target.stat().st_ino == inode
        # A mart changes while a reader holds the copy open: a new file replaces it; the reader keeps its own.
        with warehouse.connect() as conn:
            conn.execute("update analytics.experiment_conversion_snapshot set order_total = 1160525.83")
        assert publish_bi_copy(warehouse, target, tables).published
        assert target.stat().st_ino != inode
        assert reader.execute("select order_total from analytics.experiment_conversion_snapshot").fetchone() == (
            Decimal("1160525.82"),)
    finally:
        reader.close()
    with duckdb.connect(str(target), read_only=True) as fresh:
        assert fresh.execute("select order_total from analytics.experiment_conversion_snapshot").fetchone() == (
            Decimal("1160525.83"),)
    assert sorted(p.name for p in target.parent.iterdir()) == ["marts.duckdb", "marts.duckdb.json"]  # no scratch left


def test_the_bi_command_loads_neither_dbt_nor_dagster_dbt():
    code = ("import sys; from orchestration.commands import bi; from resources import superset, bi_copy; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dbt', 'dagster_dbt')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_a_publish_moves_only_the_changed_rows_and_the_copy_equals_the_warehouse(tmp_path):
    """A large mart with one row changed, one gone and one new: those three rows move (the log
    says so) and the copy holds exactly the warehouse's rows; a mart whose columns changed, and one
    whose rows repeat (a hash diff cannot tell copies apart), are copied whole, still exact."""
    warehouse = make_warehouse(tmp_path)
    with warehouse.connect() as conn:
        conn.execute("create table analytics.onboarding_pricing_experiment_segments as "
                     "select i as event_id, 'slug-' || (i % 7) as slug, cast(i as decimal(12, 2)) / 100 as order_total "
                     "from range(20000) as r(i)")
    target = tmp_path / "bi" / "marts.duckdb"
    tables = ("experiment_conversion_snapshot", "onboarding_pricing_experiment_segments")
    publish_bi_copy(warehouse, target, tables)
    with warehouse.connect() as conn:
        conn.execute("update analytics.onboarding_pricing_experiment_segments set order_total = 0.01 where event_id = 5")
        conn.execute("delete from analytics.onboarding_pricing_experiment_segments where event_id = 6")
        conn.execute("insert into analytics.onboarding_pricing_experiment_segments values (20000, 'slug-new', 12.34)")
        conn.execute("alter table analytics.experiment_conversion_snapshot add column note text")
    lines: list[str] = []
    assert publish_bi_copy(warehouse, target, tables, log=lines.append).published
    assert "BI copy: onboarding_pricing_experiment_segments: 2 rows out, 2 rows in" in lines
    assert "BI copy: experiment_conversion_snapshot: copied whole (1 rows)" in lines

    def rows(path, table):
        with duckdb.connect(str(path), read_only=True) as conn:
            return sorted(conn.execute(f"select * from analytics.{table}").fetchall(), key=repr)

    for table in tables:
        assert rows(target, table) == rows(tmp_path / "warehouse.duckdb", table)
    # Repeated rows: one of two equal rows removed leaves the hash set unchanged, so the diff
    # would miss it; the fingerprint check sees the count and copies the table whole.
    with warehouse.connect() as conn:
        conn.execute("insert into analytics.onboarding_pricing_experiment_segments values (20000, 'slug-new', 12.34)")
    publish_bi_copy(warehouse, target, tables)
    with warehouse.connect() as conn:
        conn.execute("delete from analytics.onboarding_pricing_experiment_segments where event_id = 20000")
        conn.execute("insert into analytics.onboarding_pricing_experiment_segments values (20000, 'slug-new', 12.34)")
    lines.clear()
    assert publish_bi_copy(warehouse, target, tables, log=lines.append).published
    assert "BI copy: onboarding_pricing_experiment_segments: copied whole (20,000 rows)" in lines
    assert rows(target, tables[1]) == rows(tmp_path / "warehouse.duckdb", tables[1])
