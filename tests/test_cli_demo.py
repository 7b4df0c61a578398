"""The README's main job, as a person runs it: `pricing-ops demo` in a fresh DATA_DIR, then again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PRICING_OPS = Path(sys.executable).parent / "pricing-ops"


def run_cli(args: list[str], data_dir: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DAGSTER_")}
    env.update({"DATA_DIR": str(data_dir), "TZ": "Asia/Kolkata"})
    return subprocess.run([str(PRICING_OPS), *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)


def test_demo_builds_every_mart_and_writes_exports_and_digests_and_is_safe_twice(tmp_path):
    data = tmp_path / "data"
    first = run_cli(["demo", "--events", "3000"], data)
    assert first.returncode == 0, first.stderr[-4000:]
    for mart in ("onboarding_pricing_experiment_segments", "experiment_conversion_snapshot", "provider_guardrail_status"):
        line = next(line for line in first.stderr.splitlines() if f"analytics.{mart}:" in line)
        assert int(line.rsplit(":", 1)[1].split()[0]) > 0, line
    exports = list((data / "exports").glob("*.ndjson"))
    assert exports and all(p.stat().st_size > 0 for p in exports)
    cursor = json.loads((data / "onboarding_export_cursor.json").read_text())
    assert cursor["rowsExported"] > 0 and cursor["cursor"].endswith("Z")
    outbox = data / "outbox"
    slack = [json.loads(p.read_text()) for p in outbox.glob("*.json")]
    assert any(":moneybag:" in json.dumps(m) for m in slack)  # the automation digest
    assert any(":warning: Guardrail alert for" in m["text"] for m in slack)  # the demo has critical providers
    assert list(outbox.glob("*.eml"))
    assert "where everything is" in first.stderr

    # Safe to run twice: nothing new to export, no window alerted twice, digests already sent.
    sent = sorted(p.name for p in outbox.iterdir())
    second = run_cli(["demo"], data)
    assert second.returncode == 0, second.stderr[-4000:]
    assert json.loads((data / "onboarding_export_cursor.json").read_text())["rowsExported"] == cursor["rowsExported"]
    assert sorted(p.name for p in outbox.iterdir()) == sent
