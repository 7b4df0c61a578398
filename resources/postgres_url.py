"""One reading of a PostgreSQL URL, for every client that reaches a PostgreSQL server.

The project talks to PostgreSQL through four clients that each bring their own libpq or parser:
psycopg (its bundled libpq), ADBC (another bundled libpq, whose default socket directory is /tmp,
not the system's /var/run/postgresql), dbt-postgres (a profile of host/port/user/...) and
SQLAlchemy for dagster-postgres (psycopg2). Each fills what a URL leaves out in its own way, so the
same `postgresql:///db` reached three servers, or none. `resolve_postgres_url` reads a URL once,
the way libpq does (its own parser: every URI and key=value form, percent-encoding, query
parameters), fills what is missing from `PGHOST`/`PGPORT`/`PGUSER`/`PGPASSWORD`/`PGDATABASE` and
libpq's defaults, and hands each client the same explicit host, port, user and database.
"""

from __future__ import annotations

import getpass
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlencode

# Where a local server's socket usually is: Debian/Ubuntu, Red Hat, then libpq's compiled default.
SOCKET_DIRS = ("/var/run/postgresql", "/run/postgresql", "/tmp")
_SCHEMES = ("postgresql://", "postgres://")


def is_postgres_url(url: str) -> bool:
    """A URL for PostgreSQL: `postgresql://`, `postgres://` or a SQLAlchemy `postgresql+driver://`."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    return scheme in ("postgresql", "postgres") or scheme.startswith(("postgresql+", "postgres+"))


@dataclass(frozen=True)
class PostgresTarget:
    """A resolved server and database: nothing left to a client's defaults. Holds the password:
    never log it; `describe()` is the printable form."""

    host: str  # a host name, an address, or a socket directory (starts with "/")
    port: int
    user: str
    dbname: str
    password: str | None = None
    # Other libpq parameters as given (sslmode, connect_timeout, application_name, ...).
    params: Mapping[str, str] = field(default_factory=dict)

    @property
    def is_socket(self) -> bool:
        return self.host.startswith("/")

    def libpq_uri(self) -> str:
        """A `postgresql://` URI with every part explicit, for psycopg and ADBC alike (a socket
        directory goes in `?host=`, the one place both libpqs read it)."""
        auth = quote(self.user, safe="")
        if self.password is not None:
            auth += ":" + quote(self.password, safe="")
        query = dict(self.params)
        if self.is_socket:
            query = {"host": self.host, "port": str(self.port), **query}
            netloc = f"{auth}@"
        else:
            host = f"[{self.host}]" if ":" in self.host else self.host
            netloc = f"{auth}@{host}:{self.port}"
        uri = f"postgresql://{netloc}/{quote(self.dbname, safe='')}"
        return uri + ("?" + urlencode(query, safe="/") if query else "")

    def sqlalchemy_url(self) -> str:
        """The same target for SQLAlchemy (dagster-postgres, psycopg2): it passes the query on."""
        return self.libpq_uri()

    def dbt_profile(self) -> dict[str, str]:
        """host/port/user/password/dbname for dbt-postgres (a socket directory is a valid host)."""
        return {
            "host": self.host,
            "port": str(self.port),
            "user": self.user,
            "password": self.password or "",
            "dbname": self.dbname,
            "sslmode": self.params.get("sslmode", ""),
        }

    def describe(self) -> str:
        """Where it points: user, server and database, never the password
        (`postgresql://app@db:5432/shop`)."""
        user = quote(self.user, safe="")
        if self.is_socket:
            return f"postgresql://{user}@/{quote(self.dbname, safe='')}?host={self.host}&port={self.port}"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"postgresql://{user}@{host}:{self.port}/{quote(self.dbname, safe='')}"


def resolve_postgres_url(url: str, environ: Mapping[str, str] | None = None) -> PostgresTarget:
    """Read a PostgreSQL URL (or libpq key=value string) as libpq would, with the environment's
    `PG*` variables and libpq's defaults for what it leaves out (see the module docstring).

    Raises ValueError with a one-line reason when libpq cannot read it (never echoing the URL: it
    may hold a password)."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    env = os.environ if environ is None else environ
    text = url.strip()
    if "://" in text:
        scheme, rest = text.split("://", 1)
        if not is_postgres_url(text):
            raise ValueError(f"not a PostgreSQL URL (scheme {scheme!r}); use postgresql://...")
        text = "postgresql://" + rest  # the SQLAlchemy driver suffix (+psycopg) is not libpq's
    try:
        parts = {k: str(v) for k, v in conninfo_to_dict(text).items() if v is not None and v != ""}
    except psycopg.Error as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ValueError(f"libpq cannot read this PostgreSQL URL: {first}") from None

    host = parts.pop("host", None) or env.get("PGHOST") or _default_host()
    if "," in host:
        raise ValueError("a PostgreSQL URL with several hosts is not supported; name one host")
    port_text = parts.pop("port", None) or env.get("PGPORT") or "5432"
    try:
        port = int(port_text)
    except ValueError:
        raise ValueError(f"PostgreSQL port {port_text!r} is not a number") from None
    user = parts.pop("user", None) or env.get("PGUSER") or getpass.getuser()
    password = parts.pop("password", None) or env.get("PGPASSWORD") or None
    dbname = parts.pop("dbname", None) or env.get("PGDATABASE") or user
    return PostgresTarget(host=host, port=port, user=user, dbname=dbname, password=password, params=parts)


def _default_host() -> str:
    """libpq's default: the local socket. The first usual directory that has one, else localhost
    (TCP), so every client, whatever its libpq was compiled with, looks in the same place."""
    for directory in SOCKET_DIRS:
        if any(Path(directory).glob(".s.PGSQL.*")):
            return directory
    return "localhost"
