"""WEEKLY_DIGEST_ENABLED both ways, through the Dagster digest jobs on the embedded default (both
digests to the outbox): conversion rows left out of both digests, a log line and a line in the
digest saying so, and readiness reporting `weekly_digest` as `suppressed`."""

from __future__ import annotations

import json
from email import message_from_bytes, policy

import dagster as dg
import pytest
from digests_helpers import (
    conversion,
    create_all_marts,
    daily,
    duckdb_warehouse,
    followup,
    insert,
    record_mart_builds,
)
from handmade_source import write_duckdb_source

from assets.readiness import collect_readiness

# What the digest says when conversions are off, spelled here (not imported from the code under
# test), so a changed note fails this test instead of passing along with it.
SUPPRESSED_NOTE = (
    "Conversion rows are suppressed: WEEKLY_DIGEST_ENABLED=false. "
    "They return in the next digest once the flag is restored."
)


def _definitions(settings) -> dg.Definitions:
    from orchestration import digests
    from orchestration.resources import shared_resources

    # The digest assets name their upstream marts by key (assets/dbt_keys.py): no dbt project needed.
    return dg.Definitions.merge(
        digests.definitions(settings), dg.Definitions(resources=shared_resources(settings))
    )


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as shared:
        yield shared


def run_both_digests(settings, instance):
    """Run the two digest jobs for the current periods; returns (Slack payload, email, log messages)."""
    warehouse = duckdb_warehouse(settings.data_dir / "warehouse.duckdb")
    create_all_marts(warehouse)
    insert(warehouse, "experiment_conversion_snapshot", [
        conversion("spring-offer", "USD", "150.50", 2, 4, 15, "2026-11-18T03:00:00Z"),
    ])
    insert(warehouse, "experiment_daily_assignments", daily("spring-offer", "2026-11-15", [1] * 12))
    insert(warehouse, "guardrail_followups", [followup("f1", "p1", "Alpha", "pause", "2026-11-23T10:00:00Z", slug="winter")])
    write_duckdb_source(settings.demo_source_path, {})
    defs = _definitions(settings)
    logs = []
    for job_name in ("automation_slack_digest", "weekly_digest_email"):
        result = defs.resolve_job_def(job_name).execute_in_process(instance=instance)
        assert result.success
        logs += [record.user_message for record in instance.all_logs(result.run_id)]
    outbox = settings.outbox_dir
    [slack_file] = outbox.glob("slack-*.json")
    [eml] = outbox.glob("weekly-digest-*.eml")
    return json.loads(slack_file.read_text()), message_from_bytes(eml.read_bytes(), policy=policy.default), logs


def test_disabled_leaves_conversion_rows_out_says_so_and_readiness_shows_suppressed(make_settings, instance):
    settings = make_settings(WEEKLY_DIGEST_ENABLED=False)
    slack, email, logs = run_both_digests(settings, instance)

    assert any(
        m.startswith("WEEKLY_DIGEST_ENABLED=false: conversion rows suppressed in the slack digest for ") for m in logs
    )
    assert any(
        m.startswith("WEEKLY_DIGEST_ENABLED=false: conversion rows suppressed in the email digest for ") for m in logs
    )

    assert slack["channel"] == "#concierge-automation"
    money = next(b["text"]["text"] for b in slack["blocks"] if b["type"] == "section")
    assert money == f":moneybag: *Top conversion slugs*\n_{SUPPRESSED_NOTE}_"
    assert "spring-offer" not in json.dumps(slack)  # not the slug row, not its sparkline
    assert "Alpha" in json.dumps(slack)  # the automation block stays

    text = email.get_body(("plain",)).get_content()
    html = email.get_body(("html",)).get_content()
    assert "conversion rows suppressed" in email["Subject"]
    assert SUPPRESSED_NOTE in text and SUPPRESSED_NOTE in html
    assert "spring-offer" not in text and "spring-offer" not in html
    assert "150.50" not in text and "150.50" not in html and "data-chart" not in html

    record_mart_builds(instance)
    report = collect_readiness(
        duckdb_warehouse(settings.data_dir / "warehouse.duckdb"),
        _source(settings),
        _options(settings),
        instance,
    )
    digest = report.component("weekly_digest")
    assert (digest.status, digest.ready) == ("suppressed", True)
    assert digest.message == (
        "WEEKLY_DIGEST_ENABLED=false: conversion rows are suppressed in the email and Slack digests"
    )
    assert report.ready


def test_enabled_shows_conversion_rows_and_readiness_ok(make_settings, instance):
    settings = make_settings(WEEKLY_DIGEST_ENABLED=True)
    slack, email, logs = run_both_digests(settings, instance)

    assert not any("WEEKLY_DIGEST_ENABLED" in m for m in logs)
    money = next(b["text"]["text"] for b in slack["blocks"] if b["type"] == "section")
    assert money.split("\n")[2] == (
        "    • USD 150.50 · 2 orders / 4 journeys · 15 loyalty pts · last activity 2026-11-18T03:00:00Z"
    )
    html = email.get_body(("html",)).get_content()
    assert ">150.50</td>" in html and 'data-chart="daily-assignments"' in html
    assert SUPPRESSED_NOTE not in html

    record_mart_builds(instance)
    report = collect_readiness(
        duckdb_warehouse(settings.data_dir / "warehouse.duckdb"), _source(settings), _options(settings), instance
    )
    assert report.component("weekly_digest").status == "ok"


def _source(settings):
    from orchestration.resources import build_source

    return build_source(settings)


def _options(settings):
    from orchestration.digests import build_digest_options

    return build_digest_options(settings)
