"""Digests and readiness on the real pipeline: the hand-computed dataset extracted and built by dbt
(one refresh run), the guardrail job pausing the critical provider, then both digests through
their real channels (a Slack Web API server and aiosmtpd on 127.0.0.1) and the readiness report,
all against the same Dagster instance."""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg
import pipeline_dataset as ds
from digests_helpers import SLACK_TOKEN, RecordingHandler, SlackApiServer, section_texts, smtp_server
from handmade_source import write_duckdb_source

from assets.digests import deliver_digest
from assets.readiness import collect_readiness
from models.digests.content import chart_window
from models.digests.periods import period_containing
from resources.mail import Mailer


def test_digests_and_readiness_on_the_real_marts(make_settings, dbt_manifest):
    from orchestration.definitions import build_definitions
    from orchestration.digests import build_digest_options
    from orchestration.resources import build_slack, build_source, build_warehouse

    with SlackApiServer() as slack_server:
        settings = make_settings(SLACK_BOT_TOKEN=SLACK_TOKEN, SLACK_API_BASE_URL=slack_server.base_url)
        write_duckdb_source(settings.demo_source_path, ds.SOURCE)
        defs = build_definitions(settings)
        with dg.instance_for_test() as instance:
            refresh = defs.resolve_job_def("refresh").execute_in_process(
                instance=instance, run_config={"ops": {"pricing_dbt_models": {"config": {"as_of_date": ds.AS_OF}}}}
            )
            assert refresh.success
            guardrails = defs.resolve_implicit_global_asset_job_def().execute_in_process(
                instance=instance, asset_selection=[dg.AssetKey("guardrail_actions")]
            )
            assert guardrails.success

            warehouse, options = build_warehouse(settings), build_digest_options(settings)
            now = datetime.now(UTC)
            outcome = deliver_digest("slack", None, warehouse=warehouse, options=options, slack=build_slack(settings))
            assert (outcome.status, outcome.slugs, outcome.actions) == ("sent", 2, 1)

            handler = RecordingHandler()
            with smtp_server(handler) as (port, _):
                mailer = Mailer(smtp_host="127.0.0.1", smtp_port=port, smtp_starttls=False)
                assert deliver_digest("email", None, warehouse=warehouse, options=options, mailer=mailer).status == "sent"

            report = collect_readiness(warehouse, build_source(settings), options, instance)

    # Slack: the conversion snapshot of the dataset, ranked and exact, and the automatic pause of p1.
    days = chart_window(period_containing("slack", now), now.date())
    spring = [ds.DAILY.get(("spring-offer", d.isoformat()), (0, 0))[0] for d in days]
    # The guardrail job posted its own alerts to the same channel; the digest is one message.
    [payload] = [p for p in slack_server.posted if p["text"].startswith("Provider automation digest")]
    money, robot, link = section_texts(payload["blocks"])
    lines = money.split("\n")
    assert lines[0] == ":moneybag: *Top conversion slugs* (2 of 2 slugs)"
    assert lines[1].startswith("*`spring-offer`*  `") and lines[1].endswith(
        f" 10-day assignments, last 3: {', '.join(map(str, spring[-3:]))}"
    )
    assert lines[2:5] == [
        "    • USD 150.50 · 2 orders / 4 journeys · 15 loyalty pts · last activity 2026-11-18T03:00:00Z",
        "    • EUR 20.00 · 1 order / 1 journey · 2 loyalty pts · last activity 2026-11-15T12:00:00Z",
        "    • GBP 0.00 · 0 orders / 1 journey · 0 loyalty pts · last activity 2026-11-21T00:00:00Z",
    ]
    assert lines[5].startswith("*`winter`*  `")
    assert lines[6] == "    • USD 100.00 · 1 order / 1 journey · 10 loyalty pts · last activity 2026-11-19T00:00:00Z"
    robot_lines = robot.split("\n")
    assert robot_lines[0].endswith("1 provider, 1 paused, 0 resumed")
    assert robot_lines[1].startswith("• *Alpha* — paused `spring-offer` at ")
    assert robot_lines[1].endswith(
        " · <https://app.smplat.local/admin/fulfillment/providers/p1?tab=automation|Open dashboard>"
    )
    assert link == "• Live conversion snapshot: <https://app.smplat.local/admin/reports#experiment-analytics|Open conversions>"

    # Email: the same block as tables.
    [message] = handler.messages
    html = message.get_body(("html",)).get_content()
    assert html.count('<table class="conversions"') == 2
    assert ">150.50</td>" in html and ">100.00</td>" in html

    # Readiness right after: marts just built, guardrails evaluated, digests sent.
    assert {c.name: c.status for c in report.components} == {
        "warehouse": "ok", "source": "ok", "marts_freshness": "ok", "weekly_digest": "ok",
        "export": "never_run", "guardrails": "ok", "experiments": "ok",
    }
    assert report.component("guardrails").detail["paused_providers"] == 1
