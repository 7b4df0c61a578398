"""Runs whose process died are not left STARTED.

A run `pricing-ops` executes in its own process carries that process's identity (host, pid and the
pid's start time) in its tags. When that process is gone (killed with SIGKILL, the machine
rebooted), nothing else would ever end the run: it would hold the run queue's `warehouse_writer`
slot (and any pool slot) forever, and every scheduled refresh would queue behind it. Two things
end it:

- the next `pricing-ops` command (`fail_dead_runs`, before it runs anything), and
- the daemon's run monitoring (dagster.yaml `run_monitoring`, orchestration/instance.py), through
  `PricingOpsRunLauncher.check_run_worker_health`: Dagster's own launcher, which cannot tell
  whether such a run's process lives, with that one question answered.

Only runs started on this host are judged: another machine's process cannot be looked at from here.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from dagster._core.launcher import CheckRunHealthResult, DefaultRunLauncher, WorkerStatus
from dagster._core.storage.dagster_run import DagsterRun

from sensors.run_failures import REPORTED_BY_LAUNCHER_TAG

HOST_TAG = "pricing_ops/host"
PID_TAG = "pricing_ops/pid"
PROCESS_START_TAG = "pricing_ops/process_start"
# The run-failure sensor leaves alone the runs whose launcher reports them (sensors/run_failures.py);
# a dead process never reported its own failure, so the tag is changed for the sensor to send it.
FAILURE_ALERT_TAG = next(iter(REPORTED_BY_LAUNCHER_TAG))
ALERT_BY_SENSOR = "sensor"
UNFINISHED = [DagsterRunStatus.NOT_STARTED, DagsterRunStatus.STARTING, DagsterRunStatus.STARTED,
              DagsterRunStatus.CANCELING]


def process_start(pid: int) -> str | None:
    """When process `pid` started, as the kernel counts it (clock ticks since boot: with the pid,
    one process for good, even after the pid is reused); None when there is no such process or the
    system has no /proc."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22; the command name (field 2) is in parentheses and may hold spaces.
    return stat.rsplit(")", 1)[1].split()[19]


def this_process_tags() -> dict[str, str]:
    """The tags naming the process that executes a run here."""
    pid = os.getpid()
    return {HOST_TAG: socket.gethostname(), PID_TAG: str(pid), PROCESS_START_TAG: process_start(pid) or ""}


def dead_process(tags: Mapping[str, str]) -> str | None:
    """The process that ran a run with these tags when it is known to be gone ("pid 123 on host
    h"), or None: alive, on another host, or not a run executed by `pricing-ops`."""
    if tags.get(HOST_TAG) != socket.gethostname() or not tags.get(PID_TAG, "").isdigit():
        return None
    pid = int(tags[PID_TAG])
    where = f"pid {pid} on host {tags[HOST_TAG]}"
    started = tags.get(PROCESS_START_TAG)
    if started and Path("/proc/self/stat").exists():
        now = process_start(pid)
        if now is None:
            return where
        return None if now == started else f"{where}, a pid another process has now"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return where
    except PermissionError:
        return None  # alive, another user's
    return None


def dead_run_message(process: str) -> str:
    return (f"the pricing-ops process running it ({process}) is gone (killed, or the machine restarted): marked "
            "failed so that the run queue and the next warehouse writer are not held by it")


def free_slots(instance: DagsterInstance, run_id: str) -> None:
    """Release the concurrency pool slots a dead run still claims."""
    storage = instance.event_log_storage
    if storage.supports_global_concurrency_limits:
        storage.free_concurrency_slots_for_run(run_id)


def fail_dead_runs(instance: DagsterInstance) -> list[tuple[DagsterRun, str]]:
    """Mark failed every unfinished run of this host whose `pricing-ops` process is gone, release its
    slots; returns those runs with the reason. Runs by other processes or hosts are left alone."""
    ended = []
    for run in instance.get_runs(filters=RunsFilter(statuses=UNFINISHED, tags={HOST_TAG: socket.gethostname()})):
        reason = dead_process(run.tags)
        if reason is None:
            continue
        message = dead_run_message(reason)
        instance.report_run_failed(run, message)
        free_slots(instance, run.run_id)
        ended.append((run, message))
    return ended


class PricingOpsRunLauncher(DefaultRunLauncher):
    """Dagster's default launcher (runs started by the daemon and the UI run in a process of the code
    server), able to tell run monitoring that a run `pricing-ops` executed has lost its process."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        reason = dead_process(run.tags)
        if reason is None:
            # Alive, or launched by this launcher (its worker is the code server's business, as
            # with Dagster's default launcher, which reports nothing).
            return CheckRunHealthResult(WorkerStatus.RUNNING, "")
        instance = self._instance
        if instance is not None:
            free_slots(instance, run.run_id)
            instance.add_run_tags(run.run_id, {FAILURE_ALERT_TAG: ALERT_BY_SENSOR})
        return CheckRunHealthResult(WorkerStatus.FAILED, dead_run_message(reason))
