"""Why a dbt build failed, in one line: the failing node (what it is, what it tests) and the
database's own message, on which warehouse. dagster-dbt's error says only "The dbt CLI process with
command ... failed", which is what every run-failure alert and `pricing-ops refresh` printed for a
failing test, a bad seed, a restarted or unreachable PostgreSQL alike.

The node results come from dbt's `run_results.json`; when dbt stopped before any node ran (no
connection to the warehouse, a failing `on-run-start` hook) from the errors dbt logged.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

# Node statuses that fail a build (a `warn` test does not).
FAILED = ("error", "fail", "runtime error")
# "Database Error in model stg_raw__orders (models/staging/stg_raw__orders.sql)", or a bare
# "Database Error" line (dbt's error before any node ran) -> "Database Error"
_HEADER = re.compile(r"^\s*(?P<kind>[A-Z][A-Za-z]* Error)(?: in (?:\w+ )*\S+(?: \([^)]*\))?)?\s*$")
# Longest database message kept: DuckDB's can run to a page; the compute log keeps all of it.
MESSAGE_LIMIT = 400
# dbt's pointers to files, not causes.
_NOISE = re.compile(r"^\s*(compiled code at |See |> in |called by |Encountered an error:?\s*$)")


def read_run_results(target: Path) -> dict[str, Any] | None:
    """dbt's `run_results.json` in the invocation's target folder, None when dbt wrote none."""
    path = target / "run_results.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def dbt_failure_line(
    run_results: Mapping[str, Any] | None,
    logged_errors: Sequence[str],
    nodes: Mapping[str, Any],
    where: str,
    exit_code: int | None = None,
) -> str:
    """The cause of a failed dbt build in one line (see the module docstring). `nodes` is the
    manifest's (to say which model and column a test checks); `where` names the warehouse."""
    results = (run_results or {}).get("results") or []
    failed = [r for r in results if str(r.get("status", "")).lower() in FAILED]
    if failed:
        first = failed[0]
        unique_id = str(first.get("unique_id", ""))
        message = database_message(str(first.get("message") or "")) or "(no message)"
        more = f" (and {len(failed) - 1} more failed node(s))" if len(failed) > 1 else ""
        return f"dbt {node_label(unique_id, nodes)} failed on {where}: {message}{more}"
    messages = [m for m in (database_message(text) for text in logged_errors) if m]
    if messages:
        return f"dbt build on {where} failed: {messages[0]}"
    code = f" (exit code {exit_code})" if exit_code is not None else ""
    return f"dbt build on {where} failed{code}; its output is in the step's compute log"


def node_label(unique_id: str, nodes: Mapping[str, Any]) -> str:
    """`model stg_raw__orders`, `seed experiment_allocations`, `hook on-run-start`, or `test
    unique_x (model int_x, column entry_key)`."""
    kind, _, rest = unique_id.partition(".")
    name = rest.split(".", 1)[-1] if rest else unique_id
    if kind == "operation":
        hook = re.search(r"on-run-(start|end)", unique_id)
        return f"hook {hook.group(0)}" if hook else f"operation {name}"
    if kind != "test":
        return f"{kind} {name}" if rest else unique_id
    node = nodes.get(unique_id, {})
    name = node.get("name") or name.rsplit(".", 1)[0]
    attached = str(node.get("attached_node") or "")
    about = []
    if attached:
        about.append(f"{attached.split('.', 1)[0]} {attached.rsplit('.', 1)[-1]}")
    columns = (node.get("test_metadata") or {}).get("kwargs", {}).get("combination_of_columns")
    if node.get("column_name"):
        about.append(f"column {node['column_name']}")
    elif isinstance(columns, list) and columns:
        about.append(f"columns {', '.join(map(str, columns))}")
    return f"test {name}" + (f" ({', '.join(about)})" if about else "")


def database_message(text: str) -> str:
    """A dbt error message as one line: its kind ("Database Error") and the database's words,
    without dbt's header naming the file and its pointers to compiled code."""
    kind = ""
    parts = []
    for line in text.strip().splitlines():
        header = _HEADER.match(line)
        if header and not kind:
            kind = header.group("kind")
            continue
        if not line.strip() or _NOISE.match(line):
            continue
        parts.append(line.strip())
    body = " ".join(" ".join(parts).split())
    text = f"{kind}: {body}" if kind and body else body or kind
    return text if len(text) <= MESSAGE_LIMIT else text[: MESSAGE_LIMIT - 1] + "…"
