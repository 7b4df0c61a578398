"""Apache Superset for `pricing-ops bi` (contract section 11): its environment, its provisioning
per data folder and its server.

Superset lives in its own uv project (`bi/superset/`: its own SQLAlchemy 1.4, ~150 packages), run
by its own interpreter; nothing of it is imported here. Per data folder, `DATA_DIR/bi/` holds the
metadata DB (`superset.db`), the key that encrypts the warehouse password in it (`secret-key`), a
generated admin password when none is set (`admin-password`), Superset's log (`superset.log`) and
a stamp of what was provisioned (`provisioned`): a start whose bundle, warehouse, admin and
Superset are those of the stamp goes straight to serving. Every secret file is the owner's only
(mode 0600); no secret is printed, logged or passed on a command line.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SUPERSET_PROJECT = Path(__file__).resolve().parent.parent / "bi" / "superset"
BUNDLE_DIR = SUPERSET_PROJECT / "dashboard"
DASHBOARD_SLUG = "pricing-experiments"
# The migrated, initialised metadata DB every data folder starts from (per Superset lock file).
BASE_CACHE_DIR = SUPERSET_PROJECT / ".cache"
START_TIMEOUT_S = 300.0

Progress = Callable[[str], None]


class SupersetError(RuntimeError):
    """Superset could not be installed, provisioned or started: one line, with where to look."""


@dataclass(frozen=True)
class BiHome:
    """`DATA_DIR/bi/`: everything Superset keeps for one data folder."""

    root: Path

    @property
    def metadata_db(self) -> Path:
        return self.root / "superset.db"

    @property
    def secret_key(self) -> Path:
        return self.root / "secret-key"

    @property
    def admin_password(self) -> Path:
        return self.root / "admin-password"

    @property
    def reader_password(self) -> Path:
        return self.root / "bi-reader-password"

    @property
    def stamp(self) -> Path:
        return self.root / "provisioned"

    @property
    def log(self) -> Path:
        return self.root / "superset.log"


def secret_file(path: Path, nbytes: int = 24) -> tuple[str, bool]:
    """The secret kept in `path`, made now (mode 0600, created exclusively) when absent; returns
    (secret, created)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip(), False
    value = secrets.token_urlsafe(nbytes)
    with os.fdopen(fd, "w") as f:
        f.write(value + "\n")
    return value, True


def ensure_environment(progress: Progress) -> Path:
    """Superset's interpreter, its environment installed or brought in line with `bi/superset/uv.lock`
    (`uv sync --frozen`: a second of checking once installed)."""
    python = SUPERSET_PROJECT / ".venv" / "bin" / "python"
    uv = os.environ.get("UV") or shutil.which("uv")
    if uv is None:
        raise SupersetError("uv not found: install it (python3 -m pip install uv) and run `uv run pricing-ops bi`")
    if not (SUPERSET_PROJECT / ".venv" / "bin" / "gunicorn").exists():
        progress(f"installing Superset's own environment into {SUPERSET_PROJECT / '.venv'} (first start only)")
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "PYTHONPATH")}
    done = subprocess.run(
        [uv, "sync", "--frozen", "--quiet", "--project", str(SUPERSET_PROJECT)],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False,
    )
    if done.returncode != 0:
        last = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise SupersetError(f"installing Superset's environment ({SUPERSET_PROJECT}) failed: {last}")
    return python


def _digest(*paths: Path) -> str:
    digest = hashlib.sha256()
    for root in paths:
        for path in sorted(root.rglob("*")) if root.is_dir() else [root]:
            if path.is_file():
                digest.update(path.relative_to(SUPERSET_PROJECT).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def superset_env(home: BiHome) -> dict[str, str]:
    """The environment of every Superset process: its config, this data folder, UTC."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env.update({
        "SUPERSET_CONFIG_PATH": str(SUPERSET_PROJECT / "superset_config.py"),
        "PRICING_OPS_BI_HOME": str(home.root),
        # "today" in the charts' time ranges is a UTC date, like the marts' days.
        "TZ": "UTC",
        "SCARF_ANALYTICS": "false",
    })
    return env


def provision(
    home: BiHome,
    python: Path,
    database_uri: str,
    schema: str,
    admin_user: str,
    admin_password: str,
    progress: Progress,
) -> bool:
    """Make `home` serve the bundle on this warehouse with this admin; False when it already did."""
    key, _ = secret_file(home.secret_key, 48)
    wanted = hmac.new(key.encode(), json.dumps({
        "bundle": _digest(BUNDLE_DIR),
        "superset": _digest(SUPERSET_PROJECT / "uv.lock", SUPERSET_PROJECT / "provision.py",
                            SUPERSET_PROJECT / "superset_config.py"),
        "database": database_uri, "schema": schema, "admin": [admin_user, admin_password],
    }, sort_keys=True).encode(), "sha256").hexdigest()
    stamp = home.stamp.read_text().strip() if home.stamp.exists() else None
    if home.metadata_db.exists() and stamp == wanted:
        return False
    if home.metadata_db.exists() and stamp is None:
        home.metadata_db.unlink()  # a first provisioning that never finished: start it again
    home.stamp.unlink(missing_ok=True)
    started = time.monotonic()
    env = {
        **superset_env(home),
        "PRICING_OPS_BI_BASE_DB": str(BASE_CACHE_DIR / f"metadata-{_digest(SUPERSET_PROJECT / 'uv.lock')[:16]}.db"),
        "PRICING_OPS_BI_BUNDLE": str(BUNDLE_DIR),
        "PRICING_OPS_BI_ADMIN_USER": admin_user,
        "PRICING_OPS_BI_ADMIN_PASSWORD": admin_password,
        "PRICING_OPS_BI_DATABASE_URI": database_uri,
        "PRICING_OPS_BI_SCHEMA": schema,
    }
    with home.log.open("a") as log:
        proc = subprocess.Popen([str(python), str(SUPERSET_PROJECT / "provision.py")], env=env,
                                stdout=log, stderr=subprocess.PIPE, text=True, cwd=home.root)
        assert proc.stderr is not None
        for line in proc.stderr:
            log.write(line)
            if line.startswith("superset: "):
                progress(line.rstrip())
        code = proc.wait()
    if code != 0:
        raise SupersetError(f"provisioning Superset failed ({_last_error(home.log)}); see {home.log}")
    home.stamp.write_text(wanted + "\n")
    progress(f"superset: provisioned in {time.monotonic() - started:.0f} s")
    return True


def _last_error(log: Path) -> str:
    lines = [line.strip() for line in log.read_text(errors="replace").splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error" in line or line.startswith("superset: "):
            return line[:300]
    return lines[-1][:300] if lines else "no output"


def port_is_free(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        # As gunicorn binds: connections of a server just stopped (TIME_WAIT) do not hold the port.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def serve(home: BiHome, python: Path, host: str, port: int, on_ready: Progress) -> int:
    """Run Superset's server (gunicorn, one process, threads) until it stops or this process is
    asked to stop (SIGTERM/SIGINT are passed on); `on_ready` once `/health` answers."""
    gunicorn = python.parent / "gunicorn"
    command = [str(gunicorn), "--workers", "1", "--worker-class", "gthread", "--threads", "8",
               "--timeout", "120", "--graceful-timeout", "10", "--bind", f"{host}:{port}",
               "superset.app:create_app()"]
    with home.log.open("a") as log:
        proc = subprocess.Popen(command, env=superset_env(home), stdout=log, stderr=log, cwd=home.root)

    def stop(signum, _frame):
        proc.send_signal(signal.SIGTERM)

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        _wait_healthy(proc, host, port, home.log)
        on_ready(f"http://{host if ':' not in host else f'[{host}]'}:{port}")
        return proc.wait()
    finally:
        if proc.poll() is None:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _wait_healthy(proc: subprocess.Popen, host: str, port: int, log: Path) -> None:
    url = f"http://{host if ':' not in host else f'[{host}]'}:{port}/health"
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SupersetError(f"Superset's server stopped at start (exit {proc.returncode}: {_last_error(log)}); "
                                f"see {log}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.5)
    raise SupersetError(f"Superset's server did not answer {url} within {START_TIMEOUT_S:.0f} s; see {log}")
