"""The weekly digest email through a real SMTP server (aiosmtpd on 127.0.0.1, STARTTLS + AUTH),
parsed back with Python's `email` package; a server refusing with 451 once; the outbox fallback."""

from __future__ import annotations

import re
from email import message_from_bytes, policy

import pytest
from digests_helpers import (
    RecordingHandler,
    conversion,
    create_marts,
    daily,
    deliveries,
    duckdb_warehouse,
    followup,
    insert,
    smtp_server,
    ts,
)

from assets.digests import DigestOptions, deliver_digest
from resources.mail import MailDeliveryError, Mailer
from resources.warehouse import Warehouse

NOW = ts("2026-11-24T09:00:00Z")  # Tuesday of ISO week 2026-W48
OPTIONS = DigestOptions(email_from="pricing-ops@smplat.local", email_to="concierge-leads@smplat.local")
PASSWORD = "s3cret-smtp-password"


def weekly_warehouse(tmp_path) -> Warehouse:
    warehouse = duckdb_warehouse(tmp_path / "wh.duckdb")
    create_marts(warehouse)
    insert(warehouse, "experiment_conversion_snapshot", [
        conversion("spring-offer", "USD", "150.50", 2, 4, 15, "2026-11-18T03:00:00Z"),
        conversion("spring-offer", "EUR", "20.00", 1, 1, 2, "2026-11-15T12:00:00Z"),
        conversion("<script>alert(1)</script>", "USD", "5.00", 1, 1, 0, "2026-11-20T00:00:00Z"),
        conversion("x\r\nBcc: victim@example.com", "GBP", "99.99", 3, 3, 30, "2026-11-21T00:00:00Z"),
    ])
    insert(warehouse, "experiment_daily_assignments", daily("spring-offer", "2026-11-15", [2, 3, 1, 3, 0, 0, 4, 1, 0, 5]))
    insert(warehouse, "guardrail_followups", [
        followup("f1", "p1", "Alpha <Fulfilment>", "pause", "2026-11-23T10:00:00Z"),
        followup("f2", "p1", "Alpha <Fulfilment>", "resume", "2026-11-23T18:00:00Z"),
    ])
    return warehouse


def smtp_mailer(port: int, **overrides) -> Mailer:
    values = {"smtp_host": "127.0.0.1", "smtp_port": port, "smtp_starttls": False, "retry_wait_seconds": 0.05, "timeout_seconds": 5}
    values.update(overrides)
    return Mailer(**values)


def test_email_over_starttls_with_login_is_multipart_escaped_and_charted(tmp_path):
    warehouse = weekly_warehouse(tmp_path)
    handler = RecordingHandler()
    with smtp_server(handler, tls_folder=tmp_path, credentials=("digest-bot", PASSWORD)) as (port, logins):
        mailer = smtp_mailer(
            port, smtp_starttls=True, smtp_username="digest-bot", smtp_password=PASSWORD,
            tls_ca_file=str(tmp_path / "smtp-cert.pem"),
        )
        outcome = deliver_digest("email", "2026-W48", warehouse=warehouse, options=OPTIONS, mailer=mailer, now=NOW)

    assert (outcome.status, outcome.ref, outcome.slugs, outcome.actions) == ("sent", f"smtp 127.0.0.1:{port}", 3, 2)
    assert logins == ["digest-bot"]
    assert handler.envelopes == [("pricing-ops@smplat.local", ["concierge-leads@smplat.local"])]
    [message] = handler.messages

    # Header injection: the CR/LF in a slug stays inside the one-line subject; no Bcc appears.
    assert message["Subject"] == (
        "Weekly pricing digest 2026-W48 · top slug x Bcc: victim@example.com · 2 automatic actions"
    )
    assert message["Bcc"] is None
    assert (message["From"], message["To"]) == ("pricing-ops@smplat.local", "concierge-leads@smplat.local")
    assert message["Message-ID"] == "<weekly-digest.2026-W48@smplat.local>"
    assert message["Date"] == "Tue, 24 Nov 2026 09:00:00 +0000"

    assert message.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
    # Lines travel as CRLF on the wire.
    text = message.get_body(("plain",)).get_content().replace("\r\n", "\n")
    html = message.get_body(("html",)).get_content().replace("\r\n", "\n")

    assert (
        "spring-offer\n"
        "  USD 150.50 · 2 orders / 4 journeys · 15 loyalty pts · last activity 2026-11-18T03:00:00Z\n"
        "  EUR 20.00 · 1 order / 1 journey · 2 loyalty pts · last activity 2026-11-15T12:00:00Z\n"
        "  ▄▅▂▅▁▁▇▂▁█  10-day assignments, last 3: 1, 0, 5 (2026-11-15 to 2026-11-24)\n"
    ) in text
    assert (
        "AUTOMATIC PAUSES AND RESUMES SINCE AUTOMATION BEGAN (FIRST DIGEST)\n"
        "Alpha <Fulfilment> (p1)\n"
        "  paused spring-offer at 2026-11-23T10:00:00Z\n"
        "  resumed spring-offer at 2026-11-23T18:00:00Z\n"
        "  https://app.smplat.local/admin/fulfillment/providers/p1?tab=automation\n"
    ) in text
    assert text.endswith("Live conversion snapshot: https://app.smplat.local/admin/reports#experiment-analytics\n")

    # HTML: the slug and the provider name show as text, never as markup.
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;</h3>" in html
    assert "<strong>Alpha &lt;Fulfilment&gt;</strong>" in html
    assert '<a href="https://app.smplat.local/admin/fulfillment/providers/p1?tab=automation">Open dashboard</a>' in html
    assert (
        'Live conversion snapshot: <a href="https://app.smplat.local/admin/reports#experiment-analytics">'
        "Open conversions</a>"
    ) in html
    # One table per slug with its currencies, revenue exact.
    assert html.count('<table class="conversions"') == 3
    assert ">150.50</td>" in html and ">99.99</td>" in html
    # The chart: a table-cell bar per day for each slug, the tallest 60 px, labelled by date.
    assert html.count('data-chart="daily-assignments"') == 3
    spring_chart = html[html.index('aria-label="Daily assignments of spring-offer'):]
    bars = re.findall(r'<td height="(\d+)" bgcolor="(#[0-9a-f]{6})"[^>]*title="([\d-]+): (\d+)"', spring_chart)[:10]
    assert [(day, int(value)) for _, _, day, value in bars] == [
        ("2026-11-15", 2), ("2026-11-16", 3), ("2026-11-17", 1), ("2026-11-18", 3), ("2026-11-19", 0),
        ("2026-11-20", 0), ("2026-11-21", 4), ("2026-11-22", 1), ("2026-11-23", 0), ("2026-11-24", 5),
    ]
    assert [int(h) for h, _, _, _ in bars] == [24, 36, 12, 36, 1, 1, 48, 12, 1, 60]
    assert {color for _, color, _, value in bars if value == "0"} == {"#d1d5db"}

    assert deliveries(warehouse)[0]["status"] == "sent"


def test_a_server_refusing_once_then_accepting_delivers_one_message(tmp_path):
    warehouse = weekly_warehouse(tmp_path)
    handler = RecordingHandler(refuse=1)
    with smtp_server(handler) as (port, _):
        outcome = deliver_digest(
            "email", "2026-W48", warehouse=warehouse, options=OPTIONS, mailer=smtp_mailer(port), now=NOW
        )
    assert (handler.refused, len(handler.messages)) == (1, 1)
    assert (outcome.status, outcome.attempts) == ("sent", 1)


def test_a_send_that_keeps_failing_is_recorded_and_a_rerun_delivers_once(tmp_path):
    warehouse = weekly_warehouse(tmp_path)
    handler = RecordingHandler(refuse=2)
    with smtp_server(handler) as (port, _):
        mailer = smtp_mailer(port, max_attempts=2)
        with pytest.raises(MailDeliveryError, match=r"gave up after transient failures \(SMTPDataError: 451 4\.3\.0"):
            deliver_digest("email", "2026-W48", warehouse=warehouse, options=OPTIONS, mailer=mailer, now=NOW)
        row = deliveries(warehouse)[0]
        assert (row["status"], row["attempts"], row["sent_at"]) == ("failed", 1, None)
        assert "451 4.3.0 Mail server temporarily unavailable" in row["last_error"]

        outcomes = [
            deliver_digest("email", "2026-W48", warehouse=warehouse, options=OPTIONS, mailer=mailer, now=NOW).status
            for _ in range(2)
        ]
    assert outcomes == ["sent", "already_sent"]
    assert (handler.refused, len(handler.messages)) == (2, 1)
    row = deliveries(warehouse)[0]
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 2, None)


def test_a_refused_login_fails_at_once_without_the_password(tmp_path):
    handler = RecordingHandler()
    with smtp_server(handler, tls_folder=tmp_path, credentials=("digest-bot", "the-right-one")) as (port, _):
        mailer = smtp_mailer(
            port, smtp_starttls=True, smtp_username="digest-bot", smtp_password=PASSWORD,
            tls_ca_file=str(tmp_path / "smtp-cert.pem"), retry_wait_seconds=30,  # a retry would time the test out
        )
        with pytest.raises(MailDeliveryError) as error:
            deliver_digest("email", "2026-W48", warehouse=weekly_warehouse(tmp_path), options=OPTIONS, mailer=mailer,
                           now=NOW)
    assert str(error.value) == (
        f"SMTP server 127.0.0.1:{port} refused the login of 'digest-bot' (535); check SMTP_USERNAME and SMTP_PASSWORD"
    )
    assert handler.messages == []


def test_without_smtp_the_email_lands_in_the_outbox_once(tmp_path):
    warehouse = weekly_warehouse(tmp_path)
    mailer = Mailer(outbox_dir=str(tmp_path / "outbox"))
    first = deliver_digest("email", "2026-W48", warehouse=warehouse, options=OPTIONS, mailer=mailer, now=NOW)
    second = deliver_digest("email", "2026-W48", warehouse=warehouse, options=OPTIONS, mailer=mailer, now=NOW)
    eml = tmp_path / "outbox" / "weekly-digest-2026-W48.eml"
    assert (first.ref, second.status) == (str(eml), "already_sent")
    assert [p.name for p in (tmp_path / "outbox").iterdir()] == ["weekly-digest-2026-W48.eml"]
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert message["Subject"].startswith("Weekly pricing digest 2026-W48")
    assert [p.get_content_type() for p in message.iter_parts()] == ["text/plain", "text/html"]
