"""One run of a schedule at a time: an OS file lock, and what happens when a run stalls.

The lock is the operating system's own (``flock`` on Linux and macOS, ``LockFileEx`` on
Windows, through the ``filelock`` package) on ``<data>/schedules/NAME.lock``: taking it is
one atomic step, so two runs started together can never both hold it, and the OS drops it
the moment its process ends, however it ends (a crash, ``kill -9``, a power cut): a lock
left by a dead run is simply free again, nothing to clean up.

Beside it, the holder writes ``NAME.lock.json`` (its pid, host and start time) for two
uses: a later run that finds the lock taken says who holds it, and a holder that has run
past the longest a run may take (:attr:`RunLock.stale_after`: the schedule's run limit plus
a grace period) is stalled, not slow: a run enforces that limit on itself
(``runner.run_collection``'s ``max_run`` and the watchdog in ``schedule run``), so a holder
still there after it is hung (suspended, stuck in the kernel). The later run then stops it
(SIGTERM, then SIGKILL after :data:`GRACE` seconds; on Windows ``TerminateProcess``) and
takes the lock over, so a stalled run cannot block the later ones for ever.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout

from expirytrack_desktop.fsutil import atomic_write_json

STALE_MARGIN = 600.0
"""Seconds past a run's own limit (and its watchdog's) before a later run calls it stalled."""
GRACE = 30.0
"""Seconds a stalled holder gets to exit after SIGTERM, and again after SIGKILL."""


class AlreadyRunning(Exception):
    """Another run of the same schedule holds the lock (who, since when: in the message)."""


@dataclass(frozen=True, slots=True)
class Holder:
    """What the lock's holder wrote about itself (``NAME.lock.json``)."""

    pid: int
    host: str
    started: float  # time.time() when it took the lock

    def describe(self, now: float) -> str:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.started))
        return f"pid {self.pid} on {self.host}, since {since} ({_span(now - self.started)})"


def stop_process(pid: int, *, wait: Callable[[], bool]) -> None:
    """Stop a hung run: SIGTERM, then SIGKILL when ``wait()`` did not see it go (POSIX).

    ``wait()`` returns True as soon as the lock is free (waiting at most :data:`GRACE`
    seconds). On Windows ``os.kill`` is ``TerminateProcess`` already. Gone already: fine.
    """
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGTERM)
    if wait() or sys.platform.startswith("win"):
        return
    with contextlib.suppress(OSError):
        os.kill(pid, signal.SIGKILL)


class RunLock:
    """``with RunLock(path, stale_after=...) as lock:`` — raises :class:`AlreadyRunning`.

    ``clock``, ``stop`` (stops a hung holder: ``stop(pid, wait=...)``), ``pid_alive`` and
    ``grace`` are injectable for tests. After entering, :attr:`took_over` names a stalled
    holder that was stopped, and :attr:`previous` a holder that died without releasing.
    """

    def __init__(
        self,
        path: Path,
        *,
        stale_after: float,
        clock: Callable[[], float] = time.time,
        stop: Callable[..., None] = stop_process,
        pid_alive: Callable[[int | None], bool] | None = None,
        grace: float = GRACE,
    ) -> None:
        from expirytrack_desktop.store.processes import pid_alive as _alive

        self.path = path
        self.info_path = path.with_name(path.name + ".json")
        self.stale_after = stale_after
        self._clock = clock
        self._stop = stop
        self._grace = grace
        self._alive = pid_alive or _alive
        self._lock = FileLock(str(path), timeout=0)
        self.took_over: Holder | None = None
        self.previous: Holder | None = None

    def holder(self) -> Holder | None:
        """The holder's note, ``None`` when absent or unreadable."""
        try:
            data: Any = json.loads(self.info_path.read_text(encoding="utf-8"))
            return Holder(int(data["pid"]), str(data["host"]), float(data["started"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _try(self, timeout: float) -> bool:
        try:
            self._lock.acquire(timeout=timeout, poll_interval=0.05)
        except Timeout:
            return False
        return True

    def __enter__(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self._try(0):
            self.previous = self.holder()  # a note left behind: that run died holding it
        else:
            self._take_over_or_raise()
        try:
            note = {"pid": os.getpid(), "host": socket.gethostname(), "started": self._clock()}
            atomic_write_json(self.info_path, note)
        except OSError:
            self._lock.release()
            raise
        return self

    def _take_over_or_raise(self) -> None:
        now = self._clock()
        first = self.holder()
        if first is not None and first.host == socket.gethostname() and not self._alive(first.pid):
            first = None  # the note of a run that died: the holder has not written its own yet
        if first is None:
            raise AlreadyRunning("already running (a run that has just started)")
        if now - first.started <= self.stale_after:
            raise AlreadyRunning(f"already running ({first.describe(now)})")
        # The note is read again after a second failed try: a note that changed belongs to a
        # run that took the lock in between (not stalled). A holder that is gone, or on another
        # host, cannot be the one holding it: whoever does has not written its note yet.
        if self._try(0):
            self.previous = first
            return
        second = self.holder()
        if second != first or first.host != socket.gethostname() or not self._alive(first.pid):
            raise AlreadyRunning(f"already running ({(second or first).describe(now)})")
        self._stop(first.pid, wait=lambda: self._try(self._grace))
        if not self._lock.is_locked and not self._try(self._grace):
            raise AlreadyRunning(
                f"a stalled run ({first.describe(now)}) did not stop; stop it by hand"
            )
        self.took_over = first

    def __exit__(self, *exc: object) -> None:
        if self._lock.is_locked:
            with contextlib.suppress(OSError):
                self.info_path.unlink()
            self._lock.release()


def _span(seconds: float) -> str:
    seconds = max(0.0, seconds)
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
