"""`pricing-ops warehouse grant-bi-reader`: the `bi_reader` role BI dashboards connect as.

On a PostgreSQL warehouse, idempotently: create the role (NOLOGIN unless a password is given), take
back whatever it holds in this database (tables, sequences and schemas anywhere, role memberships),
then grant USAGE on the marts schema and SELECT on the marts that exist (the dbt marts and the
experiment statistics tables). Everything runs
in one transaction, so readers never see a moment without their grants. The marts' dbt post-hook
re-grants each mart when dbt rebuilds it, as long as the role exists.
"""

from __future__ import annotations

import argparse
import getpass
import sys
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

# The dbt marts and the experiment statistics tables: everything BI reads.
from models.marts import BI_TABLES as MARTS
from orchestration.cli import CommandError
from orchestration.settings import Settings, get_settings

if TYPE_CHECKING:  # the resource imports Dagster: loaded when the command runs, not for `--help`
    from resources.warehouse import Warehouse, WarehouseConnection

BI_READER = "bi_reader"
_ASK = object()  # `--password` given without a value: read it from the terminal or stdin


@dataclass
class GrantReport:
    role: str
    created: bool
    can_login: bool
    granted: list[str] = field(default_factory=list)  # qualified marts readable now
    missing: list[str] = field(default_factory=list)  # marts not built yet (the dbt post-hook grants them)
    revoked_memberships: list[str] = field(default_factory=list)
    public_readable: list[str] = field(default_factory=list)  # non-mart tables PUBLIC may read (warned)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("warehouse", help="warehouse administration (PostgreSQL)")
    wsub = p.add_subparsers(dest="warehouse_command", required=True, metavar="SUBCOMMAND")
    g = wsub.add_parser(
        "grant-bi-reader",
        help="create/refresh the bi_reader role: SELECT on the marts only (safe to run again)",
    )
    g.add_argument(
        "--password",
        nargs="?",
        const=_ASK,
        default=None,
        help="make bi_reader a LOGIN role with this password; without a value it is read from the "
        "terminal or the first line of stdin (keeps it out of the process list). Never printed.",
    )
    g.set_defaults(func=cmd_grant_bi_reader)


def cmd_grant_bi_reader(args: argparse.Namespace) -> int:
    settings = get_settings()
    password = args.password
    if password is _ASK:
        password = (
            getpass.getpass(f"{BI_READER} password: ") if sys.stdin.isatty() else sys.stdin.readline().rstrip("\r\n")
        )
    if password is not None and not password:
        raise CommandError("--password: the password is empty; give one, or leave --password out for a NOLOGIN role")
    report = grant_bi_reader(warehouse_for(settings), password=password)
    say(f"role {report.role}: {'created' if report.created else 'exists'}, "
        f"{'LOGIN' if report.can_login else 'NOLOGIN (set a password with --password to connect as it)'}")
    if report.revoked_memberships:
        say(f"  memberships revoked: {', '.join(report.revoked_memberships)}")
    say(f"  SELECT on {len(report.granted)} marts: {', '.join(report.granted) or '-'}")
    if report.missing:
        say(f"  not built yet (granted by dbt when built): {', '.join(report.missing)}")
    if report.public_readable:
        say(f"  warning: PUBLIC can read {', '.join(report.public_readable)}, and so can {report.role}; "
            "revoke it with `revoke select on <table> from public`")
    return 0


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def warehouse_for(settings: Settings) -> Warehouse:
    from orchestration.resources import build_warehouse

    # Plain values, not EnvVar: this runs outside Dagster, where EnvVar fields are not resolved.
    return build_warehouse(settings, resolved=True)


def grant_bi_reader(warehouse: Warehouse, password: str | None = None, role: str = BI_READER) -> GrantReport:
    """Create or refresh `role` on a Postgres warehouse: SELECT on the existing marts and nothing else."""
    if not warehouse.engine.sql_grants:
        raise CommandError(
            f"{role} is a PostgreSQL role, and the warehouse is a {warehouse.describe()}: set WAREHOUSE_URL="
            "postgresql://... (a DuckDB file is shared read-only through file permissions instead)"
        )
    import psycopg

    try:
        with warehouse.connect() as conn:
            return _grant(conn, warehouse.schema, role, password)
    except psycopg.errors.InsufficientPrivilege as exc:
        raise CommandError(
            f"the warehouse user may not manage role {role} on {warehouse.describe()} "
            f"({exc.diag.message_primary}): run this command with a user that has CREATEROLE and owns the "
            "marts (or is a superuser)"
        ) from None


def _grant(conn: WarehouseConnection, schema: str, role: str, password: str | None) -> GrantReport:
    from psycopg import sql

    raw = conn.raw
    ident = sql.Identifier(role)

    def run(statement: sql.Composable) -> None:
        with raw.cursor() as cur:
            cur.execute(statement)

    # Roles are cluster-wide; two runs at once would race on `create role`.
    conn.execute("select pg_advisory_xact_lock(hashtext('pricing_ops.grant_bi_reader'))")
    existing = conn.fetchone("select rolcanlogin from pg_roles where rolname = :r", {"r": role})
    report = GrantReport(role=role, created=existing is None, can_login=bool(existing and existing[0]))
    if password is not None:
        # Sent as a SCRAM verifier computed here: the plain password never reaches the server or its logs.
        verifier = raw.pgconn.encrypt_password(password.encode(), role.encode(), b"scram-sha-256").decode()
        verb = "create" if existing is None else "alter"
        run(sql.SQL(verb + " role {} with login password {}").format(ident, sql.Literal(verifier)))
        report.can_login = True
    elif existing is None:
        run(sql.SQL("create role {} with nologin").format(ident))

    # Take back everything it holds here, then grant exactly the marts.
    for (member_of,) in conn.fetchall(
        "select g.rolname from pg_auth_members m join pg_roles g on g.oid = m.roleid "
        "join pg_roles r on r.oid = m.member where r.rolname = :r order by 1",
        {"r": role},
    ):
        run(sql.SQL("revoke {} from {}").format(sql.Identifier(member_of), ident))
        report.revoked_memberships.append(member_of)
    schemas = [
        name
        for (name,) in conn.fetchall(
            "select nspname from pg_namespace where nspname not in ('pg_catalog', 'information_schema') "
            "and nspname not like 'pg\\_toast%' and nspname not like 'pg\\_temp\\_%' order by 1"
        )
    ]
    for name in schemas:
        target = sql.Identifier(name)
        for kind in ("tables", "sequences", "functions"):
            run(sql.SQL("revoke all on all " + kind + " in schema {} from {}").format(target, ident))
        run(sql.SQL("revoke all on schema {} from {}").format(target, ident))
    database = sql.Identifier(conn.fetchone("select current_database()")[0])
    run(sql.SQL("revoke all on database {} from {}").format(database, ident))
    run(sql.SQL("grant connect on database {} to {}").format(database, ident))

    if schema in schemas:
        run(sql.SQL("grant usage on schema {} to {}").format(sql.Identifier(schema), ident))
    built = {
        name
        for (name,) in conn.fetchall(
            "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname = :s and c.relkind in ('r', 'v', 'm', 'p')",
            {"s": schema},
        )
    }
    for mart in MARTS:
        if mart in built:
            run(sql.SQL("grant select on {}.{} to {}").format(sql.Identifier(schema), sql.Identifier(mart), ident))
            report.granted.append(f"{schema}.{mart}")
        else:
            report.missing.append(f"{schema}.{mart}")

    # PUBLIC's grants reach every role and cannot be taken back from one role alone: say so.
    report.public_readable = [
        f"{nsp}.{rel}"
        for nsp, rel in conn.fetchall(
            "select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace, "
            "lateral aclexplode(c.relacl) a where a.grantee = 0 and a.privilege_type = 'SELECT' "
            "and n.nspname not in ('pg_catalog', 'information_schema') and c.relkind in ('r', 'v', 'm', 'p') "
            "order by 1, 2"
        )
        if not (nsp == schema and rel in MARTS)
    ]
    return report
