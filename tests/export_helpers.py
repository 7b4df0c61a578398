"""Test support for the export: the segments mart made by hand (contract section 3 columns and
types) on DuckDB or Postgres, and a real HTTP receiver on 127.0.0.1 that fails on command."""

from __future__ import annotations

import gzip
import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

SEGMENTS_DDL = """
create table {schema}.onboarding_pricing_experiment_segments (
    event_id bigint not null,
    journey_id text,
    order_id text,
    order_number text,
    slug text not null,
    variant_key text,
    variant_name text,
    is_control boolean,
    assignment_strategy text,
    feature_flag_key text,
    surface text,
    journey_status text,
    order_status text,
    order_total numeric(12, 2),
    order_currency text,
    loyalty_projection_points integer,
    recorded_at timestamptz,
    ingested_at timestamptz,
    loaded_at timestamptz not null
)
"""
COLUMNS = (
    "event_id", "journey_id", "order_id", "order_number", "slug", "variant_key", "variant_name", "is_control",
    "assignment_strategy", "feature_flag_key", "surface", "journey_status", "order_status", "order_total",
    "order_currency", "loyalty_projection_points", "recorded_at", "ingested_at", "loaded_at",
)
LOAD_1 = datetime(2026, 11, 26, 9, 0, 0, 123456, tzinfo=UTC)


def segment(event_id: int, slug: str = "spring-offer", loaded_at: datetime = LOAD_1, **overrides: Any) -> dict[str, Any]:
    """One mart row with plausible values; every column can be overridden."""
    row = {
        "event_id": event_id,
        "journey_id": f"j-{event_id}",
        "order_id": f"o-{event_id}",
        "order_number": f"SO-{event_id:05d}",
        "slug": slug,
        "variant_key": "b" if event_id % 2 else "a",
        "variant_name": "Spring 15% off" if event_id % 2 else "Control",
        "is_control": event_id % 2 == 0,
        "assignment_strategy": "random_split",
        "feature_flag_key": None,
        "surface": "checkout",
        "journey_status": "active",
        "order_status": "paid",
        "order_total": Decimal(event_id % 1000) + Decimal("0.50"),
        "order_currency": "USD",
        "loyalty_projection_points": event_id % 300,
        "recorded_at": datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=event_id),
        "ingested_at": datetime(2026, 11, 1, tzinfo=UTC) + timedelta(seconds=event_id),
        "loaded_at": loaded_at,
    }
    row.update(overrides)
    return row


def create_segments_duckdb(path, rows: Iterable[Mapping[str, Any]] = (), schema: str = "analytics") -> None:
    import duckdb

    with duckdb.connect(str(path)) as conn:
        conn.execute(f"create schema if not exists {schema}")
        conn.execute(SEGMENTS_DDL.format(schema=schema))
        insert_segments_duckdb_conn(conn, rows, schema)


def insert_segments_duckdb(path, rows: Iterable[Mapping[str, Any]], schema: str = "analytics") -> None:
    import duckdb

    with duckdb.connect(str(path)) as conn:
        insert_segments_duckdb_conn(conn, rows, schema)


def insert_segments_duckdb_conn(conn, rows: Iterable[Mapping[str, Any]], schema: str = "analytics") -> None:
    rows = list(rows)
    if not rows:
        return
    placeholders = ", ".join("?" for _ in COLUMNS)
    conn.executemany(
        f"insert into {schema}.onboarding_pricing_experiment_segments ({', '.join(COLUMNS)}) values ({placeholders})",
        [[row[c] for c in COLUMNS] for row in rows],
    )


def bulk_segments_duckdb(path, count: int, loads: int = 4, schema: str = "analytics") -> None:
    """`count` rows spread over `loads` extraction runs (one loaded_at each), built inside DuckDB.
    Event ids interleave across loads (late commits), two slugs on every third event."""
    import duckdb

    with duckdb.connect(str(path)) as conn:
        conn.execute("set TimeZone = 'UTC'")
        conn.execute(f"create schema if not exists {schema}")
        conn.execute(SEGMENTS_DDL.format(schema=schema))
        conn.execute(
            f"""
            insert into {schema}.onboarding_pricing_experiment_segments
            select e as event_id, 'j-' || (e // 2) as journey_id, 'o-' || (e // 2) as order_id,
                   'SO-' || lpad(cast(e // 2 as varchar), 8, '0') as order_number,
                   case when i % 3 = 2 then 'winter' else 'spring-offer' end as slug,
                   case when e % 2 = 0 then 'a' else 'b' end as variant_key,
                   case when e % 2 = 0 then 'Control' else 'Spring 15% off "quoted" & <b>' end as variant_name,
                   e % 2 = 0 as is_control, 'random_split' as assignment_strategy,
                   case when e % 5 = 0 then 'flag-' || e else null end as feature_flag_key,
                   'checkout' as surface, 'active' as journey_status, 'paid' as order_status,
                   cast((e % 100000) / 100.0 as decimal(12, 2)) as order_total, 'USD' as order_currency,
                   cast(e % 500 as integer) as loyalty_projection_points,
                   timestamptz '2026-11-01 00:00:00+00' + to_microseconds(e * 1013) as recorded_at,
                   timestamptz '2026-11-01 00:00:00+00' + to_microseconds(e * 1013) as ingested_at,
                   timestamptz '2026-11-20 00:00:00.000001+00' + to_seconds(i % {loads}) as loaded_at
            from (select i, case when i % 3 = 2 then i - 1 else i end as e from range(0, {count}) t(i))
            """
        )


LOAD_2 = LOAD_1 + timedelta(minutes=15)
LOAD_3 = LOAD_2 + timedelta(minutes=15)


def mart_rows() -> list[dict]:
    """25 rows over two loads; event 5 committed late (loaded with the second load), event 3 exposed
    to three slugs (byte order: 'Spring' < 'spring-offer' < 'été'), awkward text and money."""
    rows = [segment(i) for i in range(1, 13) if i != 5]
    rows += [
        segment(3, "Spring", variant_name='Quoted "name"\nand a newline', order_total=Decimal("0.00")),
        segment(3, "été-offer", order_total=Decimal("9999999999.99"), feature_flag_key="flag-ç"),
        segment(12, "winter", order_id=None, order_number=None, order_total=None, order_currency=None,
                loyalty_projection_points=None, journey_status=None),
    ]
    rows += [segment(i, loaded_at=LOAD_2) for i in (5, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22)]
    return rows


def expected_order(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: (r["loaded_at"], r["event_id"], r["slug"].encode()))


# The receiver ----------------------------------------------------------------------------------


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes  # decoded (gunzipped when it came gzipped)
    raw_size: int
    status: int  # 0 while the plan holds the answer back

    @property
    def rows(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.body.decode("utf-8").splitlines()]


@dataclass
class Receiver:
    """An NDJSON webhook receiver on 127.0.0.1.

    `plan` decides each answer: a callable (request number from 1, headers) -> (status, headers) or
    None for the default 200. Accepted batches are kept in `accepted`, every request in `requests`.
    `advertise_gzip` adds `Accept-Encoding: gzip` to answers (RFC 7694).
    """

    plan: Callable[[int, dict[str, str]], tuple[int, dict[str, str]] | None] | None = None
    advertise_gzip: bool = False
    requests: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}/hooks/segments?token=s3cr3t-token"

    @property
    def accepted(self) -> list[Received]:
        return [r for r in self.requests if 200 <= r.status < 300]

    def accepted_rows(self) -> list[dict[str, Any]]:
        return [row for r in self.accepted for row in r.rows]

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                body = gzip.decompress(raw) if self.headers.get("Content-Encoding") == "gzip" else raw
                headers = {k: v for k, v in self.headers.items()}
                # Recorded before the plan runs: a request held by the plan has still been received.
                record = Received(headers, body, len(raw), 0)
                with receiver.lock:
                    receiver.requests.append(record)
                    number = len(receiver.requests)
                decision = receiver.plan(number, headers) if receiver.plan else None
                status, extra = decision if decision else (200, {})
                record.status = status
                reply = b'{"ok":true}' if status < 300 else b'{"error":"nope"}'
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    if receiver.advertise_gzip:
                        self.send_header("Accept-Encoding", "gzip")
                    for key, value in extra.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the exporter is gone (killed on purpose): the batch was received all the same

            def log_message(self, *args):  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()
