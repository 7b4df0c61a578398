"""Benchmark: how soon each `pricing-ops` command that builds nothing starts its work, beside `--help`.

    uv run python bench/bench_cli_startup.py                          # this checkout
    uv run python bench/bench_cli_startup.py --baseline-ref main~3    # and a git ref side by side

Each command runs as a whole process, 3 times (median; with a baseline, the two take turns on every
command), on a data folder made once by
`pricing-ops demo --events 20000`. For a command that runs a job the figure is the time from the
process start to its run's start (the run's `start_time` in the Dagster instance: definitions
loaded, run created, first step about to begin); the whole process is shown beside it. `readyz` and
`--help` answer within the process: their figure is the whole process. Targets (issue 20, quiet
machine): `readyz` < 1.5 s, the others start their work < 2.5 s. `--baseline-ref` runs the same
commands from `git archive <ref>` (same interpreter and packages) on a copy of the data folder;
without it the baseline column holds the figures measured before this work (quiet machine).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# Measured before issue 20 on a quiet machine (../shared/performance-notes.md): whole process, s.
BEFORE = {"--help": 1.6, "readyz": 6.8, "digest email": 7.1}
COMMANDS = [
    ("--help", ["--help"], None),
    ("readyz", ["readyz"], 1.5),
    ("digest slack", ["digest", "slack"], 2.5),
    ("digest email", ["digest", "email"], 2.5),
    ("export", ["export", "--sink", "file"], 2.5),
    ("guardrails followup", ["guardrails", "followup", "--provider", "prv_001", "--action", "note",
                             "--actor", "bench", "--notes", "start-up benchmark"], 2.5),
    # On the embedded default it refuses in one line (a PostgreSQL role): all start-up, no work.
    ("warehouse grant-bi-reader", ["warehouse", "grant-bi-reader"], 2.5),
]


def _run_start(data_dir: Path, since: float) -> float | None:
    """The start time of the latest run created after `since` in the data folder's instance."""
    import dagster as dg
    from dagster._core.storage.dagster_run import RunsFilter

    os.environ["DAGSTER_HOME"] = str(data_dir / "dagster_home")
    with dg.DagsterInstance.get() as instance:
        records = instance.get_run_records(
            filters=RunsFilter(created_after=datetime.fromtimestamp(since, UTC)), limit=1
        )
    return records[0].start_time if records and records[0].start_time else None


def measure(code_dir: Path, data_dir: Path, args: list[str]) -> tuple[float, float | None]:
    """(whole process s, process start to run start s or None) of one command."""
    env = {**os.environ, "DATA_DIR": str(data_dir), "PYTHONPATH": str(code_dir)}
    env.pop("DAGSTER_HOME", None)
    launched = time.time()
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", "import sys; from orchestration.cli import main; sys.exit(main())", *args],
        cwd=code_dir, env=env, capture_output=True, text=True, check=False,
    )
    whole = time.perf_counter() - started
    if out.returncode not in (0, 1):
        sys.stderr.write(out.stderr[-3000:])
        raise SystemExit(f"pricing-ops {' '.join(args)}: exit {out.returncode}")
    run_start = _run_start(data_dir, launched)
    return whole, (run_start - launched) if run_start else None


def bench(dirs: dict[str, tuple[Path, Path]], rounds: int) -> dict[str, dict[str, tuple[float, float | None]]]:
    """Each command of each checkout (name -> (code, data folder)), the checkouts taking turns on
    every command of every round: a load that comes and goes weighs on both alike."""
    samples: dict[str, dict[str, list]] = {name: {label: [] for label, _, _ in COMMANDS} for name in dirs}
    for _ in range(rounds):
        for label, args, _ in COMMANDS:
            for name, (code_dir, data_dir) in dirs.items():
                samples[name][label].append(measure(code_dir, data_dir, args))
    out: dict[str, dict[str, tuple[float, float | None]]] = {}
    for name, by_label in samples.items():
        out[name] = {}
        for label, runs in by_label.items():
            starts = [s[1] for s in runs if s[1] is not None]
            out[name][label] = (statistics.median(s[0] for s in runs), statistics.median(starts) if starts else None)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], epilog=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=20_000, help="demo events of the data folder")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--baseline-ref", default=None, help="a git ref to measure side by side (git archive)")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench_cli_startup_"))
    try:
        data = root / "data"
        env = {**os.environ, "DATA_DIR": str(data)}
        env.pop("DAGSTER_HOME", None)
        print(f"data folder: pricing-ops demo --events {args.events} ...", flush=True)
        subprocess.run([str(Path(sys.executable).parent / "pricing-ops"), "demo", "--events", str(args.events)],
                       cwd=ROOT, env=env, check=True, capture_output=True)
        dirs = {"now": (ROOT, data)}
        if args.baseline_ref:
            base_code = root / "baseline"
            base_code.mkdir()
            archive = subprocess.run(["git", "archive", args.baseline_ref], cwd=ROOT, capture_output=True, check=True)
            subprocess.run(["tar", "-x", "-C", str(base_code)], input=archive.stdout, check=True)
            shutil.copytree(data, root / "data_baseline")
            dirs["baseline"] = (base_code, root / "data_baseline")
        figures = bench(dirs, args.rounds)
        now, before = figures["now"], figures.get("baseline", {})
        base_label = f"{args.baseline_ref} (now)" if args.baseline_ref else "before (quiet)"
        print(f"\n{'command':<28} {'starts work':>12} {'whole':>8}   {base_label:>18}   target")
        for label, _, target in COMMANDS:
            whole, start = now[label]
            figure = start if start is not None else whole
            if label in before:
                b_whole, b_start = before[label]
                base = f"{b_start if b_start is not None else b_whole:6.2f} s"
            else:
                base = f"{BEFORE[label]:6.2f} s" if label in BEFORE else "-"
            verdict = "" if target is None else (f"< {target} s " + ("met" if figure < target else "NOT met"))
            print(f"{label:<28} {figure:10.2f} s {whole:6.2f} s   {base:>18}   {verdict}", flush=True)
        print(f"\n(--help answers in {now['--help'][0]:.2f} s: the floor of any command on this machine now; "
              f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
