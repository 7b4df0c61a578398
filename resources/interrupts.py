"""Stopping within seconds when the process is asked to (SIGTERM, SIGINT), even while a database
driver blocks in native code.

Python runs a signal handler only between bytecodes of the main thread. While a driver waits in
native code (ADBC waiting for a lock on a source table, DuckDB pulling an Arrow stream, libpq
waiting for a reply) the handler waits too, and with it Dagster's interruption of the run: a
refresh blocked on a locked source table ignored SIGTERM until the lock went. The C-level handler
does write the signal number to the process's wakeup fd at once; a watcher thread reading it
cancels every statement registered here as in flight (`cancel_on_signal`: a libpq cancel request,
DuckDB's interrupt). The blocked call then returns with an error, the Python handler runs and the
run stops (Dagster raises its interruption in the step). Every write is a transaction that is not
committed then: nothing is half-written.
"""

from __future__ import annotations

import itertools
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

WATCHED = (signal.SIGTERM, signal.SIGINT)
# A cancel request to a server that does not answer gives up after this (the process is stopping).
CANCEL_TIMEOUT_S = 5.0

_lock = threading.Lock()
_cancels: dict[int, Callable[[], object]] = {}
_keys = itertools.count()
_received: list[int] = []
_installed: list[bool] = []


@contextmanager
def cancel_on_signal(cancel: Callable[[], object]) -> Iterator[None]:
    """Within the block, a SIGTERM or SIGINT calls `cancel` (from another thread: it must be safe to
    call concurrently with the blocked call, as libpq's cancel request and DuckDB's interrupt are)."""
    key = next(_keys)
    with _lock:
        _cancels[key] = cancel
    try:
        yield
    finally:
        with _lock:
            _cancels.pop(key, None)


def received_signal() -> str | None:
    """The name of the last stop signal the watcher saw (`SIGTERM`), or None."""
    return signal.Signals(_received[-1]).name if _received else None


def install_signal_watcher() -> bool:
    """Start the watcher (main thread only; once per process). SIGTERM without a Python handler gets
    SIGINT's (KeyboardInterrupt), as Dagster maps it during a run, so it always ends in Python's
    hands and not in a silent kill. Returns False when the wakeup fd is someone else's."""
    if _installed or threading.current_thread() is not threading.main_thread():
        return bool(_installed)
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, signal.getsignal(signal.SIGINT))
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    previous = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)
    if previous != -1:  # an event loop owns it: leave it so
        signal.set_wakeup_fd(previous)
        reader.close()
        writer.close()
        return False
    _installed.append(True)
    # Both ends live as long as the process (the fd must stay valid for the C handler).
    threading.Thread(target=_watch, args=(reader, writer), name="pricing-ops-signal-watcher", daemon=True).start()
    return True


def _watch(reader: socket.socket, _writer: socket.socket) -> None:
    while True:
        try:
            data = reader.recv(64)
        except OSError:
            return
        if not data:
            return
        for signum in data:
            if signum in WATCHED:
                _received.append(signum)
                cancel_all()


def cancel_all() -> None:
    """Cancel every registered in-flight statement (a failed cancel is not this thread's to raise)."""
    with _lock:
        cancels = list(_cancels.values())
    for cancel in cancels:
        try:
            cancel()
        except Exception:  # noqa: BLE001, S110 - the statement may have just ended; the run stops anyway
            pass
