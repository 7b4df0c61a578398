"""The dbt project's hygiene: sqlfluff's style on every model, one incremental mechanism (models state
their key; no incremental hooks, no `-- depends_on` comments, upstreams from the graph), and
staging models that read only sources and staging models."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "dbt_project" / "models"


def test_sqlfluff_lints_every_model_clean():
    # The config (dbt_project/.sqlfluff) and the models it reads, as a person runs it.
    out = subprocess.run(
        [sys.executable, "-m", "sqlfluff", "lint", "dbt_project/models", "--format", "json", "--nocolor"],
        cwd=ROOT, capture_output=True, text=True, check=False, timeout=300,
    )
    files = json.loads(out.stdout)
    linted = {Path(f["filepath"]).name for f in files}
    assert linted == {p.name for p in MODELS.rglob("*.sql")}, "some model was not linted"
    problems = [f"{f['filepath']}:{v['start_line_no']}: {v['code']} {v['description']}"
                for f in files for v in f["violations"]]
    assert problems == [], "\n".join(problems)
    assert out.returncode == 0, out.stderr[-2000:]


def test_incremental_models_state_their_key_and_nothing_else():
    sql = {path.stem: path.read_text() for path in MODELS.rglob("*.sql")}
    assert not [name for name, text in sql.items() if re.search(r"--\s*depends_on", text)]
    assert not [name for name, text in sql.items() if re.search(r"pre_hook|post_hook", text)]
    incremental = {name for name, text in sql.items() if "materialized='incremental" in text}
    assert incremental == {name for name, text in sql.items() if "materialized='incremental_by_key'" in text}
    assert len(incremental) >= 12
    for name in incremental:
        assert "unique_key=" in sql[name], name
        # No watermark, upstream name or clamp written in a model: the materialization has them.
        assert not re.search(r"watermark|incremental_state|record_|delete_touched", sql[name]), name


def test_staging_models_read_no_intermediate_or_mart(dbt_manifest):
    nodes = json.loads(dbt_manifest.read_text())["nodes"]
    layer = {uid: node["fqn"][1] for uid, node in nodes.items() if node["resource_type"] == "model"}
    reads = {
        node["name"]: sorted(nodes[dep]["name"] for dep in node["depends_on"]["nodes"] if layer.get(dep) not in
                             (None, "staging"))
        for uid, node in nodes.items() if layer.get(uid) == "staging"
    }
    assert {name: deps for name, deps in reads.items() if deps} == {}
    assert "stg_raw__pricing_experiment_exposures" in reads
