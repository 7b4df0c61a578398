"""Where dbt's files go: one parse per code version, one scratch folder per run, nothing left behind.

dbt spends most of an invocation parsing. It keeps a partial parse (`partial_parse.msgpack`) and
reuses it only when the command-line vars, the profile's connection keys and the project files are
what they were at the last parse. So:
- the project is parsed once per *code version* (hash of every project file, seeds included, and of
  the dbt versions) into `dbt_project/target/<version>/`, which the Dagster definitions read; a new
  version gets a new folder and the old ones are removed.
- dbt's partial parse also depends on the profile's values (the DuckDB path, the Postgres host and
  database): it is kept per warehouse in `DATA_DIR/dbt/<version>/`, seeded by that parse when it
  ran with the same settings, else by the first run.
- each run writes its artifacts and logs into a folder of its own under `DATA_DIR/dbt_runs/`,
  seeded with the cached partial parse (dagster-dbt copies it from `DBT_TARGET_PATH`); when the run
  ends, a partial parse it refreshed goes back to the cache and the folder is deleted.
Per-run values that change (the as-of date) reach dbt as environment variables, which dbt tracks
per file instead of discarding the whole parse.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import time
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliResource, DbtProject

# The dbt installed beside this interpreter (the venv's), whether or not the venv is on PATH.
DBT_EXECUTABLE = str(Path(sys.executable).parent / "dbt") if (Path(sys.executable).parent / "dbt").exists() else (
    shutil.which("dbt") or "dbt"
)
DBT_PROJECT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
PARSE_ROOT = DBT_PROJECT_DIR / "target"
PARTIAL_PARSE = "partial_parse.msgpack"
# Files that change what dbt parses. Seeds (csv) included: a new seed is a new node.
PROJECT_SUFFIXES = {".sql", ".yml", ".yaml", ".csv", ".md", ".py", ".jinja"}
PROJECT_SKIP = {"target", "logs", "dbt_packages"}
# A run folder this old is left over from a crashed process (a live run is minutes at most).
STALE_RUN_SECONDS = 6 * 3600


# Their versions change what a parse makes (the adapters bring macros of their own).
DBT_PACKAGES = ("dbt-core", "dbt-duckdb", "dbt-postgres", "dagster-dbt")


def code_version() -> str:
    """Hash of every file dbt parses and of the dbt versions: equal hashes parse to equal manifests."""
    digest = hashlib.sha256()
    for package in DBT_PACKAGES:
        digest.update(f"{package}={version(package)}\n".encode())
    for path in sorted(DBT_PROJECT_DIR.rglob("*")):
        rel = path.relative_to(DBT_PROJECT_DIR)
        if rel.parts[0] in PROJECT_SKIP or not path.is_file() or path.suffix not in PROJECT_SUFFIXES:
            continue
        digest.update(str(rel).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def vars_args(variables: Mapping[str, Any]) -> list[str]:
    """`--vars` exactly as every invocation of one parse passes it (dbt hashes the values)."""
    return ["--vars", json.dumps(dict(variables), sort_keys=True)]


def prepared_project(
    dbt_env: Mapping[str, str], variables: Mapping[str, Any], cache_dir: Path | None = None
) -> DbtProject:
    """The project with a manifest for this code version, parsed now if missing.

    The parse runs with the runs' environment and vars, and its partial parse seeds `cache_dir`
    (the warehouse's: dbt's partial parse holds only for the profile values it was made with).
    Parsed into a scratch folder and renamed into place: two processes starting at once both end
    with a whole manifest.
    """
    key = code_version()
    # One parse per adapter: the manifest records its adapter (the assets' kinds come from it), and
    # a DuckDB process must not read the one a PostgreSQL process parsed first.
    final = PARSE_ROOT / f"{key}-{dbt_env.get('PRICING_OPS_DBT_TARGET', 'duckdb')}"
    if not (final / "manifest.json").exists():
        scratch = PARSE_ROOT / f".{final.name}.{uuid.uuid4().hex[:8]}"
        try:
            with environment(dict(dbt_env)):
                DbtCliResource(project_dir=os.fspath(DBT_PROJECT_DIR), dbt_executable=DBT_EXECUTABLE).cli(
                    ["parse", "--quiet", *vars_args(variables)], target_path=scratch
                ).wait()
            if cache_dir is not None and not (cache_dir / key / PARTIAL_PARSE).exists():
                _keep_partial_parse(scratch / PARTIAL_PARSE, cache_dir / key / PARTIAL_PARSE)
            try:
                scratch.rename(final)
            except OSError:  # another process got there first: its manifest is the same
                pass
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
        remove_stale_parses(PARSE_ROOT, keep=key)
        if cache_dir is not None:
            remove_stale_parses(cache_dir, keep=key)
    return DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR, target_path=final)


def remove_stale_parses(root: Path, keep: str) -> None:
    """Parses of other code versions (each adapter's parse of `keep` stays), and the run folders
    older releases left in the checkout."""
    if not root.exists():
        return
    for child in root.iterdir():
        if child.name == keep or child.name.startswith((f"{keep}-", ".")):
            continue
        if child.is_dir():
            shutil.rmtree(child, ignore_errors=True)
        else:
            child.unlink(missing_ok=True)


@contextmanager
def run_folder(cache_dir: Path, runs_root: Path, run_id: str) -> Iterator[Path]:
    """A scratch target folder for one dbt invocation; afterwards its refreshed partial parse goes
    back to `cache_dir` (per code version) and the folder is deleted."""
    runs_root.mkdir(parents=True, exist_ok=True)
    _remove_stale_runs(runs_root)
    folder = runs_root / f"{run_id[:8]}-{uuid.uuid4().hex[:8]}"
    cache = cache_dir / code_version()
    cache.mkdir(parents=True, exist_ok=True)
    try:
        # dagster-dbt seeds the run folder with DBT_TARGET_PATH's partial parse.
        with environment({"DBT_TARGET_PATH": os.fspath(cache)}):
            yield folder
        _keep_partial_parse(folder / PARTIAL_PARSE, cache / PARTIAL_PARSE)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _keep_partial_parse(produced: Path, cached: Path) -> None:
    if not produced.exists():
        return
    cached.parent.mkdir(parents=True, exist_ok=True)
    if cached.exists() and cached.stat().st_size == produced.stat().st_size and (
        cached.read_bytes() == produced.read_bytes()
    ):
        return
    tmp = cached.with_name(f".{PARTIAL_PARSE}.{uuid.uuid4().hex[:8]}")
    shutil.copyfile(produced, tmp)
    os.replace(tmp, cached)


def _remove_stale_runs(runs_root: Path) -> None:
    cutoff = time.time() - STALE_RUN_SECONDS
    for child in runs_root.iterdir():
        try:
            if child.stat().st_mtime < cutoff:
                shutil.rmtree(child, ignore_errors=True)
        except FileNotFoundError:
            pass


@contextmanager
def environment(values: Mapping[str, str]) -> Iterator[None]:
    """Environment variables set for the duration of a block, then put back as they were."""
    saved = {key: os.environ.get(key) for key in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
