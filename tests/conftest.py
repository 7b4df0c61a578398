"""Shared fixtures.

Every test runs with the process in a non-UTC time zone and every test database with a non-UTC
`TimeZone`, so a result that depends on either fails here rather than in production.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

os.environ["TZ"] = "America/Los_Angeles"
time.tzset()
# Tests build their own settings; a developer's .env or exported variables must not leak in.
for _name in list(os.environ):
    if _name.startswith(("ONBOARDING_EXPORT_", "SLACK_", "SMTP_", "WAREHOUSE_", "DAGSTER_POSTGRES_URL", "APP_API_", "CHECKOUT_API_KEY", "BI_")):
        os.environ.pop(_name)

TESTS_DIR = Path(__file__).resolve().parent
sys.path.insert(0, str(TESTS_DIR))

PG_ADMIN_DSN = os.environ.get("PRICING_OPS_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")
TEST_DB_TIMEZONE = "Asia/Kolkata"  # +05:30: shifts dates and is not a whole hour away from UTC


# The xdist groups that take longest on their worker, scheduled first: under `--dist loadgroup` the
# workers take groups in collection order, and a long group collected last (the Spark cluster's
# tests, test_spark_warehouse.py) would run alone at the end while the other worker idles.
LONGEST_GROUPS_FIRST = ("spark",)


def pytest_collection_modifyitems(config, items):
    def rank(item) -> int:
        groups = {str(mark.args[0]) for mark in item.iter_markers("xdist_group") if mark.args}
        return min((LONGEST_GROUPS_FIRST.index(g) for g in groups if g in LONGEST_GROUPS_FIRST),
                   default=len(LONGEST_GROUPS_FIRST))

    items.sort(key=rank)  # stable: the rest keep their order


def _admin():
    import psycopg

    return psycopg.connect(PG_ADMIN_DSN, autocommit=True)


def postgres_available() -> bool:
    try:
        with _admin():
            return True
    except Exception:  # noqa: BLE001 - any failure to connect means no server
        return False


@pytest.fixture
def make_pg_database() -> Iterator[Callable[[], str]]:
    """Factory: a fresh Postgres database (non-UTC TimeZone) per call, dropped after the test."""
    created: list[str] = []

    def make() -> str:
        name = f"pricing_ops_test_{uuid.uuid4().hex[:12]}"
        with _admin() as conn:
            conn.execute(f'create database "{name}"')
            conn.execute(f"alter database \"{name}\" set timezone to '{TEST_DB_TIMEZONE}'")
        created.append(name)
        base = PG_ADMIN_DSN.rsplit("/", 1)[0]
        return f"{base}/{name}"

    yield make
    with _admin() as conn:
        for name in created:
            conn.execute(f'drop database if exists "{name}" with (force)')


@contextmanager
def bi_reader_kept(url: str) -> Iterator[None]:
    """The cluster-wide role `bi_reader` as it was before the block (login flag and password
    verifier), its grants in the database at `url` dropped."""
    from psycopg import sql

    with _admin() as admin:
        before = admin.execute("select rolcanlogin, rolpassword from pg_authid where rolname = 'bi_reader'").fetchone()
    try:
        yield
    finally:
        import psycopg

        with psycopg.connect(url, autocommit=True) as conn:
            if conn.execute("select 1 from pg_roles where rolname = 'bi_reader'").fetchone():
                conn.execute("drop owned by bi_reader")  # its grants in this database
        with _admin() as admin:
            if before is None:
                admin.execute("alter role bi_reader nologin password null")
            else:
                login = "login" if before[0] else "nologin"
                password = sql.Literal(before[1]) if before[1] else sql.SQL("null")
                admin.execute(sql.SQL("alter role bi_reader " + login + " password {}").format(password))


PG_SOCKET_DIR = "/var/run/postgresql"


def socket_url(tcp_url: str, form: str = "query") -> str:
    """The same database as `tcp_url`, over the local socket: `postgresql:///db` (host, port and
    user left to the environment and libpq's defaults) or `postgresql://user@/db?host=<dir>`."""
    dbname = tcp_url.rsplit("/", 1)[1]
    if form == "bare":
        return f"postgresql:///{dbname}"
    return f"postgresql://postgres@/{dbname}?host={PG_SOCKET_DIR}"


@pytest.fixture
def pg_url(make_pg_database) -> str:
    return make_pg_database()


@pytest.fixture
def make_settings(tmp_path: Path):
    """Settings for a test: DATA_DIR under tmp_path, no .env, overrides as keyword arguments."""
    from orchestration.settings import Settings

    def make(**overrides) -> Settings:
        values = {"DATA_DIR": tmp_path / "data"}
        values.update(overrides)
        return Settings(_env_file=None, **values)

    return make


@pytest.fixture(scope="session")
def dbt_manifest() -> Path:
    """The dbt manifest the definitions load (parsed once per code version)."""
    from assets.dbt import dbt_vars
    from assets.dbt_project import prepared_project
    from orchestration.settings import Settings

    defaults = Settings()
    variables = dbt_vars(defaults.GUARDRAIL_CRITICAL_GUARDRAIL_FAILURES, defaults.GUARDRAIL_CRITICAL_REPLAY_FAILURES)
    parse_env = {"PRICING_OPS_DBT_TARGET": "duckdb", "PRICING_OPS_WAREHOUSE_SCHEMA": defaults.WAREHOUSE_SCHEMA}
    return prepared_project(parse_env, variables).manifest_path
