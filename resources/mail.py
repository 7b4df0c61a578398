"""Email out: SMTP (STARTTLS and login when configured) or, with no SMTP host, an `.eml` file in the
outbox so the embedded default shows the digest without any account (contract section 6).

Transient failures (connection errors, time-outs, 4xx replies) are retried with exponential
back-off; permanent ones (5xx, TLS or login refused) fail at once. The password never appears in
a log line or an error message, and never crosses the network in cleartext: a login over a
connection that is not encrypted (SMTP_STARTTLS=false, not port 465) is refused before connecting,
unless SMTP_ALLOW_PLAINTEXT_AUTH=true says the relay is trusted (on this host, say).
"""

from __future__ import annotations

import logging
import os
import smtplib
import ssl
import tempfile
from email.message import EmailMessage
from pathlib import Path

from dagster import ConfigurableResource
from pydantic import Field
from tenacity import Retrying, before_sleep_log, retry_if_exception, stop_after_attempt, wait_exponential

log = logging.getLogger(__name__)


class MailDeliveryError(RuntimeError):
    """A message could not be delivered; the text says where and what the server answered."""


def is_transient(exc: BaseException) -> bool:
    """Worth another try: the connection dropped or timed out, or the server answered 4xx."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        return bool(codes) and all(400 <= code < 500 for code in codes)
    if isinstance(exc, smtplib.SMTPResponseException):
        return 400 <= exc.smtp_code < 500
    if isinstance(exc, smtplib.SMTPServerDisconnected):
        return True
    if isinstance(exc, (ssl.SSLError, smtplib.SMTPNotSupportedError)):
        return False
    return isinstance(exc, (ConnectionError, TimeoutError, OSError))


class Mailer(ConfigurableResource):
    """Sends the weekly digest email through SMTP (SMTP_HOST, with STARTTLS and a login when set), or
    writes it as an .eml file into the outbox folder when SMTP_HOST is unset."""

    smtp_host: str | None = Field(default=None, description="SMTP_HOST; unset: write .eml files to the outbox")
    smtp_port: int = Field(default=587, description="SMTP_PORT (465 means implicit TLS)")
    smtp_username: str | None = Field(default=None, description="SMTP_USERNAME; login only when set")
    smtp_password: str | None = Field(default=None, description="SMTP_PASSWORD (secret: set via EnvVar)")
    smtp_starttls: bool = Field(default=True, description="SMTP_STARTTLS: upgrade the connection before login")
    allow_plaintext_auth: bool = Field(
        default=False,
        description="SMTP_ALLOW_PLAINTEXT_AUTH: log in even when the connection is not encrypted (a trusted relay)",
    )
    tls_ca_file: str | None = Field(
        default=None, description="CA bundle to trust for the SMTP server's certificate; default: system CAs"
    )
    outbox_dir: str = Field(default=".data/outbox", description="OUTBOX_DIR")
    timeout_seconds: float = Field(default=30.0, description="per SMTP connection")
    max_attempts: int = Field(default=5, ge=1, description="attempts on transient failures")
    retry_wait_seconds: float = Field(default=2.0, ge=0, description="first back-off; doubles, at most 60 s")

    @property
    def mode(self) -> str:
        return "smtp" if self.smtp_host else "outbox"

    @property
    def encrypted(self) -> bool:
        """Whether the connection is encrypted before any login: implicit TLS (465) or STARTTLS."""
        return self.smtp_port == 465 or self.smtp_starttls

    def cleartext_login_problem(self) -> str | None:
        """Why this configuration must not log in (the password would cross the network in
        cleartext), or None."""
        if not self.smtp_host or not self.smtp_username or self.encrypted or self.allow_plaintext_auth:
            return None
        return (
            f"refusing to send the SMTP password of {self.smtp_username!r} to {self.smtp_host}:{self.smtp_port} "
            "in cleartext (SMTP_STARTTLS=false and port is not 465); set SMTP_STARTTLS=true (or SMTP_PORT=465), "
            "or SMTP_ALLOW_PLAINTEXT_AUTH=true for a trusted relay"
        )

    def describe(self) -> str:
        """Where mail goes, without secrets."""
        return f"smtp {self.smtp_host}:{self.smtp_port}" if self.smtp_host else f"outbox {Path(self.outbox_dir).resolve()}"

    def send(self, message: EmailMessage, outbox_name: str) -> str:
        """Deliver `message`; returns where it went (`smtp host:port` or the `.eml` path).

        `outbox_name` names the outbox file (`<outbox_name>.eml`); writing the same name again
        replaces the file, so a repeated send leaves one message there too.
        """
        if not self.smtp_host:
            return self._write_outbox(message, outbox_name)
        problem = self.cleartext_login_problem()
        if problem:
            # Before connecting: not even a first attempt carries the password.
            raise MailDeliveryError(problem)
        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            stop=stop_after_attempt(self.max_attempts),
            wait=wait_exponential(multiplier=self.retry_wait_seconds, max=60),
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    refused = self._send_smtp(message)
        except smtplib.SMTPAuthenticationError as exc:
            raise MailDeliveryError(
                f"SMTP server {self.smtp_host}:{self.smtp_port} refused the login of {self.smtp_username!r} "
                f"({exc.smtp_code}); check SMTP_USERNAME and SMTP_PASSWORD"
            ) from None
        except ssl.SSLError as exc:
            raise MailDeliveryError(
                f"TLS with SMTP server {self.smtp_host}:{self.smtp_port} failed ({exc.reason or exc}); check "
                "the server certificate, or SMTP_STARTTLS/SMTP_PORT"
            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            what = "gave up after transient failures" if is_transient(exc) else "failed"
            raise MailDeliveryError(
                f"sending mail through {self.smtp_host}:{self.smtp_port} {what} "
                f"({type(exc).__name__}: {_smtp_reason(exc)}); check SMTP_HOST/SMTP_PORT and the server's log"
            ) from None
        if refused:
            log.warning("SMTP server refused some recipients: %s", ", ".join(sorted(refused)))
        return f"smtp {self.smtp_host}:{self.smtp_port}"

    def _send_smtp(self, message: EmailMessage) -> dict:
        assert self.smtp_host is not None
        context = ssl.create_default_context(cafile=self.tls_ca_file)
        if self.smtp_port == 465:
            client: smtplib.SMTP = smtplib.SMTP_SSL(
                self.smtp_host, self.smtp_port, timeout=self.timeout_seconds, context=context
            )
        else:
            client = smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout_seconds)
        with client:
            client.ehlo()
            if self.smtp_starttls and self.smtp_port != 465:
                client.starttls(context=context)
                client.ehlo()
            if self.smtp_username:
                if not (self.encrypted or self.allow_plaintext_auth):  # send() refuses this first
                    raise MailDeliveryError(self.cleartext_login_problem() or "cleartext SMTP login refused")
                client.login(self.smtp_username, self.smtp_password or "")
            return client.send_message(message)

    def _write_outbox(self, message: EmailMessage, name: str) -> str:
        folder = Path(self.outbox_dir).expanduser().resolve()
        folder.mkdir(parents=True, exist_ok=True)
        target = folder / f"{name}.eml"
        # Write then rename, so a reader never sees half a message.
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(message.as_bytes())
        os.replace(tmp, target)
        return str(target)


def _smtp_reason(exc: BaseException) -> str:
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        return "; ".join(f"{addr}: {code}" for addr, (code, _) in exc.recipients.items())
    if isinstance(exc, smtplib.SMTPResponseException):
        detail = exc.smtp_error.decode(errors="replace") if isinstance(exc.smtp_error, bytes) else str(exc.smtp_error)
        return f"{exc.smtp_code} {detail}"
    return str(exc) or type(exc).__name__
