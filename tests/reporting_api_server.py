"""A stand-in for the app's reporting API on 127.0.0.1: the contract's experiment-events feed.

`GET /api/v1/reporting/onboarding/experiment-events?limit=N&cursor=C` with `X-API-Key` answers
`{"events": [...], "nextCursor": "..." | null}` from a list of export rows, pages capped at
`max_page` rows like a real server caps `limit`. Scripted answers (a 503, a 429 with `Retry-After`)
are served first; `refuse_from` makes pages at or after a row offset answer 401.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

PATH = "/api/v1/reporting/onboarding/experiment-events"


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"offset:{offset}".encode()).decode()


def decode_cursor(cursor: str) -> int:
    return int(base64.urlsafe_b64decode(cursor.encode()).decode().split(":", 1)[1])


@dataclass
class Request:
    path: str
    params: dict[str, str]
    api_key: str | None
    at: float
    status: int = 0


@dataclass
class FakeReportingApi:
    rows: list[dict[str, Any]]
    api_key: str
    max_page: int = 1000
    # (status, headers, body) served, in order, before any normal answer.
    script: list[tuple[int, dict[str, str], bytes]] = field(default_factory=list)
    refuse_from: int | None = None  # row offset from which pages answer 401
    always_status: int | None = None  # every request answers this status
    requests: list[Request] = field(default_factory=list)
    base_url: str = ""

    def answer(self, path: str, params: dict[str, str], api_key: str | None) -> tuple[int, dict[str, str], bytes]:
        if self.always_status is not None:
            return self.always_status, {}, json.dumps({"detail": f"echo of the request key {api_key}"}).encode()
        if self.script:
            return self.script.pop(0)
        if path != PATH:
            return 404, {}, b'{"detail": "not found"}'
        if api_key != self.api_key:
            return 401, {}, b'{"detail": "invalid API key"}'
        offset = decode_cursor(params["cursor"]) if params.get("cursor") else 0
        if self.refuse_from is not None and offset >= self.refuse_from:
            return 401, {}, b'{"detail": "API key revoked"}'
        limit = min(int(params.get("limit", "100")), self.max_page)
        page = self.rows[offset : offset + limit]
        end = offset + len(page)
        next_cursor = encode_cursor(end) if end < len(self.rows) else None
        return 200, {"Content-Type": "application/json"}, json.dumps({"events": page, "nextCursor": next_cursor}).encode()


@contextmanager
def serve(api: FakeReportingApi) -> Iterator[FakeReportingApi]:
    """Run `api` on an ephemeral port of 127.0.0.1 for the duration of the block."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            params = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
            request = Request(parts.path, params, self.headers.get("X-API-Key"), time.monotonic())
            status, headers, body = api.answer(parts.path, params, request.api_key)
            request.status = status
            api.requests.append(request)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    api.base_url = f"http://127.0.0.1:{server.server_address[1]}"
    try:
        yield api
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
