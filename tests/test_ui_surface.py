"""What the Dagster UI shows of the definitions, and what the commands load: one code location name
everywhere, owners and code links on every asset, descriptions on every launchpad field and
resource, the experiment tables named and held to a freshness policy, nothing unserializable, and
no dbt in the commands that build nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import dagster as dg
import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def defs(tmp_path_factory, dbt_manifest) -> dg.Definitions:
    from orchestration.assembly import build_definitions
    from orchestration.settings import Settings

    return build_definitions(Settings(_env_file=None, DATA_DIR=tmp_path_factory.mktemp("surface") / "data"))


def test_the_ui_and_the_cli_name_the_code_location_alike():
    from orchestration.code_location import CODE_LOCATION_NAME, DEFINITIONS_MODULE, remote_job_origin

    tool = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]
    assert tool["dg"]["project"]["code_location_name"] == CODE_LOCATION_NAME  # `dg dev`
    assert tool["dg"]["project"]["code_location_target_module"] == DEFINITIONS_MODULE
    assert tool["dagster"]["code_location_name"] == CODE_LOCATION_NAME  # `dagster dev`
    assert tool["dagster"]["module_name"] == DEFINITIONS_MODULE
    [entry] = yaml.safe_load((ROOT / "workspace.yaml").read_text())["load_from"]
    assert entry["python_module"]["location_name"] == CODE_LOCATION_NAME
    origin = remote_job_origin("refresh")
    assert (origin.location_name, origin.repository_origin.repository_name, origin.job_name) == (
        CODE_LOCATION_NAME, "__repository__", "refresh")


def test_every_asset_has_owners_a_code_link_and_nothing_unserializable(defs):
    graph = defs.resolve_asset_graph()
    for key in graph.get_all_asset_keys():
        node = graph.get(key)
        assert node.owners, key
        references = node.metadata["dagster/code_references"].code_references
        assert references and all(Path(r.file_path).is_file() for r in references), key
        assert "dagster_dbt/project" not in node.metadata, key
        for name, value in node.metadata.items():
            assert "(unserializable)" not in str(getattr(value, "value", "")), (key, name)
    # dbt models: owners from their dbt group, and their SQL file among the links.
    mart = graph.get(dg.AssetKey("experiment_slug_summary"))
    assert mart.owners == ["analytics@smplat.local"]
    files = {Path(r.file_path).name for r in mart.metadata["dagster/code_references"].code_references}
    assert "experiment_slug_summary.sql" in files
    assert graph.get(dg.AssetKey(["staging", "stg_raw__orders"])).owners == ["data-platform@smplat.local"]


def _undescribed(config_type, path: tuple[str, ...] = ()) -> list[str]:
    out = []
    for name, field in (getattr(config_type, "fields", None) or {}).items():
        here = (*path, name)
        leaf = not getattr(field.config_type, "fields", None)
        # A field a person fills in (under an op's `config`; an op without config has none).
        if leaf and not field.description and "config" in path:
            out.append(".".join(here))
        out += _undescribed(field.config_type, here)
    return out


def test_every_launchpad_field_and_resource_is_described(defs):
    repository = defs.get_repository_def()
    for job in repository.get_all_jobs():
        ops = job.run_config_schema.config_type.fields.get("ops")
        assert not ops or _undescribed(ops.config_type) == [], job.name
    dbt_config = defs.resolve_job_def("refresh").run_config_schema.config_type.fields["ops"].config_type.fields[
        "pricing_dbt_models"].config_type.fields["config"].config_type.fields
    assert set(dbt_config) >= {"as_of_date", "full_refresh", "force"}
    for key, resource in repository.get_top_level_resources().items():
        assert resource.description and len(resource.description) > 40, key
        assert "dagster-dbt" not in resource.description, key  # written for its users, not its authors
        fields = getattr(resource.config_schema.config_type, "fields", None) or {} if resource.config_schema else {}
        assert [name for name, field in fields.items() if not field.description] == [], key


def test_the_experiment_tables_are_named_and_held_to_the_marts_freshness(defs):
    graph = defs.resolve_asset_graph()
    mart_policy = graph.get(dg.AssetKey("experiment_variant_metrics")).freshness_policy
    for name in ("experiment_health", "experiment_results"):
        node = graph.get(dg.AssetKey(name))
        assert node.metadata["dagster/table_name"] == f"analytics.{name}"
        assert node.freshness_policy is not None and node.freshness_policy == mart_policy


def test_the_marts_keys_downstream_assets_use_are_dagster_dbts(defs):
    from dagster_dbt import get_asset_key_for_model

    from assets.dbt_keys import mart_key
    from models.marts import MART_TABLES

    [dbt] = [a for a in defs.assets if isinstance(a, dg.AssetsDefinition) and a.op.name == "pricing_dbt_models"]
    assert {m: get_asset_key_for_model([dbt], m) for m in MART_TABLES} == {m: mart_key(m) for m in MART_TABLES}


def test_commands_that_build_nothing_import_no_dbt(tmp_path):
    # readyz and a digest, as the CLI runs them, in a fresh interpreter on a fresh data folder.
    script = (
        "import json, sys\n"
        "from orchestration.cli import main\n"
        "codes = [main(['readyz']), main(['digest', 'slack'])]\n"
        "loaded = sorted(m for m in sys.modules if m.split('.')[0] in ('dbt', 'dagster_dbt')\n"
        "                or m in ('assets.dbt', 'assets.dbt_project', 'orchestration.pipeline'))\n"
        "print(json.dumps({'codes': codes, 'loaded': loaded}))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DAGSTER_", "PRICING_OPS_"))}
    env["DATA_DIR"] = str(tmp_path / "data")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=300, check=False)
    assert out.returncode == 0, out.stderr[-3000:]
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["codes"] == [1, 0]  # an empty data folder is not ready; the digest is sent
    assert result["loaded"] == []
    assert list((tmp_path / "data" / "outbox").glob("slack-*.json"))
