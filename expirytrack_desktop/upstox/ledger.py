"""Where the limiter records what was sent, so the budget survives restarts and is shared.

Upstox counts requests per *user*, not per process (docs/upstox-api.md, "Rate limits"): a process
started after a crash, or beside another one (GUI + scheduled CLI run), must honour what
was already spent. ``SqliteLedger`` keeps the sent_requests in a small WAL database and decides
"may I send one more?" inside one ``BEGIN IMMEDIATE`` transaction, so two processes never
both take the last slot. ``MemoryLedger`` does the same in memory for tests and benchmarks.

Why a send has an *end*: the server counts a request when it arrives, which is some time
between our send and our receipt of the answer. So a request occupies every window from
its send until its answer (``complete``) -- while in flight it counts as "may still
arrive". Then no window of the server's, however late or bunched the arrivals, can hold
more than the limit, whatever the latency. An answer never recorded (crash, a caller that
forgot) is assumed to have arrived ``hold_s`` seconds after the send.

A window is ``(limit, seconds)``. ``reserve(now, windows)`` either records a send at ``now``
and returns its ticket, or records nothing and says how long to wait.
"""

from __future__ import annotations

import bisect
import itertools
import sqlite3
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple, Protocol

# A reservation released exactly at the computed instant must not be refused by rounding.
_EPSILON = 1e-6
# Rows older than this are useless to any window we know (the longest is 30 minutes).
DEFAULT_KEEP_SECONDS = 3600.0
# How long an unanswered send is assumed to be possibly still on its way to the server.
DEFAULT_HOLD_SECONDS = 60.0
_PRUNE_EVERY = 256


class Reservation(NamedTuple):
    ticket: int | None  # None: refused, wait and ask again
    wait: float  # seconds until a slot frees if nothing else changes (0.0 when granted)
    on_inflight: bool = False  # the wait ends early if an in-flight request is answered


class Ledger(Protocol):
    def reserve(self, now: float, windows: Sequence[tuple[int, float]]) -> Reservation:
        """Record a send at ``now`` if every window has room; else say how long to wait."""
        ...

    def complete(self, ticket: int, now: float) -> None:
        """The answer to ``ticket`` arrived at ``now``: it stops occupying later windows."""
        ...

    def counts(self, now: float, spans: Sequence[float]) -> list[int]:
        """Sends occupying ``(now - span, now]`` (in flight, or answered within it) per span."""
        ...

    def close(self) -> None: ...


class MemoryLedger:
    """In-process ledger (tests, benchmarks, or when no database path is configured)."""

    def __init__(
        self, keep_seconds: float = DEFAULT_KEEP_SECONDS, hold_seconds: float = DEFAULT_HOLD_SECONDS
    ) -> None:
        self._ends: list[float] = []  # sorted effective ends of answered sent_requests
        self._inflight: dict[int, float] = {}  # ticket -> send time
        self._keep = keep_seconds
        self._hold = hold_seconds
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._since_prune = 0

    def _expire_inflight(self, now: float) -> None:
        for ticket, ts in list(self._inflight.items()):
            if ts + self._hold <= now:
                del self._inflight[ticket]
                bisect.insort(self._ends, ts + self._hold)

    def reserve(self, now: float, windows: Sequence[tuple[int, float]]) -> Reservation:
        with self._lock:
            self._expire_inflight(now)
            pending = sorted(ts + self._hold for ts in self._inflight.values())
            wait, on_inflight = 0.0, False
            for limit, span in windows:
                start = bisect.bisect_right(self._ends, now - span)
                answered = len(self._ends) - start
                excess = answered + len(pending) - limit
                if excess < 0:
                    continue
                # The (excess+1)-th earliest end must leave the window before one more fits.
                if excess < answered:
                    end, inflight = self._ends[start + excess], False
                else:
                    end, inflight = pending[excess - answered], True
                if end + span - now + _EPSILON > wait:
                    wait, on_inflight = end + span - now + _EPSILON, inflight
            if wait > 0:
                return Reservation(None, wait, on_inflight)
            ticket = next(self._ids)
            self._inflight[ticket] = now
            self._since_prune += 1
            if self._since_prune >= _PRUNE_EVERY:
                self._since_prune = 0
                horizon = max(self._keep, max(w for _, w in windows))
                del self._ends[: bisect.bisect_right(self._ends, now - horizon)]
            return Reservation(ticket, 0.0)

    def complete(self, ticket: int, now: float) -> None:
        with self._lock:
            ts = self._inflight.pop(ticket, None)
            if ts is not None:
                bisect.insort(self._ends, min(max(now, ts), ts + self._hold))

    def counts(self, now: float, spans: Sequence[float]) -> list[int]:
        with self._lock:
            self._expire_inflight(now)
            n = len(self._ends)
            return [
                n - bisect.bisect_right(self._ends, now - s) + len(self._inflight) for s in spans
            ]

    def close(self) -> None:
        """Nothing to release; present so both ledgers can be closed alike."""


class SqliteLedger:
    """Sends in a small SQLite file (WAL), shared by every process of this user.

    Each ``reserve`` is one short ``BEGIN IMMEDIATE`` transaction (read the counts of every
    window, decide, insert): the write lock makes check-and-insert atomic across processes.
    Calls are synchronous and take well under a millisecond (see bench/RESULTS.md); they can
    block longer only while another process holds the lock for as long.
    """

    _END = "MIN(COALESCE(done, ts + :hold), ts + :hold)"

    def __init__(
        self,
        path: str | Path,
        *,
        keep_seconds: float = DEFAULT_KEEP_SECONDS,
        hold_seconds: float = DEFAULT_HOLD_SECONDS,
        busy_timeout_s: float = 10.0,
    ) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._keep = keep_seconds
        self._hold = hold_seconds
        self._lock = threading.Lock()
        self._since_prune = 0
        self._conn = sqlite3.connect(
            str(self.path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False
        )
        self._conn.execute(f"PRAGMA busy_timeout={int(busy_timeout_s * 1000)}")
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute(
            "CREATE TABLE IF NOT EXISTS sent_requests"
            " (id INTEGER PRIMARY KEY, ts REAL NOT NULL, done REAL)"
        )
        self._conn.execute(
            "CREATE INDEX IF NOT EXISTS sent_requests_ts_done ON sent_requests(ts, done)"
        )

    def _count(self, now: float, span: float) -> int:
        # Every send after the cut occupies the window (an end is never before its send);
        # of the earlier ones, those still in flight or answered after the cut do too.
        cut = now - span
        (n,) = self._conn.execute(
            "SELECT (SELECT COUNT(*) FROM sent_requests WHERE ts > :cut)"
            " + (SELECT COUNT(*) FROM sent_requests WHERE ts > :cut - :hold AND ts <= :cut"
            " AND (done IS NULL OR done > :cut))",
            {"cut": cut, "hold": self._hold},
        ).fetchone()
        return int(n)

    def reserve(self, now: float, windows: Sequence[tuple[int, float]]) -> Reservation:
        with self._lock:
            conn = self._conn
            conn.execute("BEGIN IMMEDIATE")
            try:
                wait, on_inflight = 0.0, False
                for limit, span in windows:
                    used = self._count(now, span)
                    if used < limit:
                        continue
                    end, pending = conn.execute(
                        f"SELECT {self._END} AS e, done IS NULL FROM sent_requests "
                        "WHERE ts > :lo AND e > :cut ORDER BY e LIMIT 1 OFFSET :skip",
                        {
                            "lo": now - span - self._hold,
                            "cut": now - span,
                            "hold": self._hold,
                            "skip": used - limit,
                        },
                    ).fetchone()
                    if end + span - now + _EPSILON > wait:
                        wait = end + span - now + _EPSILON
                        on_inflight = bool(pending) and end > now
                ticket = None
                if wait <= 0:
                    ticket = conn.execute(
                        "INSERT INTO sent_requests (ts) VALUES (?)", (now,)
                    ).lastrowid
                    self._since_prune += 1
                    if self._since_prune >= _PRUNE_EVERY:
                        self._since_prune = 0
                        horizon = max(self._keep, max(w for _, w in windows)) + self._hold
                        conn.execute("DELETE FROM sent_requests WHERE ts <= ?", (now - horizon,))
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            return (
                Reservation(ticket, 0.0, False)
                if ticket is not None
                else Reservation(None, wait, on_inflight)
            )

    def complete(self, ticket: int, now: float) -> None:
        with self._lock:
            self._conn.execute(
                "UPDATE sent_requests SET done = MAX(?, ts) WHERE id = ? AND done IS NULL",
                (now, ticket),
            )

    def counts(self, now: float, spans: Sequence[float]) -> list[int]:
        with self._lock:
            return [self._count(now, s) for s in spans]

    def close(self) -> None:
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"SqliteLedger({str(self.path)!r})"
