"""Writes the demo source: the five operational tables of contract section 2, generated from a seed.

The rows come from `models/demo/generator.py` (pure SQL text); this module does the I/O.
Targets: a DuckDB file (written beside the target and renamed over it: readers never see a
half-written file) or a PostgreSQL database (generated in an in-memory DuckDB and streamed with
COPY, then given the app's identity columns, defaults and foreign keys).
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from models.demo import plan
from models.demo.generator import PAYLOAD_TABLE, DemoGenerator
from models.source_tables import SOURCE_TABLES
from resources.engines import create_table_sql, engine_class
from resources.engines.postgres import PostgresConnection
from resources.postgres_url import is_postgres_url, resolve_postgres_url

ARROW_BATCH_ROWS = 50_000  # rows per COPY chunk into Postgres: a few MB of CSV each
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class DemoSourceError(RuntimeError):
    """The demo source could not be written; the message says where and how to fix it."""


@dataclass(frozen=True)
class DemoSourceSummary:
    """What was written where. `target` never contains a password."""

    target: str
    seed: int
    now: datetime
    row_counts: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0

    def __str__(self) -> str:
        counts = ", ".join(f"{n:,} {name}" for name, n in self.row_counts.items())
        now = self.now.strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{self.target}: {counts} (seed {self.seed}, now {now}, {self.seconds:.1f} s)"


def write_demo_source(
    *,
    events: int = 200_000,
    seed: int = 7,
    duckdb_path: Path | None = None,
    postgres_url: str | None = None,
    schema: str = "public",
    now: datetime | None = None,
    progress: Callable[[str], None] = print,
) -> DemoSourceSummary:
    """Write the five source tables to a DuckDB file or a Postgres URL, replacing them.

    The same (events, seed, now) gives the same rows. `now` (default: the current UTC second) is
    the end of the ~30 days of history; it must be timezone-aware. On Postgres the tables go to
    `schema` and are dropped and re-created (with CASCADE) in one transaction.
    """
    if (duckdb_path is None) == (postgres_url is None):
        raise ValueError("write_demo_source: give exactly one of duckdb_path or postgres_url")
    if isinstance(events, bool) or not isinstance(events, int) or events < 1:
        raise ValueError(f"events must be a whole number of at least 1, got {events!r}")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be a whole number from 0 to 2**63-1, got {seed!r}")
    if now is None:
        now = datetime.now(UTC).replace(microsecond=0)
    elif now.tzinfo is None or now.utcoffset() is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC)); a naive time is ambiguous")
    now = now.astimezone(UTC)

    generator = DemoGenerator(plan.demo_sizes(events), seed, (now - _EPOCH) // timedelta(microseconds=1))
    started = time.monotonic()
    if duckdb_path is not None:
        target = f"duckdb file {Path(duckdb_path).expanduser().resolve()}"
        progress(f"demo source: {generator.describe()} -> {target}")
        counts = _write_duckdb_file(generator, Path(duckdb_path), progress)
    else:
        dsn = _libpq_url(postgres_url or "")
        target = describe_postgres(dsn, schema)
        progress(f"demo source: {generator.describe()} -> {target}")
        counts = _write_postgres(generator, dsn, schema, target, progress)
    return DemoSourceSummary(target, seed, now, counts, round(time.monotonic() - started, 3))


def _load_payloads(generator: DemoGenerator, con, payload_type: str = "VARCHAR") -> None:
    """Load the payload catalogue (a few thousand distinct texts) as a temp table of `con`,
    typed once here (JSON validates 12k texts, not every event)."""
    import pyarrow as pa

    texts = generator.payloads.texts
    catalogue = pa.table({"payload_no": pa.array(range(len(texts)), pa.int64()),
                          "payload": pa.array(texts, pa.string())})
    con.register("_demo_payload_catalogue", catalogue)
    try:
        con.execute(f"create or replace temp table {PAYLOAD_TABLE} as "
                    f"select payload_no, payload::{payload_type} as payload from _demo_payload_catalogue")
    finally:
        con.unregister("_demo_payload_catalogue")


def _write_duckdb_file(generator: DemoGenerator, path: Path, progress: Callable[[str], None]) -> dict[str, int]:
    import duckdb

    path = path.expanduser().resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    _remove(tmp, Path(f"{tmp}.wal"))
    counts: dict[str, int] = {}
    try:
        con = duckdb.connect(str(tmp))
        try:
            con.execute("set TimeZone = 'UTC'")
            _load_payloads(generator, con, payload_type="JSON")
            for table in SOURCE_TABLES:
                started = time.monotonic()
                con.execute(create_table_sql(table, table.name, "duckdb"))
                con.execute(f"insert into {table.name} ({', '.join(table.column_names)}) "
                            f"{generator.table_sql(table)}")
                counts[table.name] = con.execute(f"select count(*) from {table.name}").fetchone()[0]
                progress(f"  {table.name}: {counts[table.name]:,} rows ({time.monotonic() - started:.1f} s)")
            con.execute("checkpoint")
        finally:
            con.close()
        # A WAL left beside the target by a crashed writer would be replayed onto the new file.
        _remove(Path(f"{path}.wal"))
        os.replace(tmp, path)
    except BaseException:
        _remove(tmp, Path(f"{tmp}.wal"))
        raise
    return counts


def _remove(*paths: Path) -> None:
    for p in paths:
        p.unlink(missing_ok=True)


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def describe_postgres(url: str, schema: str) -> str:
    """`postgresql://user@host:port/db schema s`: no password."""
    return f"{resolve_postgres_url(url).describe()} schema {schema}"


def _libpq_url(url: str) -> str:
    scheme, sep, _ = url.partition("://")
    if not sep or not is_postgres_url(url):
        raise DemoSourceError(
            "the demo source URL must be a PostgreSQL URL like postgresql://user@host:5432/dbname "
            f"(got a {scheme or 'scheme-less'} URL)")
    try:
        return resolve_postgres_url(url).libpq_uri()
    except ValueError as exc:
        raise DemoSourceError(f"--url: {exc}") from None


def _postgres_extras(q: Callable[[str], str]) -> list[str]:
    """What the app's DDL has beyond `create_table_sql`: identities, defaults, keys (contract 2)."""
    providers, orders, journeys = q("fulfillment_providers"), q("orders"), q("onboarding_journeys")
    events, telemetry = q("onboarding_journey_events"), q("provider_guardrail_telemetry")
    stmts = [
        f"alter table {providers} alter column created_at set default now()",
        f"alter table {orders} alter column loyalty_projection_points set default 0",
        f"alter table {orders} add constraint orders_order_number_key unique (order_number)",
        (f"alter table {orders} add constraint orders_provider_id_fkey "
         f"foreign key (provider_id) references {providers} (id)"),
        f"alter table {journeys} alter column progress_pct set default 0",
        (f"alter table {journeys} add constraint onboarding_journeys_order_id_fkey "
         f"foreign key (order_id) references {orders} (id)"),
        f"alter table {events} alter column payload set default '{{}}'",
        f"alter table {events} alter column ingested_at set default clock_timestamp()",
        (f"alter table {events} add constraint onboarding_journey_events_journey_id_fkey "
         f"foreign key (journey_id) references {journeys} (id)"),
        f"alter table {telemetry} alter column recorded_at set default clock_timestamp()",
        (f"alter table {telemetry} add constraint provider_guardrail_telemetry_provider_id_fkey "
         f"foreign key (provider_id) references {providers} (id)"),
    ]
    for column in ("guardrail_checks", "guardrail_failures", "replay_total", "replay_failures"):
        stmts.append(f"alter table {telemetry} alter column {column} set default 0")
    # Identity added after the load (COPY writes the generated ids), then moved past them so the
    # app's next insert without an id gets max(id) + 1.
    for table in (events, telemetry):
        stmts.append(f"alter table {table} alter column id add generated always as identity")
        literal = table.replace("'", "''")
        stmts.append(f"select setval(pg_get_serial_sequence('{literal}', 'id'), "
                     f"coalesce((select max(id) from {table}), 0) + 1, false)")
    # The indexes incremental extraction and the guardrail sensor read by.
    stmts += [
        f"create index on {orders} (updated_at)",
        f"create index on {journeys} (updated_at)",
        f"create index on {events} (ingested_at)",
        f"create index on {telemetry} (recorded_at)",
    ]
    return stmts


def _write_postgres(generator: DemoGenerator, dsn: str, schema: str, target: str,
                    progress: Callable[[str], None]) -> dict[str, int]:
    import duckdb
    import psycopg

    if not schema:
        raise DemoSourceError("the demo source schema is empty; set SOURCE_SCHEMA (default public)")
    password = resolve_postgres_url(dsn).password
    try:
        pg = psycopg.connect(dsn, options="-c TimeZone=UTC", autocommit=False)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if password:
            reason = reason.replace(password, "***")
        raise DemoSourceError(
            f"cannot connect to {target}: {reason}; check the URL (host, port, database, user) and that "
            "the server accepts connections") from None
    duck = duckdb.connect(":memory:")
    counts: dict[str, int] = {}
    try:
        _fill_postgres(generator, duck, pg, schema, counts, progress)
    except psycopg.Error as exc:
        pg.rollback()
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DemoSourceError(
            f"writing the demo source to {target} failed and was rolled back (nothing changed): {reason}; "
            "the user needs CREATE on the database and ownership of any existing source tables") from None
    except BaseException:
        pg.rollback()
        raise
    finally:
        duck.close()
        pg.close()
    return counts


def _fill_postgres(generator: DemoGenerator, duck, pg, schema: str, counts: dict[str, int],
                   progress: Callable[[str], None]) -> None:
    """Drop, create and load the five tables, then add the app's keys: one transaction."""

    def q(table: str) -> str:
        return f"{_quote_ident(schema)}.{_quote_ident(table)}"

    duck.execute("set TimeZone = 'UTC'")
    _load_payloads(generator, duck)
    conn = PostgresConnection(engine_class("postgres"), pg)
    conn.execute(f"create schema if not exists {_quote_ident(schema)}")
    for table in reversed(SOURCE_TABLES):  # dependants first
        conn.execute(f"drop table if exists {q(table.name)} cascade")
    for table in SOURCE_TABLES:
        started = time.monotonic()
        conn.execute(create_table_sql(table, q(table.name), "postgres"))
        reader = duck.sql(generator.table_sql(table)).to_arrow_reader(ARROW_BATCH_ROWS)
        counts[table.name] = conn.append_arrow(q(table.name), reader)
        progress(f"  {table.name}: {counts[table.name]:,} rows ({time.monotonic() - started:.1f} s)")
    started = time.monotonic()
    for stmt in _postgres_extras(q):
        conn.execute(stmt)
    for table in SOURCE_TABLES:
        conn.execute(f"analyze {q(table.name)}")
    pg.commit()
    progress(f"  keys, identities and indexes ({time.monotonic() - started:.1f} s)")
