"""The manifest the definitions load is re-parsed when a seed is added or edited (a seed dbt builds
but the manifest lacks fails the refresh with a KeyError in dagster-dbt)."""

from __future__ import annotations

import os
import time

from assets.dbt import DBT_PROJECT_DIR, manifest_is_stale


def _project(tmp_path):
    root = tmp_path / "dbt_project"
    for folder in ("models", "macros", "tests", "seeds"):
        (root / folder).mkdir(parents=True)
    (root / "dbt_project.yml").write_text("name: p\n")
    (root / "models" / "m.sql").write_text("select 1")
    manifest = root / "target" / "manifest.json"
    manifest.parent.mkdir()
    manifest.write_text("{}")
    past = time.time() - 100
    for path in [*root.rglob("*"), root]:
        os.utime(path, (past, past))
    os.utime(manifest, (past + 50, past + 50))
    return root, manifest


def test_a_new_or_edited_seed_makes_the_manifest_stale(tmp_path):
    root, manifest = _project(tmp_path)
    assert not manifest_is_stale(root, manifest)
    # A new seed file (the folder's time moves with it).
    seed = root / "seeds" / "experiment_allocations.csv"
    seed.write_text("slug,variant_key,weight\n")
    assert manifest_is_stale(root, manifest)
    manifest.write_text("{}")  # re-parsed
    assert not manifest_is_stale(root, manifest)
    # An edit of that seed.
    future = time.time() + 5
    seed.write_text("slug,variant_key,weight\ns,a,1\n")
    os.utime(seed, (future, future))
    assert manifest_is_stale(root, manifest)
    # A seed removed: the folder changed.
    manifest.write_text("{}")
    os.utime(manifest, (future + 1, future + 1))
    seed.unlink()
    os.utime(root / "seeds", (future + 2, future + 2))
    assert manifest_is_stale(root, manifest)


def test_the_project_ships_the_allocations_seed_header_only(dbt_manifest):
    import json

    seed = DBT_PROJECT_DIR / "seeds" / "experiment_allocations.csv"
    assert seed.read_text() == "slug,variant_key,weight\n"
    nodes = json.loads(dbt_manifest.read_text())["nodes"]
    assert "seed.pricing_ops.experiment_allocations" in nodes
