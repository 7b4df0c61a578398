"""Test helpers for the guardrail tests: a recording HTTP server on 127.0.0.1 (Slack Web API, webhook,
app API), a hand-written `provider_guardrail_status` mart, and the resources wired to them."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import defaultdict, deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self
from urllib.parse import parse_qs

from resources.stores.guardrail_tables import STATUS_MART
from resources.warehouse import Warehouse


@dataclass
class Recorded:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    def json(self) -> Any:
        ctype = self.headers.get("content-type", "")
        if ctype.startswith("application/x-www-form-urlencoded"):
            return {k: v[0] for k, v in parse_qs(self.body.decode()).items()}
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


class RecordingServer:
    """A real HTTP server on 127.0.0.1: records every POST and answers from a per-path script.

    `script(path, Reply(...), ...)` queues answers for a path; when the queue is empty the default
    for the path is used (Slack's `chat.postMessage` answers `ok` with a `ts`, others 200 `{}`).
    """

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._scripts: dict[str, deque[Reply]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._ts = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:  # keep test output quiet
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                reply = server._record(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                payload = reply.body if isinstance(reply.body, bytes) else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def script(self, path: str, *replies: Reply) -> None:
        with self._lock:
            self._scripts[path].extend(replies)

    def _record(self, path: str, headers: dict[str, str], body: bytes) -> Reply:
        with self._lock:
            self.requests.append(Recorded(path, headers, body, time.monotonic()))
            if self._scripts[path]:
                return self._scripts[path].popleft()
            if path.endswith("chat.postMessage"):
                self._ts += 1
                return Reply(200, {"ok": True, "channel": "C0TEST", "ts": f"1764180000.{self._ts:06d}"})
            if path.startswith("/hooks/"):
                return Reply(200, b"ok")
            return Reply(200, {})

    def to(self, path: str) -> list[Recorded]:
        return [r for r in self.requests if r.path == path]


def unused_port_url() -> str:
    """`http://127.0.0.1:<port>` where nothing listens (a server that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# A hand-written provider_guardrail_status ------------------------------------------------------------
MART_DDL = """
create table {schema}.provider_guardrail_status (
  provider_id text, provider_name text, platform text, experiment_slug text, variant_key text,
  window_start timestamptz, window_end timestamptz, guardrail_failures integer, replay_failures integer,
  replay_total integer, severity text, reasons text
)
"""


@dataclass
class Window:
    """One provider's latest window, as the mart would hold it. The severity is stated, not derived
    from the counts: the rule lives in the dbt model only (tests/test_dbt_models.py checks it)."""

    provider_id: str
    provider_name: str
    window_end: datetime
    guardrail_failures: int = 0
    replay_failures: int = 0
    replay_total: int = 10
    slug: str | None = "spring-offer"
    variant_key: str | None = "b"
    platform: str | None = "instagram"
    severity: str = "ok"

    def row(self) -> tuple:
        severity = self.severity
        reasons = (
            ""
            if severity == "ok"
            else f"guardrail_failures {self.guardrail_failures}; replay_failures {self.replay_failures}"
        )
        return (
            self.provider_id,
            self.provider_name,
            self.platform,
            self.slug,
            self.variant_key,
            self.window_end - timedelta(minutes=5),
            self.window_end,
            self.guardrail_failures,
            self.replay_failures,
            self.replay_total,
            severity,
            reasons,
        )


def write_status_mart(warehouse: Warehouse, windows: Iterable[Window]) -> None:
    """Replace the mart's rows (what a dbt rebuild does)."""
    with warehouse.connect() as conn:
        conn.execute(f"create schema if not exists {warehouse.schema}")
        if not conn.table_exists(warehouse.schema, STATUS_MART):
            conn.execute(MART_DDL.format(schema=warehouse.schema))
        conn.execute(f"delete from {warehouse.schema}.{STATUS_MART}")
        for w in windows:
            names = ("p0", "p1", "p2", "p3", "p4", "p5", "p6", "p7", "p8", "p9", "p10", "p11")
            conn.execute(
                f"insert into {warehouse.schema}.{STATUS_MART} values ({', '.join(':' + n for n in names)})",
                dict(zip(names, w.row())),
            )


def table_rows(warehouse: Warehouse, table: str, order_by: str) -> list[dict[str, Any]]:
    with warehouse.connect() as conn:
        return conn.fetch_dicts(f"select * from {warehouse.schema}.{table} order by {order_by}")
