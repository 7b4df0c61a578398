"""The readiness report: each component from real tables, a real Dagster instance and a real
source; the asset checks the UI shows; `pricing-ops readyz`'s JSON and exit code."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
from digests_helpers import create_all_marts, duckdb_warehouse, insert, record_mart_builds, ts
from handmade_source import write_duckdb_source

from assets.digests import DigestOptions, claim_delivery, record_failed, record_sent
from assets.readiness import build_readiness_checks, collect_readiness, readiness_targets
from models.marts import MART_TABLES
from resources.source import SourceDatabase
from resources.warehouse import Warehouse

OPTIONS = DigestOptions(marts_freshness_minutes=60)


def demo_source(tmp_path: Path) -> SourceDatabase:
    path = tmp_path / "demo_source.duckdb"
    write_duckdb_source(path, {})
    return SourceDatabase(demo_path=str(path))


@pytest.fixture(scope="module")
def instance():
    """One Dagster instance for the module (creating one costs seconds); each test records the
    materializations it needs, and only the latest per mart counts."""
    with dg.instance_for_test() as shared:
        yield shared


def statuses(report) -> dict[str, str]:
    return {c.name: c.status for c in report.components}


def test_ready_when_everything_is_fresh(tmp_path, instance):
    warehouse = duckdb_warehouse(tmp_path / "wh.duckdb")
    create_all_marts(warehouse)
    record_mart_builds(instance)
    report = collect_readiness(warehouse, demo_source(tmp_path), OPTIONS, instance)
    assert statuses(report) == {
        "warehouse": "ok", "source": "ok", "marts_freshness": "ok", "weekly_digest": "ok",
        "export": "never_run", "guardrails": "never_run", "experiments": "never_run",
    }
    assert report.ready
    out = report.to_json()
    assert out["ready"] is True and out["checked_at"].endswith("Z")
    assert out["components"]["marts_freshness"]["built_at_source"] == "dagster materializations"
    assert out["components"]["marts_freshness"]["age_minutes"] == 0
    assert out["components"]["warehouse"] == {
        "status": "ok", "ready": True, "message": "duckdb warehouse answers", "kind": "duckdb",
        "location": f"duckdb file {tmp_path / 'wh.duckdb'}",
    }


def test_export_guardrails_and_stale_marts_are_reported_exactly(tmp_path, instance):
    from resources.stores.export_runs import ensure_export_runs
    from resources.stores.guardrail_tables import ensure_guardrail_tables

    warehouse = duckdb_warehouse(tmp_path / "wh.duckdb")
    create_all_marts(warehouse)
    s = warehouse.schema
    with warehouse.connect() as conn:
        # The state tables as their stores create them (never a hand-written copy that can drift).
        ensure_export_runs(conn, s)
        ensure_guardrail_tables(conn, s)
    run = {"sink": "webhook", "rows_exported": 0, "batches": 0, "cursor_before": None, "cursor_after": None}
    insert(warehouse, "export_runs", [
        dict(run_id="r1", started_at=ts("2026-11-26T06:00:00Z"), finished_at=ts("2026-11-26T06:01:00Z"),
             status="success", error=None, **run),
        dict(run_id="r2", started_at=ts("2026-11-26T07:00:00Z"), finished_at=ts("2026-11-26T07:00:30Z"),
             status="failed", error="webhook https://hooks.example.com/T0/B0/secret-path answered 500", **run),
        dict(run_id="r3", started_at=ts("2026-11-26T08:00:00Z"), finished_at=ts("2026-11-26T08:00:30Z"),
             status="failed", error="webhook https://hooks.example.com/T0/B0/secret-path answered 503", **run),
    ])
    insert(warehouse, "automation_runs", [
        {"run_id": "g1", "ran_at": ts("2026-11-26T07:30:00Z"), "providers_evaluated": 3, "warnings": 1, "criticals": 0,
             "auto_paused": 0, "auto_resumed": 0, "summary": "older"},
        {"run_id": "g2", "ran_at": ts("2026-11-26T08:30:00Z"), "providers_evaluated": 12, "warnings": 2, "criticals": 1,
             "auto_paused": 1, "auto_resumed": 0, "summary": "auto-paused p1"},
    ])
    insert(warehouse, "provider_automation_state", [
        {"provider_id": p, "status": st, "paused_by": None, "updated_at": ts("2026-11-26T08:30:00Z"), "last_followup_id": None}
        for p, st in (("p1", "paused"), ("p2", "paused"), ("p3", "active"))
    ])
    record_mart_builds(instance)
    later = datetime.now(UTC) + timedelta(minutes=90, seconds=30)
    report = collect_readiness(warehouse, demo_source(tmp_path), OPTIONS, instance, now=later)

    assert statuses(report) == {
        "warehouse": "ok", "source": "ok", "marts_freshness": "stale", "weekly_digest": "stale",
        "export": "failing", "guardrails": "ok", "experiments": "never_run",
    }
    assert not report.ready
    out = report.to_json()["components"]
    assert out["export"] == {
        "status": "failing", "ready": False,
        "message": "2 export runs failed in a row; check the sink and cursor, then `pricing-ops export`",
        "last_success_at": "2026-11-26T06:01:00Z", "failures_in_a_row": 2,
        "last_error": "webhook <url redacted> answered 503",
    }
    assert out["guardrails"] == {
        "status": "ok", "ready": True, "message": "last evaluation at 2026-11-26T08:30:00Z", "paused_providers": 2,
        "last_evaluation_at": "2026-11-26T08:30:00Z", "providers_evaluated": 12, "warnings": 2, "criticals": 1,
        "auto_paused": 1, "auto_resumed": 0, "summary": "auto-paused p1",
    }
    assert out["marts_freshness"]["age_minutes"] == 90
    assert out["marts_freshness"]["message"].endswith(
        "min ago (limit 60 min, MARTS_FRESHNESS_MINUTES); check the refresh schedule or run `pricing-ops refresh`"
    )
    assert out["weekly_digest"]["message"].startswith("the conversion feed is not fresh: experiment_")


def test_nothing_built_yet(tmp_path, instance):
    warehouse = duckdb_warehouse(tmp_path / "wh.duckdb")
    missing_source = SourceDatabase(demo_path=str(tmp_path / "nowhere.duckdb"))
    report = collect_readiness(warehouse, missing_source, OPTIONS, instance)
    assert statuses(report) == {
        "warehouse": "ok", "source": "error", "marts_freshness": "missing", "weekly_digest": "stale",
        "export": "never_run", "guardrails": "never_run", "experiments": "never_run",
    }
    out = report.to_json()["components"]
    assert out["source"]["message"] == (
        f"cannot read the source: FileNotFoundError: demo source {tmp_path / 'nowhere.duckdb'} does not exist; "
        "create it with `pricing-ops demo-source` or set ONBOARDING_EXPORT_DATABASE_URL"
    )
    assert out["marts_freshness"]["missing"] == list(MART_TABLES)


def test_weekly_digest_is_stale_after_a_failed_send_or_a_missed_week(tmp_path, instance):
    warehouse = duckdb_warehouse(tmp_path / "wh.duckdb")
    create_all_marts(warehouse)
    now = datetime.now(UTC)
    record_mart_builds(instance)
    source = demo_source(tmp_path)
    # Sent three weeks ago, nothing since: last week's digest is missing.
    old = now - timedelta(weeks=3)
    year, week, _ = old.isocalendar()
    claim_delivery(warehouse, "email", f"{year}-W{week:02d}", old)
    record_sent(warehouse, "email", f"{year}-W{week:02d}", old, old, "outbox")
    digest = collect_readiness(warehouse, source, OPTIONS, instance).component("weekly_digest")
    assert digest.status == "stale"
    assert digest.message.startswith(f"the last weekly digest sent is {year}-W{week:02d}; ")

    year, week, _ = now.isocalendar()
    claim_delivery(warehouse, "email", f"{year}-W{week:02d}", now)
    record_failed(warehouse, "email", f"{year}-W{week:02d}", "MailDeliveryError: 451 try later", now)
    digest = collect_readiness(warehouse, source, OPTIONS, instance).component("weekly_digest")
    assert (digest.status, digest.detail["failed_period"], digest.detail["last_error"]) == (
        "stale", f"{year}-W{week:02d}", "MailDeliveryError: 451 try later"
    )


@pytest.mark.postgres
def test_an_unreachable_warehouse_is_reported_without_its_password(tmp_path):
    warehouse = Warehouse(url="postgresql://postgres:hunter2@127.0.0.1:5432/pricing_ops_no_such_db", schema_name="analytics")
    report = collect_readiness(warehouse, demo_source(tmp_path), OPTIONS, None)
    assert statuses(report)["warehouse"] == "error"
    assert {c.status for c in report.components if c.name not in ("warehouse", "source")} == {"error"}
    text = json.dumps(report.to_json())
    assert "hunter2" not in text
    assert "pricing_ops_no_such_db" in report.component("warehouse").message


def test_components_show_as_asset_checks_on_the_assets_they_judge(tmp_path, instance, make_settings):
    warehouse = duckdb_warehouse(tmp_path / "wh.duckdb")
    create_all_marts(warehouse)
    record_mart_builds(instance)
    checks = build_readiness_checks()
    targets = readiness_targets()
    defs = dg.Definitions(
        assets=[dg.AssetSpec(key) for key in {k for keys in targets.values() for k in keys}],
        asset_checks=[checks],
        jobs=[dg.define_asset_job("readiness", selection=dg.AssetSelection.checks(checks))],
        resources={"warehouse": warehouse, "source": SourceDatabase(demo_path=str(tmp_path / "none.duckdb")),
                   "digest_options": OPTIONS},
    )
    result = defs.resolve_job_def("readiness").execute_in_process(instance=instance)
    evaluations = result.get_asset_check_evaluations()
    checks = {e.check_name: (e.passed, e.severity) for e in evaluations}
    assert checks == {
        "warehouse": (True, dg.AssetCheckSeverity.ERROR),
        "source": (False, dg.AssetCheckSeverity.ERROR),
        "marts_freshness": (True, dg.AssetCheckSeverity.ERROR),
        "weekly_digest": (True, dg.AssetCheckSeverity.ERROR),
        "export": (True, dg.AssetCheckSeverity.ERROR),
        "guardrails": (True, dg.AssetCheckSeverity.ERROR),
        "experiments": (True, dg.AssetCheckSeverity.ERROR),
    }
    # Each component on the assets it judges: the source on the raw tables, freshness on every mart.
    judged = {(e.check_name, e.asset_key.to_user_string()) for e in evaluations}
    assert {key for name, key in judged if name == "source"} == {f"raw/{t}" for t in (
        "fulfillment_providers", "orders", "onboarding_journeys", "onboarding_journey_events",
        "provider_guardrail_telemetry")}
    assert {key for name, key in judged if name == "marts_freshness"} == set(MART_TABLES)
    assert {(n, k) for n, k in judged if n not in ("source", "warehouse", "marts_freshness")} == {
        ("weekly_digest", "weekly_digest_email"), ("export", "export_onboarding_segments"),
        ("guardrails", "guardrail_actions"), ("experiments", "experiment_health")}
    # Every result carries the whole report too.
    [source_check, *_] = [e for e in evaluations if e.check_name == "source"]
    assert source_check.metadata["ready"].value is False
    assert "| source | error | no |" in source_check.metadata["components"].value


def test_readyz_prints_json_and_exits_non_zero_when_not_ready(tmp_path, monkeypatch, capsys, make_settings):
    from orchestration.cli import main
    from orchestration.instance import prepare_dagster_home
    from orchestration.settings import get_settings

    settings = make_settings()
    monkeypatch.chdir(tmp_path)  # no developer .env
    monkeypatch.setenv("DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("DAGSTER_HOME", str(settings.dagster_home))
    # Set in the environment, the URL reaches the resource as an EnvVar, which the command resolves.
    monkeypatch.setenv("WAREHOUSE_URL", f"duckdb:///{settings.data_dir / 'warehouse.duckdb'}")
    get_settings.cache_clear()
    try:
        assert main(["readyz"]) == 1
        out, err = capsys.readouterr()
        report = json.loads(out)
        assert report["ready"] is False
        assert report["components"]["marts_freshness"]["status"] == "missing"
        assert err.strip().splitlines()[-1].startswith(
            "pricing-ops readyz: not ready: source error: cannot read the source: FileNotFoundError: demo source "
        )

        # Build what readiness looks for: the demo source, the marts, their materializations in DAGSTER_HOME.
        write_duckdb_source(settings.demo_source_path, {})
        create_all_marts(duckdb_warehouse(settings.data_dir / "warehouse.duckdb"))
        prepare_dagster_home(settings)
        with dg.DagsterInstance.get() as home:
            record_mart_builds(home)

        assert main(["readyz"]) == 0
        report = json.loads(capsys.readouterr().out)
    finally:
        get_settings.cache_clear()
    assert report["ready"] is True
    assert {name: c["status"] for name, c in report["components"].items()} == {
        "warehouse": "ok", "source": "ok", "marts_freshness": "ok", "weekly_digest": "ok",
        "export": "never_run", "guardrails": "never_run", "experiments": "never_run",
    }


def test_readiness_lists_the_slugs_in_srm(tmp_path, instance):
    from models.experiment_results import HealthRow
    from resources.experiment_tables import replace_results

    warehouse = duckdb_warehouse(tmp_path / "wh.duckdb")
    create_all_marts(warehouse)
    record_mart_builds(instance)
    as_of = datetime(2026, 11, 26).date()
    replace_results(warehouse, [
        HealthRow("spring-offer", "a", "srm", 2, 19000, 0, 4.1e-13, as_of),
        HealthRow("neutral", "a", "ok", 2, 20100, 0, 0.48, as_of),
    ], [])
    report = collect_readiness(warehouse, demo_source(tmp_path), OPTIONS, instance)
    experiments = report.to_json()["components"]["experiments"]
    assert experiments == {
        "status": "degraded", "ready": True,
        "message": "sample ratio mismatch on spring-offer: check their assignment before reading their results",
        "srm_slugs": [{"slug": "spring-offer", "srm_p_value": 4.1e-13}],
    }
    assert report.ready
    replace_results(warehouse, [HealthRow("neutral", "a", "ok", 2, 20100, 0, 0.48, as_of)], [])
    ok = collect_readiness(warehouse, demo_source(tmp_path), OPTIONS, instance).component("experiments")
    assert (ok.status, ok.message) == ("ok", "no slug in sample ratio mismatch")
