"""What a dbt build prints while it runs: every line with `PRICING_OPS_VERBOSE=1` (`pricing-ops -v`),
else the lines a person acts on (models built, failures, warnings, the summary) and a progress line
with counts and a rate every few seconds, instead of one line per data test.

dagster-dbt writes each dbt event to `sys.stdout` (the CLI sends it to stderr; the UI keeps it in
the step's compute log), so the filter sits on `sys.stdout` for the duration of the build.
"""

from __future__ import annotations

import io
import os
import re
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager, redirect_stdout

import dagster as dg

VERBOSE_ENV = "PRICING_OPS_VERBOSE"
PROGRESS_EVERY_S = 5.0
# "12:00:01  3 of 41 PASS not_null_... [PASS in 0.05s]" / "... START test ..." / "... OK created ..."
_NODE_LINE = re.compile(r"\b(\d+) of (\d+) (START|PASS|OK|WARN|ERROR|FAIL|SKIP)\b(.*)")


def verbose() -> bool:
    return os.environ.get(VERBOSE_ENV, "").strip().lower() in ("1", "true", "yes")


class DbtConsole(io.TextIOBase):
    """A line filter in front of the real stdout that also counts finished nodes."""

    def __init__(self, target, context: dg.AssetExecutionContext | None, show_all: bool):
        self._target = target
        self._context = context
        self._show_all = show_all
        self._pending = ""
        self._started = time.monotonic()
        self._last_progress = self._started
        self.done = 0
        self.total = 0
        self.failed = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._pending += text
        while "\n" in self._pending:
            line, self._pending = self._pending.split("\n", 1)
            self._line(line)
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def _line(self, line: str) -> None:
        match = _NODE_LINE.search(line)
        show = self._show_all or match is None
        if match:
            self.total = max(self.total, int(match.group(2)))
            status, rest = match.group(3), match.group(4)
            if status != "START":
                self.done += 1
            if status in ("WARN", "ERROR", "FAIL"):
                self.failed += status != "WARN"
                show = True
            elif status == "OK" and " test " not in f" {rest} ":
                show = True  # a model or seed built: few, and what the run is for
        if show:
            self._target.write(line + "\n")
        now = time.monotonic()
        if not self._show_all and match and now - self._last_progress >= PROGRESS_EVERY_S:
            self._last_progress = now
            self._target.write(f"dbt build: {self.summary()}\n")
        self._target.flush()

    def summary(self) -> str:
        seconds = max(time.monotonic() - self._started, 1e-6)
        # Hooks are numbered apart from the nodes ("1 of 1 OK hook"): the larger count is the nodes'.
        text = f"{self.done} of {max(self.total, self.done)} nodes and hooks done ({self.done / seconds:.1f}/s)"
        return text + (f", {self.failed} failed" if self.failed else "")


@contextmanager
def dbt_console(context: dg.AssetExecutionContext | None = None) -> Iterator[DbtConsole]:
    """Filter dbt's console lines for the block (see the module docstring)."""
    console = DbtConsole(sys.stdout, context, show_all=verbose())
    with redirect_stdout(console):
        yield console
    if console._pending:
        console._line(console._pending)
