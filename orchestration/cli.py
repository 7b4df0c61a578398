"""`pricing-ops`: what people and cron run outside the Dagster UI (contract section 8).

Each command group lives in `orchestration/commands/<group>.py` with a `register(subparsers)`
function; this module only assembles them, reports failures as one line and sets the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import warnings

COMMAND_MODULES = (
    "orchestration.commands.pipeline",  # demo, demo-source, refresh
    "orchestration.commands.guardrails",  # guardrails evaluate | followup
    "orchestration.commands.export",  # export
    "orchestration.commands.digests",  # digest slack | email, readyz
    "orchestration.commands.warehouse",  # warehouse grant-bi-reader
    "orchestration.commands.bi",  # bi, docs
    "orchestration.commands.spark_cluster",  # spark-cluster start | stop | status
)


def progress(message: str) -> None:
    """A progress line for the person at the terminal: stderr, flushed (stdout is for results);
    secrets redacted as in every log line."""
    from orchestration.log_hygiene import redact

    print(redact(message), file=sys.stderr, flush=True)


class CommandError(Exception):
    """A failure the user can fix: printed as one line (what, where, how to fix), exit 1."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pricing-ops", description=__doc__.splitlines()[0])
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging, tracebacks and dbt's per-test lines"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verbose:
        # Read by the parts that print more when asked (dbt's per-test lines), in this process and
        # in the subprocesses it starts.
        os.environ["PRICING_OPS_VERBOSE"] = "1"
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    # Dagster's notices about its own API's future (beta, superseded) are for developers, not here.
    warnings.filterwarnings("ignore", message=r".*(is currently in beta|is superseded|is currently in preview).*")
    # Dagster prints its own event log to stderr; its loggers must not print every line twice.
    logging.getLogger("dagster").propagate = False
    # Storage migrations on a new DAGSTER_HOME are not progress anyone needs to read.
    logging.getLogger("alembic").setLevel(logging.WARNING)
    from orchestration.settings import SettingsError, load_settings

    try:
        # Every setting is checked before any work: a bad one is refused in one line.
        settings = load_settings()
    except SettingsError as exc:
        if args.command == "readyz":  # its stdout is the report: never "ready" with a bad setting
            print(json.dumps({"ready": False, "checks": [{"name": "settings", "status": "failed",
                                                          "message": str(exc)}]}, indent=2))
        print(f"pricing-ops {args.command}: {exc}", file=sys.stderr)
        return 2
    from orchestration.log_hygiene import install_log_hygiene
    from resources.interrupts import install_signal_watcher

    # No secret in any log line from here on, and no stack trace on stderr unless -v.
    install_log_hygiene(settings, trim_tracebacks=not args.verbose)
    # SIGTERM (and Ctrl-C) stop a command within seconds, even one blocked in a database driver.
    install_signal_watcher()
    try:
        result = args.func(args)
    except CommandError as exc:
        # The cause may quote a driver's message: redacted like every log line (a URL keeps its
        # database and user, loses its password).
        progress(f"pricing-ops {args.command}: {exc}")
        return 1
    except KeyboardInterrupt:
        from resources.interrupts import received_signal

        print(f"pricing-ops {args.command}: interrupted by {received_signal() or 'SIGINT'}", file=sys.stderr)
        return 130
    except Exception as exc:  # one line for the person, the traceback only with --verbose
        if args.verbose:
            raise
        progress(f"pricing-ops {args.command}: {root_cause_line(exc)}")
        return 1
    return int(result or 0)


def root_cause_line(exc: BaseException) -> str:
    """What went wrong, in one line (`Type: first line of its message`): the first error of the
    chain that is not one of Dagster's wrappers."""
    while type(exc).__name__.startswith("Dagster") and (exc.__cause__ or exc.__context__) is not None:
        exc = exc.__cause__ or exc.__context__  # type: ignore[assignment]
    message = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {message}" if message else type(exc).__name__


if __name__ == "__main__":
    # Run the imported module's main, so `CommandError` is the one class the commands raise.
    from orchestration.cli import main as imported_main

    sys.exit(imported_main())
