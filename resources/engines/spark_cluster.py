"""A local Apache Spark cluster on loopback: a standalone master, two workers and a Spark Connect
server, for people (`pricing-ops spark-cluster start|stop|status`) and for the tests.

pyspark's wheel ships the jars and `bin/spark-class` / `bin/spark-submit` (not the `sbin/` start
scripts, which need a Spark distribution), so each daemon is started from them directly. Those
scripts `exec` the JVM, so the PID we start is the JVM's: it is recorded in `cluster.json` and
stopped by that PID only (after checking that the PID still runs the class we started).

The Connect server uses the Hive catalog with a Derby metastore in `<root>/metastore` and a
warehouse folder `<root>/warehouse`: tables survive a restart of the server. Derby allows one JVM
per metastore folder, so one cluster per root. The session time zone is UTC whatever the JVMs'.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

CONNECT_CLASS = "org.apache.spark.sql.connect.service.SparkConnectServer"
MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
STATE_FILE = "cluster.json"


def spark_home() -> Path:
    """The Spark installation pyspark ships (jars, bin/); the `spark` extra installs it."""
    try:
        import pyspark
    except ImportError:
        raise RuntimeError(
            "pyspark is not installed: the Spark warehouse needs the `spark` extra "
            "(`uv sync --extra spark`) and Java 17 (`java -version`)"
        ) from None
    return Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _alive(pid: int, cls: str) -> bool:
    """Whether `pid` is running and is the JVM of `cls` (a PID reused by another process is not)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return False
    return cls in cmdline


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class ClusterState:
    """What `start` recorded: the ports and the PID of each daemon."""

    master_port: int
    connect_port: int
    pids: dict[str, int] = field(default_factory=dict)
    classes: dict[str, str] = field(default_factory=dict)

    @property
    def connect_url(self) -> str:
        return f"sc://127.0.0.1:{self.connect_port}"


@dataclass
class LocalSparkCluster:
    """A cluster whose files (logs, metastore, warehouse, work dirs, `cluster.json`) live in `root`.

    `jvm_timezone` sets the JVMs' default time zone (-Duser.timezone and TZ): the tests run a
    non-UTC cluster to show no result depends on it. `worker_memory` per worker (one core each)."""

    root: Path
    connect_port: int | None = None
    jvm_timezone: str | None = None
    workers: int = 2
    worker_memory: str = "1g"
    executor_memory: str = "768m"
    driver_memory: str = "2g"
    _started: dict[str, subprocess.Popen] = field(default_factory=dict, repr=False, compare=False)

    @property
    def state_path(self) -> Path:
        return self.root / STATE_FILE

    def read_state(self) -> ClusterState | None:
        try:
            return ClusterState(**json.loads(self.state_path.read_text()))
        except (OSError, ValueError, TypeError):
            return None

    def status(self) -> dict[str, object]:
        """Each daemon's PID and whether it runs, and the Connect URL."""
        state = self.read_state()
        if state is None:
            return {"running": False, "root": str(self.root), "daemons": {}}
        daemons = {name: {"pid": pid, "alive": _alive(pid, state.classes[name])} for name, pid in state.pids.items()}
        running = bool(daemons) and all(d["alive"] for d in daemons.values()) and _port_open(state.connect_port)
        return {"running": running, "root": str(self.root), "connect_url": state.connect_url, "daemons": daemons}

    # Start -------------------------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["SPARK_HOME"] = str(spark_home())
        env["SPARK_LOCAL_IP"] = "127.0.0.1"
        env["SPARK_LOG_DIR"] = str(self.root / "logs")
        env.pop("SPARK_REMOTE", None)  # the server itself must not try to be a Connect client
        env.pop("SPARK_CONNECT_MODE_ENABLED", None)
        if self.jvm_timezone:
            env["TZ"] = self.jvm_timezone
        tz = f" -Duser.timezone={self.jvm_timezone}" if self.jvm_timezone else ""
        # The daemons' own JVM options (spark-class reads SPARK_DAEMON_JAVA_OPTS for master and worker).
        env["SPARK_DAEMON_JAVA_OPTS"] = f"-Dderby.system.home={self.root / 'metastore'}{tz}"
        return env

    def _launch(self, name: str, cls: str, args: list[str], state: ClusterState) -> None:
        log = open(self.root / "logs" / f"{name}.log", "ab")  # noqa: SIM115 - the child keeps it
        proc = subprocess.Popen(
            args, env=self._env(), stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # a Ctrl-C at the terminal does not reach the daemons
        )
        log.close()
        self._started[name] = proc
        state.pids[name], state.classes[name] = proc.pid, cls
        self.state_path.write_text(json.dumps(asdict(state)))

    def connect_conf(self, state: ClusterState) -> dict[str, str]:
        """The Connect server's settings (its driver runs the SQL of every session)."""
        tz = f" -Duser.timezone={self.jvm_timezone}" if self.jvm_timezone else ""
        metastore = self.root / "metastore"
        return {
            "spark.connect.grpc.binding.address": "127.0.0.1",
            "spark.connect.grpc.binding.port": str(state.connect_port),
            "spark.sql.catalogImplementation": "hive",
            "spark.sql.warehouse.dir": str(self.root / "warehouse"),
            "spark.hadoop.javax.jdo.option.ConnectionURL": f"jdbc:derby:;databaseName={metastore / 'metastore_db'};create=true",
            # Instants are UTC however the cluster's JVMs are set (contract section 10).
            "spark.sql.session.timeZone": "UTC",
            # insert overwrite replaces only the partitions it writes (the phase 2 incremental replace).
            "spark.sql.sources.partitionOverwriteMode": "dynamic",
            # Small jobs dominate a build (a model is a handful of statements): few partitions per
            # shuffle, and a task starts on any free executor at once instead of waiting up to 3 s
            # for one holding its data (one core per worker).
            "spark.sql.shuffle.partitions": str(self.workers),
            "spark.default.parallelism": str(self.workers),
            "spark.locality.wait": "0s",
            "spark.cores.max": str(self.workers),
            "spark.executor.cores": "1",
            "spark.executor.memory": self.executor_memory,
            "spark.driver.memory": self.driver_memory,
            "spark.driver.extraJavaOptions": f"-Dderby.system.home={metastore}{tz}",
            "spark.executor.extraJavaOptions": tz.strip() or "-Dfile.encoding=UTF-8",
            "spark.ui.enabled": "false",
            # Arrow batches from the client are written by executors; big ones arrive in chunks.
            "spark.connect.grpc.maxInboundMessageSize": str(256 * 1024 * 1024),
        }

    def start(self, wait_seconds: float = 300.0) -> ClusterState:
        """Start master, workers and Connect server (a running cluster is left as it is) and wait
        until the Connect port answers."""
        if self.status()["running"]:
            state = self.read_state()
            assert state is not None
            return state
        self.stop()  # leftovers of a half-started cluster
        for sub in ("logs", "metastore", "warehouse", "work"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        home = spark_home()
        state = ClusterState(master_port=free_port(), connect_port=self.connect_port or free_port())
        master_url = f"spark://127.0.0.1:{state.master_port}"
        self._launch(
            "master", MASTER_CLASS,
            [str(home / "bin" / "spark-class"), MASTER_CLASS, "--host", "127.0.0.1",
             "--port", str(state.master_port), "--webui-port", str(free_port())],
            state,
        )
        for i in range(1, self.workers + 1):
            self._launch(
                f"worker-{i}", WORKER_CLASS,
                [str(home / "bin" / "spark-class"), WORKER_CLASS, "--host", "127.0.0.1", "--cores", "1",
                 "--memory", self.worker_memory, "--webui-port", str(free_port()),
                 "--work-dir", str(self.root / "work" / f"worker-{i}"), master_url],
                state,
            )
        args = [str(home / "bin" / "spark-submit"), "--class", CONNECT_CLASS, "--master", master_url,
                "--name", "pricing-ops-connect"]
        for key, value in self.connect_conf(state).items():
            args += ["--conf", f"{key}={value}"]
        args.append("spark-internal")
        self._launch("connect", CONNECT_CLASS, args, state)
        deadline = time.monotonic() + wait_seconds
        while not _port_open(state.connect_port):
            # Exit status of our own children: /proc/<pid>/cmdline reads empty while a launcher
            # script execs its JVM, which is no exit.
            dead = [n for n, proc in self._started.items() if proc.poll() is not None]
            if dead or time.monotonic() > deadline:
                self.stop()
                why = f"{', '.join(dead)} exited" if dead else f"Connect did not answer within {wait_seconds:.0f}s"
                raise RuntimeError(
                    f"local Spark cluster in {self.root} did not start: {why}; see {self.root / 'logs'} "
                    "(needs Java 17: `java -version`)"
                )
            time.sleep(0.5)
        return state

    # Stop --------------------------------------------------------------------------------------------
    def stop(self, wait_seconds: float = 60.0) -> list[str]:
        """Stop the recorded daemons by PID (Connect first, master last); returns the names stopped."""
        state = self.read_state()
        if state is None:
            return []
        stopped = []
        order = ["connect"] + sorted(n for n in state.pids if n.startswith("worker")) + ["master"]
        for name in order:
            pid = state.pids.get(name)
            if pid is None or not _alive(pid, state.classes[name]):
                continue
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + wait_seconds
            while _alive(pid, state.classes[name]) and time.monotonic() < deadline:
                _reap(pid)
                time.sleep(0.2)
            if _alive(pid, state.classes[name]):
                os.kill(pid, signal.SIGKILL)
            _reap(pid)
            stopped.append(name)
        self.state_path.unlink(missing_ok=True)
        return stopped


def _reap(pid: int) -> None:
    """Collect our own child's exit status (a zombie still shows in /proc)."""
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass
