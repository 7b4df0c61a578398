"""A failed run reaches a person (contract section 8): one Slack message `:rotating_light: {job}
failed: {root cause}` with a link to the run, through the real `slack` resource (slack-sdk against a
local Slack Web API server), whoever started the run, once, and never with a secret.

The broken source is a PostgreSQL URL (with a password) naming a database that does not exist: the
extract fails on connect, as it would when the source is down."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg
import pytest
from digests_helpers import SLACK_TOKEN, SlackApiServer

pytestmark = pytest.mark.postgres

ROOT = Path(__file__).resolve().parent.parent
PRICING_OPS = Path(sys.executable).parent / "pricing-ops"
PASSWORD = "s3cret-pa55"
MISSING_DB = "pricing_ops_no_such_source"


def _broken_source_url() -> str:
    from conftest import PG_ADMIN_DSN

    base = PG_ADMIN_DSN.rsplit("/", 1)[0].replace("postgres@", f"postgres:{PASSWORD}@")
    return f"{base}/{MISSING_DB}"


def _events(instance: dg.DagsterInstance, run_id: str, kind: dg.DagsterEventType) -> list[dg.EventLogEntry]:
    return [r.event_log_entry for r in instance.get_records_for_run(run_id, of_type=kind).records]


def test_a_refresh_with_a_broken_source_sends_one_alert_from_the_cli_and_the_sensor_leaves_it(
    tmp_path, dbt_manifest
):
    from orchestration.code_location import CODE_LOCATION_NAME
    from resources.slack import SlackNotifier
    from sensors.run_failures import RUN_FAILURE_SENSOR, build_run_failure_sensor

    data = tmp_path / "data"
    with SlackApiServer() as slack:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "PRICING_OPS_"))}
        env.update({
            "DATA_DIR": str(data), "ONBOARDING_EXPORT_DATABASE_URL": _broken_source_url(),
            "SLACK_BOT_TOKEN": SLACK_TOKEN, "SLACK_API_BASE_URL": slack.base_url, "SLACK_CHANNEL": "#ops-alerts",
        })
        out = subprocess.run([str(PRICING_OPS), "refresh"], cwd=ROOT, env=env, capture_output=True, text=True,
                             timeout=600, check=False)
        assert out.returncode == 1, out.stderr[-3000:]
        last = out.stderr.strip().splitlines()[-1]
        assert last.startswith("pricing-ops refresh: job refresh failed (run ") and MISSING_DB in last, last
        run_id = last.split("(run ", 1)[1].split(")", 1)[0]

        [message] = slack.posted
        assert message["channel"] == "#ops-alerts"
        headline, link = message["text"].split("\n")
        # The root cause in one line: the step and the driver's own words, not Dagster's wrapper.
        assert headline.startswith(":rotating_light: refresh failed: step extract_source: "), headline
        assert f'database "{MISSING_DB}" does not exist' in headline
        assert link == f"<http://127.0.0.1:3000/runs/{run_id}|Run {run_id[:8]} in the Dagster UI>"
        assert message["blocks"][0]["text"]["text"] == message["text"]
        assert PASSWORD not in str(message) and PASSWORD not in out.stderr

        # The run belongs to the code location the UI loads; the daemon's sensor leaves it alone.
        os.environ["DAGSTER_HOME"] = str(data / "dagster_home")
        try:
            with dg.DagsterInstance.get() as instance:
                run = instance.get_run_by_id(run_id)
                assert run.remote_job_origin.location_name == CODE_LOCATION_NAME
                [failure] = _events(instance, run_id, dg.DagsterEventType.RUN_FAILURE)
                sensor = build_run_failure_sensor([], None, redact=lambda text: text)
                notifier = SlackNotifier(bot_token=SLACK_TOKEN, api_base_url=slack.base_url, channel="#ops-alerts")
                context = dg.build_run_status_sensor_context(
                    RUN_FAILURE_SENSOR, failure.dagster_event, instance, run, resources={"slack": notifier}
                ).for_run_failure()
                skipped = sensor(context)
                assert isinstance(skipped, dg.SkipReason) and "launched by pricing-ops" in skipped.skip_message
                assert len(slack.posted) == 1
        finally:
            os.environ.pop("DAGSTER_HOME", None)


def test_a_run_started_from_the_ui_or_a_schedule_is_reported_by_the_sensor(tmp_path, make_settings, dbt_manifest):
    from orchestration.assembly import build_definitions
    from orchestration.code_location import execute_in_location
    from resources.slack import SlackNotifier
    from sensors.run_failures import RUN_FAILURE_SENSOR, build_run_failure_sensor

    settings = make_settings(ONBOARDING_EXPORT_DATABASE_URL=_broken_source_url(), DAGSTER_UI_URL="https://dagster.example/")
    job = build_definitions(settings).resolve_job_def("refresh")
    with SlackApiServer() as slack, dg.instance_for_test() as instance:
        # As the run worker of a launched run executes it: same origin, no pricing-ops tag.
        result = execute_in_location(job, {}, instance)
        assert not result.success
        run = instance.get_run_by_id(result.run_id)
        [failure] = _events(instance, run.run_id, dg.DagsterEventType.RUN_FAILURE)
        secrets = [PASSWORD]
        sensor = build_run_failure_sensor([job], settings.DAGSTER_UI_URL,
                                          redact=lambda text: text.replace(PASSWORD, "***"))
        notifier = SlackNotifier(bot_token=SLACK_TOKEN, api_base_url=slack.base_url)
        context = dg.build_run_status_sensor_context(
            RUN_FAILURE_SENSOR, failure.dagster_event, instance, run, resources={"slack": notifier}
        ).for_run_failure()
        assert sensor(context) is None
        [message] = slack.posted
        assert message["text"].startswith(":rotating_light: refresh failed: step extract_source: ")
        assert message["text"].endswith(f"\n<https://dagster.example/runs/{run.run_id}|Run {run.run_id[:8]} in the Dagster UI>")
        assert not any(secret in str(message) for secret in secrets)
