"""`pricing-ops spark-cluster start|stop|status`: a local Apache Spark cluster on loopback (a
standalone master, two workers and a Spark Connect server) for the Spark warehouse of contract
section 10. Its files (logs, Hive metastore, tables) live in `DATA_DIR/spark`; the daemons are
stopped by the PIDs `start` recorded, never by name. Needs the `spark` extra and Java 17.
"""

from __future__ import annotations

import argparse
import json

from orchestration.cli import CommandError, progress
from orchestration.settings import get_settings

DEFAULT_CONNECT_PORT = 15002


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("spark-cluster", help="a local Spark cluster (master, 2 workers, Spark Connect) on loopback")
    csub = p.add_subparsers(dest="spark_command", required=True, metavar="SUBCOMMAND")
    start = csub.add_parser("start", help="start it (a running cluster is left as it is); prints the WAREHOUSE_URL")
    start.add_argument("--connect-port", type=int, default=DEFAULT_CONNECT_PORT,
                       help=f"Spark Connect port on 127.0.0.1 (default {DEFAULT_CONNECT_PORT})")
    start.add_argument("--jvm-timezone", default=None,
                       help="the JVMs' default time zone (e.g. Asia/Tokyo); results never depend on it")
    start.set_defaults(func=cmd_start)
    csub.add_parser("stop", help="stop the daemons it started (by PID)").set_defaults(func=cmd_stop)
    csub.add_parser("status", help="each daemon's PID and state, as JSON").set_defaults(func=cmd_status)


def _cluster(args: argparse.Namespace):
    from resources.engines.spark_cluster import LocalSparkCluster

    return LocalSparkCluster(
        get_settings().data_dir / "spark",
        connect_port=getattr(args, "connect_port", None),
        jvm_timezone=getattr(args, "jvm_timezone", None),
    )


def cmd_start(args: argparse.Namespace) -> int:
    cluster = _cluster(args)
    progress(f"starting a local Spark cluster in {cluster.root} (master, {cluster.workers} workers, Spark Connect)")
    try:
        state = cluster.start()
    except RuntimeError as exc:
        raise CommandError(str(exc)) from None
    progress(f"Spark Connect on {state.connect_url}; use WAREHOUSE_URL={state.connect_url} with STATE_DATABASE_URL")
    print(state.connect_url)
    return 0


def cmd_stop(args: argparse.Namespace) -> int:
    stopped = _cluster(args).stop()
    progress(f"stopped: {', '.join(stopped)}" if stopped else "no local Spark cluster was running")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    status = _cluster(args).status()
    print(json.dumps(status, indent=2))
    return 0 if status["running"] else 1
