"""dbt's files: parsed once per code version, run folders under DATA_DIR removed after each run, and
a project that changes under running definitions (a seed added after start-up) does not break the
next refresh. On a copy of the dbt project, so the suite's other tests keep their parse."""

from __future__ import annotations

import shutil

import dagster as dg
import pipeline_dataset as ds
import pytest
from handmade_source import write_duckdb_source

import assets.dbt_project as dbt_files

pytestmark = pytest.mark.xdist_group("dbt_project_files")


@pytest.fixture
def project_copy(tmp_path, monkeypatch):
    copy = tmp_path / "dbt_project"
    shutil.copytree(dbt_files.DBT_PROJECT_DIR, copy, ignore=shutil.ignore_patterns("target", "logs"))
    monkeypatch.setattr(dbt_files, "DBT_PROJECT_DIR", copy)
    monkeypatch.setattr(dbt_files, "PARSE_ROOT", copy / "target")
    return copy


def test_code_version_follows_every_project_file_seeds_included(project_copy):
    before = dbt_files.code_version()
    assert dbt_files.code_version() == before
    (project_copy / "target" / "junk.sql").parent.mkdir(exist_ok=True)
    (project_copy / "target" / "junk.sql").write_text("select 1")  # build output: not code
    assert dbt_files.code_version() == before
    (project_copy / "seeds").mkdir(exist_ok=True)
    (project_copy / "seeds" / "a_seed.csv").write_text("k,v\n1,2\n")
    assert dbt_files.code_version() != before


def test_refreshes_leave_no_run_folder_and_survive_a_seed_added_after_start(project_copy, make_settings):
    from orchestration.definitions import build_definitions

    settings = make_settings()
    write_duckdb_source(settings.demo_source_path, ds.SOURCE)
    defs = build_definitions(settings)
    job = defs.resolve_job_def("refresh")
    config = {"ops": {"pricing_dbt_models": {"config": {"as_of_date": ds.AS_OF}}}}
    with dg.instance_for_test() as instance:
        assert job.execute_in_process(instance=instance, run_config=config).success
        loaded = dbt_files.code_version()
        # A seed lands in the project while the definitions stay loaded (a `dagster dev` session).
        (project_copy / "seeds").mkdir(exist_ok=True)
        (project_copy / "seeds" / "late_seed.csv").write_text("slug,owner\nspring-offer,pricing\n")
        result = job.execute_in_process(instance=instance, run_config=config)
        assert result.success
        messages = [entry.user_message for entry in instance.all_logs(result.run_id)]
    assert any("late_seed" in m and "reload the code location" in m for m in messages)
    # Nothing left of either run: no run folder under DATA_DIR, one parse (the loaded code version,
    # for DuckDB) in the project; partial-parse caches for the loaded and the changed version only (the next
    # load parses the changed one and removes the other).
    assert list((settings.data_dir / "dbt_runs").iterdir()) == []
    assert [p.name for p in (project_copy / "target").iterdir()] == [f"{loaded}-duckdb"]
    assert {p.name for p in (settings.data_dir / "dbt").iterdir()} == {loaded, dbt_files.code_version()}


def test_warehouse_jobs_run_in_process_and_dbt_keeps_its_partial_parse(make_settings, capsys):
    """The CLI's jobs and the UI's ad-hoc materializations run their steps in the run's process
    (one writer anyway); a run with new per-run values (the as-of date) reuses dbt's partial parse
    instead of parsing the project again."""
    from datetime import date, timedelta

    from orchestration.definitions import build_definitions

    settings = make_settings()
    write_duckdb_source(settings.demo_source_path, ds.SOURCE)
    defs = build_definitions(settings)
    for job_name in ("refresh", "guardrail_evaluation"):
        assert defs.resolve_job_def(job_name).executor_def.name == "in_process", job_name
    assert defs.resolve_implicit_global_asset_job_def().executor_def.name == "in_process"

    job = defs.resolve_job_def("refresh")
    next_day = (date.fromisoformat(ds.AS_OF) + timedelta(days=1)).isoformat()
    outputs = []
    with dg.instance_for_test() as instance:
        for as_of in (ds.AS_OF, next_day):
            config = {"ops": {"pricing_dbt_models": {"config": {"as_of_date": as_of}}}}
            assert job.execute_in_process(instance=instance, run_config=config).success
            outputs.append(capsys.readouterr().out)
    assert all("Running with dbt" in out for out in outputs)  # both runs started dbt
    assert "Unable to do partial parsing" not in outputs[1], outputs[1][:2000]
