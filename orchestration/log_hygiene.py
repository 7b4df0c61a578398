"""One place that keeps secrets and forged lines out of every log line of the process.

Libraries log what they hold: slack-sdk logs the incoming-webhook URL at INFO when it retries
(`A retry handler found: ... for POST https://hooks.slack.com/services/...`), drivers put URLs in
their errors. Rather than guard each call site, the process's log record factory rewrites every
record as it is made, whichever logger makes it: the root logger, the libraries', Dagster's
`context.log` and its console logger (so the Dagster event log, stderr and the compute logs the UI
shows get the same text). Each secret setting's value (and the password and token parts of a URL)
becomes `***`, except a database URL: only its password is secret, so it reads as the URL without
its password (`postgresql://user@host:5432/db`), which says which database failed. HTTP
credentials that client libraries log at DEBUG (botocore's `Authorization: AWS4-HMAC-SHA256
Credential=..., Signature=...` header and signing steps, urllib3's headers) are blanked too.
Control characters from data (a slug with CR/LF forging a second line) are escaped.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote, urlsplit, urlunsplit

from orchestration.settings import Settings
from resources.postgres_url import is_postgres_url

REDACTED = "***"
# A secret shorter than this would blank out ordinary words; none of the real ones is.
MIN_SECRET_LENGTH = 4
# Secret settings outside `Settings` (read by boto3 and the like from the environment).
SECRET_ENV_VARS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "PGPASSWORD")
# C0 controls but tab and newline, and DEL: never meaningful in a log line.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
# Where Dagster's failure events start their stack trace (kept in the UI's structured error).
_STACK_MARKERS = ("\nStack Trace:", "\nTraceback (most recent call last):")
# An error report's lines are its shape, not data: such a message keeps its newlines.
_ERROR_REPORT = (*_STACK_MARKERS, "Error occurred while executing", "\nThe above exception")

# Credentials an HTTP client logs (botocore at DEBUG logs every request's headers and its SigV4
# signing steps): the header's value, and each `Credential=`/`Signature=` pair, in any quoting.
_HTTP_CREDENTIALS = (
    (re.compile(r"(?i)(['\"]?\b(?:proxy-)?authorization['\"]?\s*[:=]\s*)(b?'[^']*'|b?\"[^\"]*\"|[^\r\n,}]+)"),
     r"\1'***'"),
    (re.compile(r"(?i)(['\"]?\bx-amz-security-token['\"]?\s*[:=]\s*)(b?'[^']*'|b?\"[^\"]*\"|[^\s,}]+)"),
     r"\1'***'"),
    (re.compile(r"(?i)\b((?:x-amz-)?(?:credential|signature|security-token))=[^\s,&'\"]*"), r"<\1 redacted>"),
    # botocore.auth: "Signature:\n<64 hex>" (its newline already escaped to a backslash-n here).
    (re.compile(r"(?i)\b(signature:(?:\\n|\s)*)[0-9a-f]{64}\b"), r"\1***"),
)
_BLANKED_PASSWORD = re.compile(r"(\w://[^:/@\s]*):\*\*\*@")
# URL schemes whose only secret part is the password: such a URL is shown without it.
_DATABASE_SCHEMES = ("postgresql", "postgres", "duckdb", "sc")

_state: dict[str, object] = {"secrets": (), "urls": (), "trim": False, "base": None}


def _secret_settings(settings: Settings) -> list[str]:
    values: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name)
        if value is not None and hasattr(value, "get_secret_value"):
            values.append(value.get_secret_value())
    return values + [os.environ[name] for name in SECRET_ENV_VARS if os.environ.get(name)]


def is_database_url(value: str) -> bool:
    """A URL whose one secret is its password (PostgreSQL, DuckDB, Spark Connect)."""
    scheme = value.split("://", 1)[0].lower() if "://" in value else ""
    return scheme in _DATABASE_SCHEMES or is_postgres_url(value)


def without_password(url: str) -> str:
    """`url` with the password of its user part and any `password=` parameter removed
    (`postgresql://app:pw@db/shop` -> `postgresql://app@db/shop`); the rest as written."""
    parts = urlsplit(url)
    netloc, query = parts.netloc, parts.query
    if "@" in netloc and ":" in netloc.rsplit("@", 1)[0]:
        userinfo, host = netloc.rsplit("@", 1)
        netloc = f"{userinfo.split(':', 1)[0]}@{host}"
    pairs = query.split("&") if query else []
    kept = [pair for pair in pairs if pair.split("=", 1)[0].lower() != "password"]
    if netloc == parts.netloc and kept == pairs:
        return url
    rebuilt = urlunsplit((parts.scheme, netloc, parts.path, "&".join(kept), parts.fragment))
    # urlunsplit drops the `//` of an empty host (`postgresql:///db`): put it back.
    return rebuilt if netloc else rebuilt.replace(f"{parts.scheme}:", f"{parts.scheme}://", 1)


def secret_values(settings: Settings) -> list[str]:
    """Every string that must not appear in a log: secret settings, their URL passwords and
    tokens, percent-encoded and decoded. A database URL itself is not among them (see
    `url_replacements`), only its password."""
    return _expand(_secret_settings(settings))


def url_replacements(settings: Settings) -> list[tuple[str, str]]:
    """(database URL as set, the same URL without its password), longest first: what a log line
    shows instead of `***`, so it still names the database."""
    pairs: set[tuple[str, str]] = set()
    for value in _secret_settings(settings):
        if value and is_database_url(value):
            for form in {value, unquote(value)}:
                if without_password(form) != form:
                    pairs.add((form, without_password(value)))
    return sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)


def _expand(values: Iterable[str]) -> list[str]:
    out: set[str] = set()
    for value in values:
        if not value:
            continue
        if not is_database_url(value):
            out.update({value, unquote(value), quote(value, safe="")})
        if "://" in value:
            parts = urlsplit(value)
            if parts.password:
                out.update({parts.password, unquote(parts.password)})
            # A webhook URL's path is its token (hooks.slack.com/services/<team>/<bot>/<secret>).
            if parts.path.strip("/") and not parts.password and parts.scheme.startswith("http"):
                out.add(parts.path)
            if parts.query:
                for pair in parts.query.split("&"):
                    key, _, val = pair.partition("=")
                    if key.lower() in ("password", "token", "key", "secret", "sig", "signature") and val:
                        out.update({val, unquote(val)})
    # Longest first, so a URL is replaced whole before its parts.
    return sorted((v for v in out if len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] | None = None) -> str:
    """`text` with every secret replaced by `***` (a database URL by its form without password),
    HTTP credentials blanked and control characters (but newline and tab) escaped."""
    for value, shown in _state["urls"]:  # type: ignore[union-attr]
        if value in text:
            text = text.replace(value, shown)
    for value in secrets if secrets is not None else _state["secrets"]:  # type: ignore[union-attr]
        if value in text:
            text = text.replace(value, REDACTED)
    # A URL a driver rebuilt (host and port made explicit) keeps its user, loses its blanked password.
    text = _BLANKED_PASSWORD.sub(r"\1@", text)
    for pattern, replacement in _HTTP_CREDENTIALS:
        text = pattern.sub(replacement, text)
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def one_line(text: str) -> str:
    """`text` (data) as one redacted line: CR and LF escaped."""
    return redact(text.replace("\r", "\\r").replace("\n", "\\n"))


def _escape_arg(value: object) -> object:
    """A %-style argument is data: its newlines are escaped too (a value cannot start a line)."""
    if isinstance(value, str):
        return value.replace("\r", "\\r").replace("\n", "\\n")
    return value


def install_log_hygiene(settings: Settings, trim_tracebacks: bool | None = None) -> None:
    """Install (or refresh the secrets of) the process-wide record factory; idempotent.

    `trim_tracebacks` (the CLI without `-v`): Dagster's failure lines end before their stack trace
    (the Dagster UI keeps the structured error with its stack)."""
    _state["secrets"] = tuple(secret_values(settings))
    _state["urls"] = tuple(url_replacements(settings))
    if trim_tracebacks is not None:
        _state["trim"] = trim_tracebacks
    if _state["base"] is not None:
        return
    base = logging.getLogRecordFactory()
    _state["base"] = base

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = base(*args, **kwargs)
        try:
            if record.args:
                # A single mapping argument (botocore logs its headers with `%r`) is kept a mapping.
                if isinstance(record.args, Mapping):
                    record.args = {k: _escape_arg(v) for k, v in record.args.items()}
                else:
                    record.args = tuple(_escape_arg(v) for v in record.args)
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a record that cannot format is logged as the logging module would
            return record
        if "\n" in message or "\r" in message:
            if not any(marker in message for marker in _ERROR_REPORT):
                # One record, one line: a newline from data (a slug, a provider name) is escaped.
                message = message.replace("\r", "\\r").replace("\n", "\\n")
            elif _state["trim"]:
                for marker in _STACK_MARKERS:
                    if marker in message:
                        message = message.split(marker, 1)[0] + " (traceback: run with -v)"
        record.msg, record.args = redact(message), ()
        if record.exc_info:
            # Formatted now, redacted; the handler's Formatter uses exc_text as it is.
            if _state["trim"]:
                error = record.exc_info[1]
                record.exc_text = redact(f"{type(error).__name__}: {error} (traceback: run with -v)")
            else:
                record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
