"""`pricing-ops bi` (Superset on the marts, contract section 11) and `pricing-ops docs` (the static
dbt docs site).

`bi` loads neither dbt nor Dagster's definitions: it reads the settings, makes sure the warehouse is
readable by BI (the DuckDB copy, or bi_reader on PostgreSQL), provisions Superset for the data
folder when something changed, and serves until stopped.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import subprocess
from pathlib import Path

from models.marts import BI_TABLES
from orchestration.cli import CommandError, progress
from orchestration.settings import Settings, get_settings, secret
from resources.warehouse import Warehouse

BI_READER = "bi_reader"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bi", help="serve the Superset dashboard pricing-experiments on the marts (Ctrl-C stops it)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8088, help="port to listen on (default 8088)")
    p.set_defaults(func=cmd_bi)

    p = sub.add_parser("docs", help="write the static dbt docs site (every mart, column and the dashboard) "
                       "under DATA_DIR/docs/")
    p.set_defaults(func=cmd_docs)


def cmd_bi(args: argparse.Namespace) -> int:
    from resources import superset

    settings = get_settings()
    if not 0 < args.port < 65536:
        raise CommandError(f"--port {args.port} is not a port; give 1-65535, e.g. 8088")
    if not superset.port_is_free(args.host, args.port):
        raise CommandError(f"{args.host}:{args.port} is in use (or not an address of this machine); "
                           "stop what listens there or pass another --port")
    warehouse = Warehouse(url=settings.warehouse_url, schema_name=settings.WAREHOUSE_SCHEMA,
                          state_url=secret(settings.STATE_DATABASE_URL))
    home = superset.BiHome(settings.data_dir / "bi")
    home.root.mkdir(parents=True, exist_ok=True)
    database_uri = bi_database_uri(settings, warehouse, home)
    python = superset.ensure_environment(progress)
    password = secret(settings.BI_ADMIN_PASSWORD)
    if password:
        where = "BI_ADMIN_PASSWORD"
    else:
        password, created = superset.secret_file(home.admin_password)
        where = f"{home.admin_password} ({'generated now' if created else 'generated at the first start'}, "\
                "readable by you only)"
    try:
        if not superset.provision(home, python, database_uri, settings.WAREHOUSE_SCHEMA, settings.BI_ADMIN_USER,
                                  password, progress):
            progress(f"superset: provisioned already ({home.root}: same dashboard, warehouse and admin)")

        def ready(base_url: str) -> None:
            progress(f"dashboard: {base_url}/superset/dashboard/{superset.DASHBOARD_SLUG}/")
            progress(f"  log in as {settings.BI_ADMIN_USER!r}, password in {where}")
            progress(f"  reads: {bi_source_description(warehouse, settings)}; Superset's log: {home.log}")
            progress("  Ctrl-C stops it")

        return superset.serve(home, python, args.host, args.port, ready)
    except superset.SupersetError as exc:
        raise CommandError(str(exc)) from None


def bi_source_description(warehouse: Warehouse, settings: Settings) -> str:
    if warehouse.engine.embedded_file is not None:
        from resources.bi_copy import copy_path

        return f"the BI copy {copy_path(settings.data_dir)} (refreshes publish it; the warehouse file stays free)"
    return f"{warehouse.describe()} as {BI_READER}"


def bi_database_uri(settings: Settings, warehouse: Warehouse, home) -> str:
    """What Superset connects to: the DuckDB BI copy (published now if missing), or the PostgreSQL
    warehouse as bi_reader. Holds bi_reader's password: never print it."""
    if warehouse.engine.embedded_file is not None:
        from resources.bi_copy import copy_path, publish_bi_copy

        copy = copy_path(settings.data_dir)
        if not copy.exists():
            progress(f"no BI copy yet: publishing the marts of {warehouse.describe()} to {copy}")
            result = publish_bi_copy(warehouse, copy, BI_TABLES, log=progress)
            if result.missing:
                copy.unlink(missing_ok=True)
                raise CommandError(f"the warehouse ({warehouse.describe()}) has no {', '.join(result.missing)} yet: "
                                   "run `pricing-ops demo` (or `pricing-ops refresh`) first")
        return f"duckdb:///{copy}"
    if not warehouse.engine.sql_grants:
        raise CommandError(f"`pricing-ops bi` serves a DuckDB or PostgreSQL warehouse; {warehouse.describe()} is "
                           "read through its Thrift/JDBC server (docs/deploy.md)")
    return _reader_uri(settings, warehouse, home)


def _reader_uri(settings: Settings, warehouse: Warehouse, home) -> str:
    import psycopg

    from orchestration.commands.warehouse import grant_bi_reader
    from resources import superset
    from resources.postgres_url import resolve_postgres_url

    password = secret(settings.BI_READER_PASSWORD)
    if password is None:
        with warehouse.connect(read_only=True) as conn:
            row = conn.fetchone("select rolcanlogin from pg_roles where rolname = :r", {"r": BI_READER})
        if row is not None and row[0] and not home.reader_password.exists():
            raise CommandError(f"role {BI_READER} already logs in with a password this data folder does not know: "
                               f"set BI_READER_PASSWORD to it (the one given to `pricing-ops warehouse "
                               "grant-bi-reader --password`)")
        password, _ = superset.secret_file(home.reader_password)
        # Our own generated password: the role logs in with it and reads exactly the marts.
        report = grant_bi_reader(warehouse, password=password)
        progress(f"{BI_READER}: SELECT on {len(report.granted)} marts, password in {home.reader_password}")
    uri = dataclasses.replace(resolve_postgres_url(warehouse.url), user=BI_READER,
                              password=password).libpq_uri()
    try:
        with psycopg.connect(uri, connect_timeout=10) as conn:
            conn.execute(f"select 1 from {settings.WAREHOUSE_SCHEMA}.experiment_results limit 0")
    except psycopg.Error as exc:
        message = (getattr(exc.diag, "message_primary", None) or str(exc)).strip().splitlines()[0]
        raise CommandError(f"{BI_READER} cannot read the marts of {warehouse.describe()} ({message}): check "
                           "BI_READER_PASSWORD, run `pricing-ops warehouse grant-bi-reader`, and build the "
                           "marts with `pricing-ops refresh`") from None
    return uri


def cmd_docs(args: argparse.Namespace) -> int:
    """`dbt docs generate --static` into DATA_DIR/docs/: one HTML file with every model, column
    description, source and the dashboard exposure."""
    from assets.dbt import dbt_vars
    from assets.dbt_project import DBT_EXECUTABLE, DBT_PROJECT_DIR, vars_args

    settings = get_settings()
    warehouse = Warehouse(url=settings.warehouse_url, schema_name=settings.WAREHOUSE_SCHEMA,
                          state_url=secret(settings.STATE_DATABASE_URL))
    target = settings.data_dir / "docs"
    variables = dbt_vars(settings.GUARDRAIL_CRITICAL_GUARDRAIL_FAILURES, settings.GUARDRAIL_CRITICAL_REPLAY_FAILURES)
    progress(f"dbt docs generate --static on {warehouse.describe()} into {target}")
    done = subprocess.run(
        [DBT_EXECUTABLE, "docs", "generate", "--static", "--project-dir", str(DBT_PROJECT_DIR),
         "--profiles-dir", str(DBT_PROJECT_DIR), "--target-path", str(target), *vars_args(variables)],
        env={**os.environ, **warehouse.dbt_env()}, cwd=DBT_PROJECT_DIR,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False,
    )
    if done.returncode != 0:
        lines = [line for line in done.stdout.splitlines() if line.strip()]
        reason = next((line for line in reversed(lines) if "Error" in line), lines[-1] if lines else "no output")
        raise CommandError(f"dbt docs generate failed: {reason.strip()[:300]} (is the warehouse busy? run it "
                           "between refreshes)")
    page = Path(target) / "static_index.html"
    progress(f"docs: {page} (open it in a browser: one file, no server)")
    return 0
