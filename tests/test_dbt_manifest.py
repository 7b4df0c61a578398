"""The allocations seed ships header only and is in the manifest the definitions load. (That a seed
added or edited re-parses the project: tests/test_dbt_project_files.py.)"""

from __future__ import annotations

from assets.dbt_project import DBT_PROJECT_DIR


def test_the_project_ships_the_allocations_seed_header_only(dbt_manifest):
    import json

    seed = DBT_PROJECT_DIR / "seeds" / "experiment_allocations.csv"
    assert seed.read_text() == "slug,variant_key,weight\n"
    nodes = json.loads(dbt_manifest.read_text())["nodes"]
    assert "seed.pricing_ops.experiment_allocations" in nodes
