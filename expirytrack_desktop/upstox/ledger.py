"""Where the limiter records what was sent, so the budget survives restarts and is shared.

Upstox counts requests per *user*, not per process (DESIGN.md "Rate limits"): a process
started after a crash, or beside another one (GUI + scheduled CLI run), must honour what
was already spent. ``SqliteLedger`` keeps the send times in a small WAL database and decides
"may I send one more?" inside one ``BEGIN IMMEDIATE`` transaction, so two processes never
both take the last slot. ``MemoryLedger`` does the same in memory for tests and benchmarks.

A window is ``(limit, seconds)``. ``reserve(now, windows)`` either records ``now`` and returns
0.0, or records nothing and returns how long to wait before asking again.
"""

from __future__ import annotations

import bisect
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

# A reservation released exactly at the computed instant must not be refused by rounding.
_EPSILON = 1e-6
# Rows older than this are useless to any window we know (the longest is 30 minutes).
DEFAULT_KEEP_SECONDS = 3600.0
_PRUNE_EVERY = 256


class Ledger(Protocol):
    def reserve(self, now: float, windows: Sequence[tuple[int, float]]) -> float:
        """Record a send at ``now`` if every window has room; else return the wait (> 0)."""
        ...

    def counts(self, now: float, spans: Sequence[float]) -> list[int]:
        """Sends in ``(now - span, now]`` (and any later, after a clock step back) per span."""
        ...


def _wait_from(now: float, window: tuple[int, float], times_in_window: Sequence[float]) -> float:
    limit, span = window
    excess = len(times_in_window) - limit
    if excess < 0:
        return 0.0
    # The (excess+1)-th oldest send must leave the window before one more fits.
    return times_in_window[excess] + span - now + _EPSILON


class MemoryLedger:
    """In-process ledger (tests, benchmarks, or when no database path is configured)."""

    def __init__(self, keep_seconds: float = DEFAULT_KEEP_SECONDS) -> None:
        self._times: list[float] = []
        self._keep = keep_seconds
        self._lock = threading.Lock()
        self._since_prune = 0

    def reserve(self, now: float, windows: Sequence[tuple[int, float]]) -> float:
        with self._lock:
            wait = 0.0
            for window in windows:
                start = bisect.bisect_right(self._times, now - window[1])
                if len(self._times) - start >= window[0]:
                    wait = max(wait, _wait_from(now, window, self._times[start:]))
            if wait > 0:
                return wait
            bisect.insort(self._times, now)
            self._since_prune += 1
            if self._since_prune >= _PRUNE_EVERY:
                self._since_prune = 0
                horizon = max(self._keep, max(w for _, w in windows))
                del self._times[: bisect.bisect_right(self._times, now - horizon)]
            return 0.0

    def counts(self, now: float, spans: Sequence[float]) -> list[int]:
        with self._lock:
            return [len(self._times) - bisect.bisect_right(self._times, now - s) for s in spans]

    def close(self) -> None:
        """Nothing to release; present so both ledgers can be closed alike."""


class SqliteLedger:
    """Send times in a small SQLite file (WAL), shared by every process of this user.

    Each ``reserve`` is one short ``BEGIN IMMEDIATE`` transaction (read the counts of every
    window, decide, insert): the write lock makes check-and-insert atomic across processes.
    Calls are synchronous and take tens of microseconds (see bench/RESULTS.md); the only
    way they can block longer is another process holding the lock for as long.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        keep_seconds: float = DEFAULT_KEEP_SECONDS,
        busy_timeout_s: float = 10.0,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._keep = keep_seconds
        self._lock = threading.Lock()
        self._since_prune = 0
        self._conn = sqlite3.connect(
            str(self.path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("CREATE TABLE IF NOT EXISTS sends (ts REAL NOT NULL)")
        self._conn.execute("CREATE INDEX IF NOT EXISTS sends_ts ON sends(ts)")

    def reserve(self, now: float, windows: Sequence[tuple[int, float]]) -> float:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                wait = 0.0
                for limit, span in windows:
                    (used,) = conn.execute(
                        "SELECT COUNT(*) FROM sends WHERE ts > ?", (now - span,)
                    ).fetchone()
                    if used >= limit:
                        (oldest,) = conn.execute(
                            "SELECT ts FROM sends WHERE ts > ? ORDER BY ts LIMIT 1 OFFSET ?",
                            (now - span, used - limit),
                        ).fetchone()
                        wait = max(wait, oldest + span - now + _EPSILON)
                if wait <= 0:
                    conn.execute("INSERT INTO sends (ts) VALUES (?)", (now,))
                    self._since_prune += 1
                    if self._since_prune >= _PRUNE_EVERY:
                        self._since_prune = 0
                        horizon = max(self._keep, max(w for _, w in windows))
                        conn.execute("DELETE FROM sends WHERE ts <= ?", (now - horizon,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return wait

    def counts(self, now: float, spans: Sequence[float]) -> list[int]:
        with self._lock:
            query = "SELECT COUNT(*) FROM sends WHERE ts > ?"
            return [self._conn.execute(query, (now - s,)).fetchone()[0] for s in spans]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"SqliteLedger({str(self.path)!r})"
