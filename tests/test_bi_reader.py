"""`pricing-ops warehouse grant-bi-reader` on the real PostgreSQL: connected as `bi_reader`, the marts
read and nothing else does (raw, staging, rejects, automation state), and a second run takes back
grants that drifted in.

`bi_reader` is a cluster-wide role: the test leaves it as it found it (absent roles end NOLOGIN
without a password, an existing role gets its login flag and password verifier back)."""

from __future__ import annotations

import secrets
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg
import pytest
from conftest import bi_reader_kept

from models.marts import BI_TABLES as MARTS
from orchestration import cli
from orchestration.settings import get_settings

# bi_reader is cluster-wide: the tests that change its password do not run at once (test_bi_dashboard).
pytestmark = pytest.mark.xdist_group("bi_reader")

pytestmark = pytest.mark.postgres

FORBIDDEN = [
    "analytics_raw.onboarding_journey_events",
    "analytics_raw.orders",
    "analytics_raw.api_extract_state",
    "analytics_staging.stg_raw__onboarding_journey_events",
    "analytics_staging.pricing_experiment_payload_rejects",
    "analytics.guardrail_followups",
    "analytics.provider_automation_state",
    "analytics.automation_runs",
    "analytics.export_runs",
    "analytics.digest_deliveries",
]


def as_role(url: str, role: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{quote(role)}:{quote(password)}@{parts.hostname}:{parts.port or 5432}"
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


@pytest.fixture
def bi_reader_restored(pg_url):
    """Put the cluster-wide role back as it was after the test."""
    with bi_reader_kept(pg_url):
        yield


def create_warehouse_tables(url: str) -> None:
    """The marts and every table BI must not read, by hand, with one row each."""
    with psycopg.connect(url, autocommit=True) as conn:
        for schema in ("analytics", "analytics_raw", "analytics_staging"):
            conn.execute(f"create schema {schema}")
        for table in [f"analytics.{m}" for m in MARTS] + FORBIDDEN:
            if table.startswith("analytics_staging.stg_"):
                continue
            conn.execute(f"create table {table} (id integer, note text)")
            conn.execute(f"insert into {table} values (1, 'one')")
        conn.execute(
            "create view analytics_staging.stg_raw__onboarding_journey_events as "
            "select * from analytics_raw.onboarding_journey_events"
        )


def run_cli(monkeypatch, url: str, *args: str) -> int:
    monkeypatch.setenv("WAREHOUSE_URL", url)
    get_settings.cache_clear()
    try:
        return cli.main(["warehouse", "grant-bi-reader", *args])
    finally:
        get_settings.cache_clear()


def test_bi_reader_reads_the_marts_and_nothing_else(pg_url, bi_reader_restored, monkeypatch, capfd):
    create_warehouse_tables(pg_url)
    password = "pw-" + secrets.token_hex(8)

    assert run_cli(monkeypatch, pg_url, "--password", password) == 0
    out, err = capfd.readouterr()
    assert password not in out + err
    assert f"SELECT on {len(MARTS)} marts" in err  # the 8 dbt marts and the 2 experiment statistics tables
    assert len(MARTS) == 10

    reader_url = as_role(pg_url, "bi_reader", password)
    with psycopg.connect(reader_url, autocommit=True) as reader:
        assert reader.execute("select current_user").fetchone() == ("bi_reader",)
        for mart in MARTS:
            assert reader.execute(f"select id, note from analytics.{mart}").fetchall() == [(1, "one")]
        for table in FORBIDDEN:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(f"select * from {table}")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("create table analytics.bi_scratch (id integer)")

    # Grants drift: someone gives bi_reader a raw table and a broad built-in role, and a mart is rebuilt
    # (as dbt does, dropping its grants). Running the command again puts it right; it stays LOGIN.
    with psycopg.connect(pg_url, autocommit=True) as admin:
        admin.execute("grant usage on schema analytics_raw to bi_reader")
        admin.execute("grant select on analytics_raw.orders to bi_reader")
        admin.execute("grant pg_read_all_data to bi_reader")
        admin.execute("drop table analytics.experiment_slug_summary")
        admin.execute("create table analytics.experiment_slug_summary (id integer, note text)")
        admin.execute("insert into analytics.experiment_slug_summary values (2, 'rebuilt')")
    assert run_cli(monkeypatch, pg_url) == 0
    out, err = capfd.readouterr()
    assert "memberships revoked: pg_read_all_data" in err and "LOGIN" in err

    with psycopg.connect(reader_url, autocommit=True) as reader:
        assert reader.execute("select id, note from analytics.experiment_slug_summary").fetchall() == [(2, "rebuilt")]
        for table in FORBIDDEN:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                reader.execute(f"select * from {table}")


def test_grant_bi_reader_refuses_a_duckdb_warehouse_with_a_clear_reason(tmp_path, monkeypatch, capfd):
    assert run_cli(monkeypatch, f"duckdb:///{tmp_path / 'w.duckdb'}") == 1
    err = capfd.readouterr().err
    assert err.startswith("pricing-ops warehouse: bi_reader is a PostgreSQL role, and the warehouse is a duckdb file ")
    assert "set WAREHOUSE_URL=postgresql://" in err
