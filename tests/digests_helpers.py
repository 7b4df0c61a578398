"""Real outside parts for the digest tests, on 127.0.0.1: a Slack Web API server that slack-sdk's
`WebClient` talks to, an aiosmtpd SMTP server (optionally STARTTLS + AUTH, optionally refusing the
first messages with a 451), and hand-made marts / follow-up tables with the contract's columns."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import socket
import threading
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Self

from resources.warehouse import Warehouse

UTC = dt.UTC
SLACK_TOKEN = "xoxb-test-digest-token"


def ts(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)


# Slack Web API -------------------------------------------------------------------------------------
class SlackApiServer:
    """Answers `chat.postMessage` like Slack; `error` makes it answer `ok: false` with that error."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.error: str | None = None
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                outer.requests.append(
                    {
                        "path": self.path,
                        "auth": self.headers.get("Authorization"),
                        "json": json.loads(body or b"{}"),
                        "accepted": not outer.error,
                    }
                )
                if outer.error:
                    payload = {"ok": False, "error": outer.error}
                else:
                    payload = {"ok": True, "channel": "C0DIGEST", "ts": f"1764147600.{len(outer.requests):06d}"}
                data = json.dumps(payload).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/api/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def posted(self) -> list[dict[str, Any]]:
        """`chat.postMessage` bodies that Slack accepted."""
        return [r["json"] for r in self.requests if r["path"].endswith("/chat.postMessage") and r["accepted"]]

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


# SMTP ----------------------------------------------------------------------------------------------
def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RecordingHandler:
    """Keeps every accepted message; refuses the first `refuse` DATA commands with a 451."""

    def __init__(self, refuse: int = 0) -> None:
        self.refuse = refuse
        self.refused = 0
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []

    async def handle_DATA(self, server, session, envelope):
        if self.refused < self.refuse:
            self.refused += 1
            return "451 4.3.0 Mail server temporarily unavailable, try again later"
        self.messages.append(message_from_bytes(envelope.original_content or envelope.content, policy=policy.default))
        self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 2.0.0 OK queued"


def self_signed_cert(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 / localhost and its key, as PEM files."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "smtp-cert.pem", folder / "smtp-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_path, key_path


@contextmanager
def smtp_server(
    handler: RecordingHandler, tls_folder: Path | None = None, credentials: tuple[str, str] | None = None
) -> Iterator[tuple[int, list[str]]]:
    """An aiosmtpd server on 127.0.0.1; with `tls_folder`, STARTTLS is required and AUTH checks
    `credentials`. Yields the port and the list of logins it accepted."""
    import ssl

    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    logins: list[str] = []
    kwargs: dict[str, Any] = {}
    if tls_folder is not None:
        cert, key = self_signed_cert(tls_folder)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(cert, key)

        def authenticate(server, session, envelope, mechanism, auth_data):
            login = auth_data.login.decode()
            ok = credentials is not None and (login, auth_data.password.decode()) == credentials
            if ok:
                logins.append(login)
            return AuthResult(success=ok, handled=False)  # handled=False: aiosmtpd answers 535 itself

        kwargs = {"tls_context": context, "require_starttls": True, "authenticator": authenticate, "auth_require_tls": True}
    port = free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port, **kwargs)
    controller.start()
    try:
        yield port, logins
    finally:
        controller.stop()


# Hand-made tables ------------------------------------------------------------------------------------
CONVERSION_COLUMNS = (
    "slug varchar, order_currency varchar, order_total decimal(18,2), order_count integer, "
    "journey_count integer, loyalty_points bigint, last_activity timestamptz"
)



def duckdb_warehouse(path: Path) -> Warehouse:
    return Warehouse(url=f"duckdb:///{path}", schema_name="analytics")


def create_marts(warehouse: Warehouse) -> None:
    """The two conversion marts, the daily assignments and the follow-ups, empty."""
    from resources.stores.guardrail_tables import ensure_guardrail_tables

    s = warehouse.schema
    with warehouse.connect() as conn:
        conn.execute(f"create schema if not exists {s}")
        conn.execute(f"create table if not exists {s}.experiment_conversion_snapshot ({CONVERSION_COLUMNS})")
        conn.execute(
            f"create table if not exists {s}.experiment_conversion_snapshot_history "
            f"(snapshot_date date, {CONVERSION_COLUMNS})"
        )
        conn.execute(
            f"create table if not exists {s}.experiment_daily_assignments "
            "(slug varchar, activity_date date, exposure_count integer, journey_count integer)"
        )
        ensure_guardrail_tables(conn, s)  # the follow-ups (and the other guardrail state) as the store makes them


def insert(warehouse: Warehouse, table: str, rows: Iterable[dict[str, Any]]) -> None:
    """Append rows (dicts with the table's column names) in one Arrow batch."""
    import pyarrow as pa

    rows = list(rows)
    if rows:
        with warehouse.connect() as conn:
            conn.append_arrow(f"{warehouse.schema}.{table}", pa.Table.from_pylist(rows))


def conversion(slug: str, currency: str, total: str, orders: int, journeys: int, points: int, last: str | None) -> dict:
    return {
        "slug": slug,
        "order_currency": currency,
        "order_total": Decimal(total),
        "order_count": orders,
        "journey_count": journeys,
        "loyalty_points": points,
        "last_activity": ts(last) if last else None,
    }


def followup(
    id_: str, provider_id: str, name: str, action: str, created_at: str, slug: str = "spring-offer",
    actor: str = "automation",
) -> dict:
    return {
        "id": id_,
        "provider_id": provider_id,
        "provider_name": name,
        "experiment_slug": slug,
        "variant_key": "b",
        "action": action,
        "status_after": "paused" if action == "pause" else "active",
        "severity": "critical" if action == "pause" else "ok",
        "guardrail_failures": 3,
        "replay_failures": 0,
        "replay_total": 10,
        "notes": "Auto pause triggered by provider automation alerts worker",
        "actor": actor,
        "conversion_cursor": None,
        "conversion_link": "https://app.smplat.local/admin/reports#experiment-analytics",
        "telemetry_window_end": ts(created_at),
        "created_at": ts(created_at),
    }


def daily(slug: str, first_day: str, counts: list[int]) -> list[dict]:
    start = dt.date.fromisoformat(first_day)
    return [
        {"slug": slug, "activity_date": start + dt.timedelta(days=i), "exposure_count": c, "journey_count": c}
        for i, c in enumerate(counts)
    ]


def deliveries(warehouse: Warehouse) -> list[dict[str, Any]]:
    with warehouse.connect() as conn:
        return conn.fetch_dicts(f"select * from {warehouse.schema}.digest_deliveries order by kind, period")


def section_texts(blocks: list[dict]) -> list[str]:
    return [b["text"]["text"] for b in blocks if b["type"] == "section"]


def create_all_marts(warehouse: Warehouse) -> None:
    """Every mart of contract section 3 (the digests' ones with their columns, the rest as stand-ins)."""
    create_marts(warehouse)
    s = warehouse.schema
    with warehouse.connect() as conn:
        conn.execute(
            f"create table if not exists {s}.onboarding_pricing_experiment_segments "
            "(event_id bigint, slug varchar, loaded_at timestamptz)"
        )
        for name in ("experiment_variant_journeys", "experiment_slug_summary", "provider_guardrail_status",
                     "experiment_variant_metrics"):
            conn.execute(f"create table if not exists {s}.{name} (stand_in integer)")


def record_mart_builds(instance) -> None:
    """Materializations of every mart in the Dagster instance, as a refresh run records them."""
    import dagster as dg

    from models.marts import MART_TABLES

    for name in MART_TABLES:
        instance.report_runless_asset_event(dg.AssetMaterialization(dg.AssetKey(name)))
