"""A run whose process was killed is not left STARTED: the next `pricing-ops` command marks it
failed (and releases its pool slot), and so does the daemon's run monitoring, after which a run
waiting in the daemon's queue goes through. Real processes, killed with SIGKILL."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import dagster as dg

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# No schedule fires while a test runs (a refresh every 15 minutes would join the queue).
NEVER = "0 0 1 1 *"
QUIET_SCHEDULES = {name: NEVER for name in (
    "REFRESH_CRON", "EXTRACT_RESYNC_CRON", "ONBOARDING_EXPORT_CRON", "AUTOMATION_DIGEST_CRON", "WEEKLY_DIGEST_CRON")}


def cli_env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DAGSTER_", "PRICING_OPS_", "WAREHOUSE_", "ONBOARDING_EXPORT_"))}
    env.update(DATA_DIR=str(data), DAGSTER_HOME=str(data / "dagster_home"), **QUIET_SCHEDULES)
    return env


def wait_for_line(proc: subprocess.Popen, text: str, timeout: float) -> list[str]:
    """stderr lines of `proc` until one holds `text` (the process keeps running)."""
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if not line:
            break
        lines.append(line)
        if text in line:
            return lines
    raise AssertionError(f"no line with {text!r} within {timeout} s:\n" + "".join(lines[-30:]))


# A job run as `pricing-ops` runs its jobs (tagged with its process), whose op holds a slot of the
# `warehouse_writer` pool and then waits to be killed.
SLOT_HOLDER = textwrap.dedent("""
    import sys, time
    import dagster as dg
    from orchestration.dead_runs import this_process_tags
    from sensors.run_failures import REPORTED_BY_LAUNCHER_TAG

    @dg.op(pool="warehouse_writer")
    def write():
        print("writing", file=sys.stderr, flush=True)
        time.sleep(600)

    @dg.job(name="refresh")
    def refresh():
        write()

    with dg.DagsterInstance.get() as instance:
        refresh.execute_in_process(instance=instance, tags={**REPORTED_BY_LAUNCHER_TAG, **this_process_tags()})
""")


def _started(instance: dg.DagsterInstance, job: dg.JobDefinition, tags: dict[str, str]) -> str:
    run = instance.create_run_for_job(job_def=job, tags=tags)
    instance.report_dagster_event(
        dg.DagsterEvent(event_type_value=dg.DagsterEventType.RUN_START.value, job_name=job.name), run.run_id
    )
    return run.run_id


def test_the_next_command_fails_a_killed_run_frees_its_slot_and_alerts(tmp_path, monkeypatch, capfd):
    from orchestration.cli import main
    from orchestration.dead_runs import HOST_TAG, PID_TAG, PROCESS_START_TAG, this_process_tags
    from orchestration.settings import get_settings

    data = tmp_path / "data"
    env = cli_env(data)
    home = data / "dagster_home"
    home.mkdir(parents=True)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.chdir(tmp_path)
    get_settings.cache_clear()
    from orchestration.instance import prepare_dagster_home

    prepare_dagster_home(get_settings())
    with dg.DagsterInstance.get() as instance:
        instance.event_log_storage.set_concurrency_slots("warehouse_writer", 1)

    proc = subprocess.Popen([sys.executable, "-c", SLOT_HOLDER], cwd=ROOT, env=env, text=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for_line(proc, "writing", 120)
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()

    @dg.op
    def noop():
        pass

    @dg.job(name="refresh")
    def other():
        noop()

    with dg.DagsterInstance.get() as instance:
        [killed] = instance.get_runs()
        assert killed.status == dg.DagsterRunStatus.STARTED
        assert instance.event_log_storage.get_concurrency_info("warehouse_writer").claimed_slots
        mine = this_process_tags()
        alive = _started(instance, other, mine)  # this test's own process: alive
        reused = _started(instance, other, {**mine, PROCESS_START_TAG: "1"})  # our pid, another process's start
        elsewhere = _started(instance, other, {HOST_TAG: "another-host", PID_TAG: str(proc.pid)})

    capfd.readouterr()
    try:
        assert main(["digest", "slack"]) == 0
    finally:
        get_settings.cache_clear()
    err = capfd.readouterr().err.splitlines()

    with dg.DagsterInstance.get() as instance:
        status = {run.run_id: run.status for run in instance.get_runs()}
        assert status[killed.run_id] == dg.DagsterRunStatus.FAILURE
        assert status[reused] == dg.DagsterRunStatus.FAILURE
        assert status[alive] == dg.DagsterRunStatus.STARTED  # a live process's run is left alone
        assert status[elsewhere] == dg.DagsterRunStatus.STARTED  # another host's cannot be judged here
        assert instance.event_log_storage.get_concurrency_info("warehouse_writer").claimed_slots == []
        [failure] = instance.get_records_for_run(killed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
    host = killed.tags[HOST_TAG]
    expected = (f"the pricing-ops process running it (pid {proc.pid} on host {host}) is gone (killed, or the "
                "machine restarted): marked failed so that the run queue and the next warehouse writer are not "
                "held by it")
    assert failure.event_log_entry.dagster_event.message == expected
    assert f"run {killed.run_id} (refresh) marked failed: {expected}" in err
    # The dead process never sent its failure alert: the command that found it did.
    alerts = [json.loads(p.read_text())["text"] for p in (data / "outbox").glob("slack-*.json")]
    assert f":rotating_light: refresh failed: {expected}\n<http://127.0.0.1:3000/runs/{killed.run_id}|" in "".join(alerts)


def test_a_killed_refresh_is_failed_by_the_daemon_and_the_queued_run_goes_through(tmp_path, monkeypatch,
                                                                                   dbt_manifest):
    from orchestration.assembly import build_definitions
    from orchestration.code_location import create_location_run
    from orchestration.dead_runs import FAILURE_ALERT_TAG
    from orchestration.settings import Settings
    from resources.warehouse import WarehouseLocation
    from resources.warehouse_writer import hold_writer_lock

    data = tmp_path / "data"
    env = cli_env(data)
    settings = Settings(_env_file=None, DATA_DIR=data, **QUIET_SCHEDULES)
    location = WarehouseLocation.parse(settings.warehouse_url)

    # The refresh waits for the writer lock this test holds, its run STARTED; then it is killed.
    with hold_writer_lock(location, settings.WAREHOUSE_SCHEMA, "test-holder", 1):
        refresh = subprocess.Popen([str(BIN / "pricing-ops"), "refresh"], cwd=tmp_path, env=env, text=True,
                                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for_line(refresh, "is being written by", 300)
            os.kill(refresh.pid, signal.SIGKILL)
            assert refresh.wait(30) == -signal.SIGKILL
        finally:
            if refresh.poll() is None:
                refresh.kill()

    monkeypatch.setenv("DAGSTER_HOME", env["DAGSTER_HOME"])
    daemon = None
    try:
        with dg.DagsterInstance.get() as instance:
            [killed] = instance.get_runs()
            assert (killed.job_name, killed.status) == ("refresh", dg.DagsterRunStatus.STARTED)

            # A digest run (one writer on the warehouse: the same queue limit as the refresh) waits
            # in the queue behind the dead run until the daemon marks it failed.
            defs = build_definitions(settings, with_dbt=False)
            job = defs.resolve_job_def("automation_slack_digest")
            queued = create_location_run(job, {}, instance)
            instance.submit_run(queued.run_id, workspace=None)
            assert instance.get_run_by_id(queued.run_id).status == dg.DagsterRunStatus.QUEUED

            daemon = subprocess.Popen([str(BIN / "dagster-daemon"), "run", "-w", str(ROOT / "workspace.yaml")],
                                      cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                      start_new_session=True)
            started = time.monotonic()
            deadline = started + 180  # the daemon's start-up (its code server loads the definitions) included
            while time.monotonic() < deadline:
                run = instance.get_run_by_id(queued.run_id)
                if run.status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE):
                    break
                time.sleep(1)
            took = time.monotonic() - started
            run = instance.get_run_by_id(queued.run_id)
            assert run.status == dg.DagsterRunStatus.SUCCESS, f"queued run is {run.status} after {took:.0f} s"
            killed = instance.get_run_by_id(killed.run_id)
            assert killed.status == dg.DagsterRunStatus.FAILURE
            assert killed.tags[FAILURE_ALERT_TAG] == "sensor"  # the run-failure sensor reports it
            [failure] = instance.get_records_for_run(killed.run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records
            message = failure.event_log_entry.dagster_event.message
            assert f"the pricing-ops process running it (pid {refresh.pid} on host " in message, message
            # Went through within a minute of the monitoring's first look (daemon start-up aside).
            failed_at = failure.event_log_entry.timestamp
            done_at = instance.get_run_record_by_id(queued.run_id).end_time
            assert done_at - failed_at < 60, (failed_at, done_at)
    finally:
        if daemon is not None:
            os.killpg(daemon.pid, signal.SIGTERM)
            try:
                daemon.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(daemon.pid, signal.SIGKILL)
                daemon.wait(10)
