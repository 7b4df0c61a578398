"""The SMTP password never crosses the network in cleartext: with SMTP_STARTTLS=false (not port 465)
and a username, the digest email is refused before any connection, in one line that says how to fix
it, unless SMTP_ALLOW_PLAINTEXT_AUTH=true. The server is a real aiosmtpd on 127.0.0.1 that records
every connection and every AUTH it receives (with the password it carried)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from email.message import EmailMessage

import pytest
from digests_helpers import RecordingHandler, create_all_marts, duckdb_warehouse, free_port

from resources.mail import MailDeliveryError, Mailer

PASSWORD = "cleartext-pa55word-7c1"
USER = "digest-bot"


@contextmanager
def plaintext_smtp() -> Iterator[tuple[int, list[int], list[tuple[str, str, str]], RecordingHandler]]:
    """An aiosmtpd server without TLS that accepts any login over plain text (as a careless relay
    would). Yields its port, the connections it accepted (one entry each), the AUTH attempts
    (mechanism, login, password) and its message handler."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    connections: list[int] = []
    auths: list[tuple[str, str, str]] = []

    def authenticate(server, session, envelope, mechanism, auth_data):
        auths.append((mechanism, auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=True)

    class Recording(Controller):
        def factory(self):  # called once per accepted connection
            connections.append(1)
            return super().factory()

    handler = RecordingHandler()
    port = free_port()
    controller = Recording(handler, hostname="127.0.0.1", port=port, authenticator=authenticate,
                           auth_require_tls=False)
    controller.start()
    connections.clear()  # the controller's own readiness probe
    try:
        yield port, connections, auths, handler
    finally:
        controller.stop()


def _message() -> EmailMessage:
    message = EmailMessage()
    message["From"], message["To"], message["Subject"] = "ops@smplat.local", "leads@smplat.local", "digest"
    message.set_content("hello")
    return message


def test_a_login_over_cleartext_is_refused_before_connecting_unless_allowed():
    with plaintext_smtp() as (port, connections, auths, handler):
        mailer = Mailer(smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False, smtp_username=USER,
                        smtp_password=PASSWORD, retry_wait_seconds=0.01, timeout_seconds=5)
        with pytest.raises(MailDeliveryError) as refused:
            mailer.send(_message(), "digest")
        assert str(refused.value) == (
            f"refusing to send the SMTP password of 'digest-bot' to 127.0.0.1:{port} in cleartext "
            "(SMTP_STARTTLS=false and port is not 465); set SMTP_STARTTLS=true (or SMTP_PORT=465), "
            "or SMTP_ALLOW_PLAINTEXT_AUTH=true for a trusted relay")
        assert (connections, auths, handler.messages) == ([], [], [])  # not one byte reached the server

        # Without a username nothing secret is sent: plain SMTP is fine.
        Mailer(smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False, timeout_seconds=5).send(_message(), "d")
        assert (len(connections), auths, len(handler.messages)) == (1, [], 1)

        # The operator's explicit choice: the recorder sees the password, so the refusal above is real.
        allowed = mailer.model_copy(update={"allow_plaintext_auth": True})
        assert allowed.send(_message(), "digest") == f"smtp 127.0.0.1:{port}"
        assert auths == [("PLAIN", USER, PASSWORD)] and len(handler.messages) == 2


def test_the_digest_command_refuses_in_one_line_and_the_setting_allows_it(tmp_path, monkeypatch, capfd):
    """`pricing-ops digest email` with the settings an operator writes: the last line says why and how
    to fix; nothing reached the server; no password in the output. SMTP_ALLOW_PLAINTEXT_AUTH=true
    lets the same command deliver."""
    from orchestration.cli import main
    from orchestration.settings import get_settings

    data = tmp_path / "data"
    create_all_marts(duckdb_warehouse(data / "warehouse.duckdb"))
    monkeypatch.chdir(tmp_path)
    for name, value in {"DATA_DIR": str(data), "DAGSTER_HOME": str(tmp_path / "dagster_home"),
                        "SMTP_HOST": "127.0.0.1", "SMTP_STARTTLS": "false", "SMTP_USERNAME": USER,
                        "SMTP_PASSWORD": PASSWORD}.items():
        monkeypatch.setenv(name, value)
    with plaintext_smtp() as (port, connections, auths, handler):
        monkeypatch.setenv("SMTP_PORT", str(port))
        get_settings.cache_clear()
        capfd.readouterr()
        code = main(["digest", "email", "--period", "2026-W48"])
        out, err = capfd.readouterr()
        assert code == 1
        last = err.strip().splitlines()[-1]
        assert last.startswith("pricing-ops digest: job weekly_digest_email failed (run "), last
        assert last.endswith(f"refusing to send the SMTP password of 'digest-bot' to 127.0.0.1:{port} in cleartext "
                             "(SMTP_STARTTLS=false and port is not 465); set SMTP_STARTTLS=true (or SMTP_PORT=465), "
                             "or SMTP_ALLOW_PLAINTEXT_AUTH=true for a trusted relay"), last
        assert (connections, auths, handler.messages) == ([], [], [])
        assert PASSWORD not in out + err

        monkeypatch.setenv("SMTP_ALLOW_PLAINTEXT_AUTH", "true")
        get_settings.cache_clear()
        try:
            assert main(["digest", "email", "--period", "2026-W48"]) == 0
        finally:
            get_settings.cache_clear()
        assert auths == [("PLAIN", USER, PASSWORD)] and len(handler.messages) == 1
