"""One reading of a PostgreSQL URL for every client (resources/postgres_url.py): each form libpq
accepts resolves to an explicit host, port, user and database, and the clients reach the server."""

from __future__ import annotations

import pytest
from conftest import PG_SOCKET_DIR, socket_url

from resources.postgres_url import resolve_postgres_url

NO_ENV: dict[str, str] = {}


@pytest.mark.parametrize(
    ("url", "env", "expected"),
    [
        ("postgresql://app@db.internal:6543/shop", NO_ENV, ("db.internal", 6543, "app", "shop", None)),
        ("postgres://app@db.internal/shop", NO_ENV, ("db.internal", 5432, "app", "shop", None)),
        ("postgresql+psycopg://app:s3cr%40t%2F1@10.0.0.5/shop", NO_ENV, ("10.0.0.5", 5432, "app", "shop", "s3cr@t/1")),
        ("postgresql://app@/shop?host=/var/run/postgresql", NO_ENV, ("/var/run/postgresql", 5432, "app", "shop", None)),
        ("postgresql:///shop", {"PGHOST": "10.1.1.1", "PGPORT": "5433", "PGUSER": "ops"}, ("10.1.1.1", 5433, "ops", "shop", None)),
        ("postgresql://", {"PGHOST": "/tmp", "PGUSER": "ops", "PGDATABASE": "wh"}, ("/tmp", 5432, "ops", "wh", None)),
        ("host=/run/pg port=5434 user=ops dbname=wh", NO_ENV, ("/run/pg", 5434, "ops", "wh", None)),
    ],
)
def test_every_form_resolves_to_explicit_parts(url, env, expected):
    target = resolve_postgres_url(url, env)
    assert (target.host, target.port, target.user, target.dbname, target.password) == expected


def test_parameters_are_kept_and_the_password_survives_a_round_trip():
    target = resolve_postgres_url("postgresql://app:p%40ss%3Aw%2Frd@db/shop?sslmode=require&connect_timeout=5", {})
    assert target.params == {"sslmode": "require", "connect_timeout": "5"}
    again = resolve_postgres_url(target.libpq_uri(), {})
    assert (again.password, again.params["sslmode"]) == ("p@ss:w/rd", "require")
    assert target.dbt_profile()["sslmode"] == "require"
    assert "p@ss" not in target.describe() and "p%40ss" not in target.describe()


def test_a_bare_socket_url_names_the_system_socket_directory():
    """ADBC's bundled libpq looks in /tmp: the resolved URL names the directory the server uses."""
    target = resolve_postgres_url("postgresql:///shop", {"PGUSER": "ops"})
    assert target.host == PG_SOCKET_DIR and f"host={PG_SOCKET_DIR}" in target.libpq_uri()


def test_unreadable_urls_are_refused_without_echoing_them():
    with pytest.raises(ValueError, match="not a PostgreSQL URL") as refused:
        resolve_postgres_url("mysql://root:hunter2@db/x", {})
    assert "hunter2" not in str(refused.value)
    with pytest.raises(ValueError, match="libpq cannot read"):
        resolve_postgres_url("postgresql://app:hunter2@db/x?nonsense_option=1", {})


@pytest.mark.postgres
@pytest.mark.parametrize("form", ["bare", "query"])
def test_psycopg_adbc_and_the_demo_source_reach_the_server_over_the_socket(pg_url, monkeypatch, form):
    import adbc_driver_postgresql.dbapi as adbc
    import psycopg

    from resources.demo_source import write_demo_source
    from resources.warehouse import libpq_uri

    monkeypatch.setenv("PGUSER", "postgres")
    url = socket_url(pg_url, form)
    write_demo_source(events=50, seed=1, postgres_url=url, progress=lambda _: None)
    with psycopg.connect(libpq_uri(url)) as conn:
        assert conn.execute("select count(*) from onboarding_journey_events").fetchone()[0] == 50
    with adbc.connect(libpq_uri(url)) as conn, conn.cursor() as cur:
        cur.execute("select count(*) from orders")
        assert cur.fetchone()[0] > 0


@pytest.mark.postgres
def test_a_mixed_case_source_schema_is_quoted_and_read(pg_url, tmp_path):
    """SOURCE_SCHEMA is always quoted: the app's `AppData` schema (not `appdata`) is the one read."""
    from datetime import UTC, datetime, timedelta

    import psycopg
    from handmade_source import create_source, insert_rows

    from assets.extract import extract_table
    from models.source_tables import FULFILLMENT_PROVIDERS
    from orchestration.settings import Settings
    from resources.source import SourceDatabase
    from resources.warehouse import Warehouse

    assert Settings(_env_file=None, SOURCE_SCHEMA="AppData").SOURCE_SCHEMA == "AppData"
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute('create schema "AppData"')
        create_source("postgres", conn, schema='"AppData"')
        insert_rows("postgres", conn, "fulfillment_providers",
                    [{"id": "p1", "name": "P", "platform": None, "created_at": datetime.now(UTC)}], schema='"AppData"')
    source = SourceDatabase(database_url=socket_url(pg_url), schema_name="AppData")
    result = extract_table(source, Warehouse(url=f"duckdb:///{tmp_path / 'wh.duckdb'}"), FULFILLMENT_PROVIDERS,
                           timedelta(minutes=10))
    assert result.rows_inserted == 1
