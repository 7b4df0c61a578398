"""Guardrails through the real chain on the embedded default: telemetry written into the demo source,
the sensor of the Definitions notices it, the `guardrail_evaluation` job extracts, builds
provider_guardrail_status with dbt (severity by the dbt macro, thresholds from the settings) and acts;
then the CLI (`pricing-ops guardrails evaluate | followup`) in a subprocess, as cron runs it.

Two dbt invocations in all: they cost ~15 s each.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
from guardrails_support import RecordingServer
from handmade_source import add_duckdb_rows, write_duckdb_source

from resources.app_api import FOLLOWUPS_PATH

ROOT = Path(__file__).resolve().parent.parent
# The installed console script (`[project.scripts]`), as people and cron run it.
PRICING_OPS = str(Path(sys.executable).parent / "pricing-ops")
T = datetime(2026, 11, 26, 9, 0, tzinfo=UTC)
POST = "/api/chat.postMessage"
BASE = "https://app.smplat.local"
AUTO = "Auto pause triggered by provider automation alerts worker"
KEY = "checkout-secret-key"
TOKEN = "xoxb-pipeline-secret"


def provider(id_: str, name: str) -> dict:
    return {"id": id_, "name": name, "platform": "tiktok", "created_at": T - timedelta(days=30)}


def telemetry(
    id_: int, provider_id: str, end: datetime, gf: int = 0, rf: int = 0, recorded: datetime | None = None
) -> dict:
    return {
        "id": id_,
        "provider_id": provider_id,
        "experiment_slug": "spring-offer",
        "variant_key": "b",
        "window_start": end - timedelta(minutes=5),
        "window_end": end,
        "guardrail_checks": 20,
        "guardrail_failures": gf,
        "replay_total": 10,
        "replay_failures": rf,
        "recorded_at": recorded or end + timedelta(seconds=30),
    }


def alert(
    header: str, name: str, failures: int, replays: str, action: str, notes: str, provider_id: str
) -> str:
    return (
        f"{header} *{name}* `spring-offer`\n"
        f"• Failures: {failures} · Replays: {replays}\n"
        f"• Action: {action} (notes: {notes})\n"
        f"• Live conversion slice: <{BASE}/admin/reports#experiment-analytics|Open conversions>\n"
        f"<{BASE}/admin/fulfillment/providers/{provider_id}?tab=automation|Open dashboard>"
    )


WARNING = ":large_yellow_circle: Guardrail warning for"
CRITICAL = ":warning: Guardrail alert for"


def test_sensor_job_dbt_actions_then_the_cli(make_settings, tmp_path, dbt_manifest):
    from orchestration.definitions import build_definitions

    with RecordingServer() as slack, RecordingServer() as app:
        settings = make_settings(
            SLACK_BOT_TOKEN=TOKEN,
            SLACK_API_BASE_URL=slack.url + "/api",
            APP_API_BASE_URL=app.url,
            CHECKOUT_API_KEY=KEY,
        )
        write_duckdb_source(
            settings.demo_source_path,
            {
                "fulfillment_providers": [
                    provider("p-g2", "Two Fails"),
                    provider("p-g3", "Three & <Fails>"),
                    provider("p-r4", "Four Replays"),
                    provider("p-r5", "Five Replays"),
                    provider("p-ok", "Fine"),
                ],
                "provider_guardrail_telemetry": [
                    telemetry(1, "p-g2", T, gf=2),
                    telemetry(2, "p-g3", T, gf=3),
                    telemetry(3, "p-r4", T, rf=4),
                    telemetry(4, "p-r5", T, rf=5),
                    telemetry(5, "p-ok", T),
                    # An older window of p-g3 that was critical does not matter: only the latest counts.
                    telemetry(6, "p-ok", T - timedelta(minutes=5), gf=9),
                ],
            },
        )
        defs = build_definitions(settings)
        sensor = defs.resolve_sensor_def("guardrail_telemetry_sensor")
        job = defs.resolve_job_def("guardrail_evaluation")
        instance = dg.DagsterInstance.ephemeral()

        # The sensor of the Definitions (with the Definitions' source resource) asks for one run.
        with dg.build_sensor_context(
            instance=instance, resources={"source": defs.resources["source"]}
        ) as context:
            tick = sensor(context)
        [request] = tick.run_requests
        result = job.execute_in_process(instance=instance, tags=request.tags)
        assert result.success
        materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
        assert {
            "raw/provider_guardrail_telemetry",
            "raw/fulfillment_providers",
            "provider_guardrail_status",
            "guardrail_actions",
        } <= materialized
        assert "raw/onboarding_journey_events" not in materialized  # only the chain guardrails need
        # A first tick after that run, with no sensor cursor yet (the UI opened after `pricing-ops demo`):
        # the run recorded what it evaluated, so no run with nothing to do, and the cursor says so.
        with dg.build_sensor_context(
            instance=instance, resources={"source": defs.resources["source"]}
        ) as context:
            fresh = sensor(context)
        assert not fresh.run_requests and fresh.skip_reason.skip_message.startswith("no new telemetry windows")
        assert fresh.cursor == tick.cursor
        texts = [r.json()["text"] for r in slack.to(POST)]
        assert sorted(texts) == sorted(
            [
                alert(CRITICAL, "Three &amp; &lt;Fails&gt;", 3, "0/10", "pause", AUTO, "p-g3"),
                alert(CRITICAL, "Five Replays", 0, "5/10", "pause", AUTO, "p-r5"),
                alert(WARNING, "Two Fails", 2, "0/10", "none", "guardrail_failures 2", "p-g2"),
                alert(WARNING, "Four Replays", 0, "4/10", "none", "replay_failures 4", "p-r4"),
            ]
        )  # a warning's notes are the mart's reasons (dbt macro guardrail_reasons)
        for posted in slack.to(POST):  # Block Kit too: one mrkdwn section holding the alert (< 3000 chars)
            body = posted.json()
            assert body["blocks"] == [{"type": "section", "text": {"type": "mrkdwn", "text": body["text"]}}]
        assert slack.to(POST)[0].headers["authorization"] == f"Bearer {TOKEN}"
        assert sorted(p.json()["providerId"] for p in app.to(FOLLOWUPS_PATH)) == ["p-g3", "p-r5"]

        with duckdb.connect(str(settings.data_dir / "warehouse.duckdb"), read_only=True) as conn:
            status = dict(
                conn.execute(
                    "select provider_id, severity from analytics.provider_guardrail_status"
                ).fetchall()
            )
            paused = conn.execute(
                "select provider_id, paused_by from analytics.provider_automation_state where status = 'paused' order by 1"
            ).fetchall()
        assert status == {
            "p-g2": "warning",
            "p-g3": "critical",
            "p-r4": "warning",
            "p-r5": "critical",
            "p-ok": "ok",
        }
        assert paused == [("p-g3", "automation"), ("p-r5", "automation")]

        # The evaluation again with no new telemetry: no dbt process, the actions still evaluated
        # (and nothing acted on twice).
        posted = len(slack.to(POST))
        again = job.execute_in_process(instance=instance)
        assert again.success
        logs = [e.user_message for e in instance.all_logs(again.run_id)]
        assert any(m.startswith("marts up to date: nothing new since") for m in logs)
        assert not any(m.startswith("dbt build on") for m in logs)
        redone = {e.asset_key.to_user_string() for e in again.get_asset_materialization_events()}
        assert {"provider_guardrail_status", "guardrail_actions"} <= redone
        assert len(slack.to(POST)) == posted

        # p-g3 clears; the sensor sees the new window; the CLI runs the evaluation (as cron would).
        add_duckdb_rows(
            settings.demo_source_path,
            {"provider_guardrail_telemetry": [telemetry(7, "p-g3", T + timedelta(minutes=5))]},
        )
        with dg.build_sensor_context(
            instance=instance, resources={"source": defs.resources["source"]}, cursor=tick.cursor
        ) as context:
            assert len(sensor(context).run_requests) == 1
        env = {
            **{k: v for k, v in os.environ.items() if k != "DAGSTER_HOME"},
            "DATA_DIR": str(settings.data_dir),
            "SLACK_BOT_TOKEN": TOKEN,
            "SLACK_API_BASE_URL": slack.url + "/api",
            "APP_API_BASE_URL": app.url,
            "CHECKOUT_API_KEY": KEY,
        }
        evaluate = subprocess.run(
            [PRICING_OPS, "guardrails", "evaluate"],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert evaluate.returncode == 0, evaluate.stderr[-2000:]
        outcome = json.loads(evaluate.stdout)
        assert (
            outcome["auto_resumed"],
            outcome["auto_paused"],
            outcome["slack_sent"],
            outcome["app_api_sent"],
        ) == (1, 0, 1, 1)
        assert "Auto-resumed: Three & <Fails> (p-g3)" in evaluate.stderr
        assert TOKEN not in evaluate.stderr + evaluate.stdout and KEY not in evaluate.stderr + evaluate.stdout
        assert (
            slack.to(POST)[-1]
            .json()["text"]
            .startswith(":white_check_mark: Automation resumed for *Three &amp; &lt;Fails&gt;*")
        )

        # An operator follow-up from the CLI, with a historical conversion slice; then the same again.
        args = [
            PRICING_OPS,
            "guardrails",
            "followup",
            "--provider",
            "p-ok",
            "--action",
            "pause",
            "--actor",
            "ana@ops",
            "--notes",
            "<!channel> check & hold",
            "--conversion-cursor",
            "c-42",
        ]
        first = subprocess.run(
            args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False
        )
        assert first.returncode == 0, first.stderr[-2000:]
        assert "recorded pause by ana@ops for p-ok: status paused" in first.stderr
        assert slack.to(POST)[-1].json()["text"] == (
            f"{CRITICAL} *Fine* `spring-offer`\n"
            "• Failures: 0 · Replays: 0/10\n"
            "• Action: pause (notes: &lt;!channel&gt; check &amp; hold)\n"
            f"• Historical conversion slice: <{BASE}/admin/reports?conversionCursor=c-42#experiment-analytics|Open conversions>\n"
            f"<{BASE}/admin/fulfillment/providers/p-ok?tab=automation|Open dashboard>"
        )
        # (Running the same follow-up twice records it once: test_guardrails_automation covers it in process.)
        unknown = subprocess.run(
            [*args[:4], "nobody", *args[5:]],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert unknown.returncode == 1
        assert (
            unknown.stderr.strip()
            .splitlines()[-1]
            .startswith("pricing-ops guardrails: job guardrail_operator_followup failed")
        )
        assert "provider 'nobody' is not in analytics.provider_guardrail_status" in unknown.stderr
        assert len(slack.to(POST)) == 6 and len(app.to(FOLLOWUPS_PATH)) == 4
