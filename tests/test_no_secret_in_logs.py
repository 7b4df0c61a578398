"""No secret setting in any log (contract section 7): after a failing Slack webhook (slack-sdk logs
the webhook URL at INFO when it retries), a failing app API with its key, a refused SMTP login and
a database URL with a password, neither stdout, stderr, the Dagster event log nor the compute logs
hold any of them. The processes are the real CLI; the servers are real, on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest
from digests_helpers import RecordingHandler, create_all_marts, duckdb_warehouse, free_port
from guardrails_support import RecordingServer, Reply, unused_port_url
from handmade_source import create_source, insert_rows

pytestmark = pytest.mark.postgres

PRICING_OPS = Path(sys.executable).parent / "pricing-ops"
DB_PASSWORD = "Db-pa55/w0rd@x"
WEBHOOK_TOKEN = "T0SECRET/B0SECRET/hookToken123456"
API_KEY = "checkout-api-key-7f3a9c"
SMTP_PASSWORD = "smtp-pa55word-91b"
T = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)


def _source_with_a_critical_provider(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        create_source("postgres", conn)
        insert_rows("postgres", conn, "fulfillment_providers",
                    [{"id": "p1", "name": "Provider\r\nFORGED LINE", "platform": "web", "created_at": T}])
        insert_rows("postgres", conn, "provider_guardrail_telemetry", [{
            "id": 1, "provider_id": "p1", "experiment_slug": "spring\nslug", "variant_key": "b",
            "window_start": T - timedelta(minutes=5), "window_end": T, "guardrail_checks": 20,
            "guardrail_failures": 9, "replay_total": 10, "replay_failures": 0, "recorded_at": T}])


def _smtp_refusing_login(port: int):
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    def authenticate(server, session, envelope, mechanism, auth_data):
        return AuthResult(success=False, handled=False)

    return Controller(RecordingHandler(), hostname="127.0.0.1", port=port, authenticator=authenticate,
                      auth_require_tls=False)


def test_no_secret_reaches_stdout_stderr_the_event_log_or_the_compute_logs(pg_url, tmp_path, dbt_manifest):
    _source_with_a_critical_provider(pg_url)
    source_url = pg_url.replace("postgres@", f"postgres:{quote(DB_PASSWORD, safe='')}@")  # trust auth: any password
    data = tmp_path / "data"
    smtp_port = free_port()
    smtp = _smtp_refusing_login(smtp_port)
    smtp.start()
    try:
        with RecordingServer() as app:
            app.script("/api/v1/reporting/guardrails/followups", *[Reply(500, {"error": "down"})] * 10)
            env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "PRICING_OPS_"))}
            env.update({
                "DATA_DIR": str(data),
                "ONBOARDING_EXPORT_DATABASE_URL": source_url,
                "SLACK_WEBHOOK_URL": f"{unused_port_url()}/services/{WEBHOOK_TOKEN}",
                "APP_API_BASE_URL": app.url,
                "CHECKOUT_API_KEY": API_KEY,
                "SMTP_HOST": "127.0.0.1", "SMTP_PORT": str(smtp_port), "SMTP_STARTTLS": "false",
                "SMTP_USERNAME": "digest-bot", "SMTP_PASSWORD": SMTP_PASSWORD,
                # A login over plain text is refused unless allowed (tests/test_smtp_cleartext.py);
                # allowed here, so the server's refusal of the login is what gets reported.
                "SMTP_ALLOW_PLAINTEXT_AUTH": "true",
            })
            def run(*args: str) -> subprocess.CompletedProcess:
                return subprocess.run([str(PRICING_OPS), *args], cwd=tmp_path, env=env, capture_output=True,
                                      text=True, timeout=600, check=False)

            runs = [run("guardrails", "evaluate")]
            # The digest's marts beside what the guardrail run built (those exist and are kept).
            create_all_marts(duckdb_warehouse(data / "warehouse.duckdb"))
            runs.append(run("digest", "email"))
            assert app.requests and app.requests[0].headers.get("x-api-key") == API_KEY  # the key was sent
    finally:
        smtp.stop()

    evaluate, email = runs
    assert evaluate.returncode == 1 and "deliveries failed" in evaluate.stderr.strip().splitlines()[-1]
    assert "A retry handler found" in evaluate.stderr  # slack-sdk's line is there, redacted
    assert email.returncode == 1 and "refused the login of 'digest-bot'" in email.stderr.strip().splitlines()[-1]
    # Control characters from data never start a line of their own.
    lines = evaluate.stderr.splitlines()
    assert [lines[i - 1][-300:] for i, line in enumerate(lines) if line.startswith("FORGED LINE")] == []

    home = data / "dagster_home"
    stored = [p for p in home.rglob("*") if p.is_file()]
    assert any(p.suffix in (".err", ".out", ".complete") or "compute_logs" in str(p) for p in stored), stored
    secrets = [DB_PASSWORD, quote(DB_PASSWORD, safe=""), WEBHOOK_TOKEN, API_KEY, SMTP_PASSWORD]
    texts = {"stdout": "".join(r.stdout for r in runs), "stderr": "".join(r.stderr for r in runs)}
    for path in stored:
        texts[str(path.relative_to(home))] = path.read_bytes().decode("utf-8", "replace")
    leaks = [(where, secret) for where, text in texts.items() for secret in secrets if secret in text]
    assert leaks == []
