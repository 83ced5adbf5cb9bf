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

Deadline order across processes: within a process the limiter lets the waiting request whose
data vanishes first take a free slot (its priority, ``SendScope``). Two processes sharing the
budget (the window's engine and a scheduled ``watch run``) would otherwise race for it, so a
``SqliteLedger`` whose caller is refused publishes the priority it waits with and when it will
ask again (table ``waiting``); a process that finds room but sees another live process waiting
with a more urgent priority lets it go first (``reserve`` answers "wait a moment"). A waiter
counts only while its process lives and it is not overdue by more than ``yield_grace_s``
beyond the time it said it would ask again, so a stalled or dead process never holds the
others back for longer than that.

A ledger file that cannot be used (a folder at its path, unwritable, a full disk, locked for
too long) raises :class:`LedgerError`, one line naming the file and what to do; callers stop
with the storage exit code. A *damaged* file (not SQLite, or SQLite reports corruption) only
held recent send times, so it is moved aside to ``<name>.damaged`` and rebuilt, with a
warning; since its sends are unknown, the new ledger assumes the whole budget was spent at
the damaged file's last change (every window full then), which is never less safe than the
truth.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import datetime
from pathlib import Path
from typing import NamedTuple, Protocol

log = logging.getLogger(__name__)

# A reservation released exactly at the computed instant must not be refused by rounding.
_EPSILON = 1e-6
# Rows older than this are useless to any window we know (the longest is 30 minutes).
DEFAULT_KEEP_SECONDS = 3600.0
# How long an unanswered send is assumed to be possibly still on its way to the server.
DEFAULT_HOLD_SECONDS = 60.0
_PRUNE_EVERY = 256
# A process waiting with a more urgent priority is let go first while it is no later than this
# past the time it said it would ask again (then it is taken for stalled and ignored).
DEFAULT_YIELD_GRACE_S = 2.0
# How soon a process that let another go first asks again.
DEFAULT_YIELD_POLL_S = 0.05


class LedgerError(Exception):
    """The ledger file cannot be used; the message is one line naming it and what to do."""


# SQLite primary result codes (sqlite3.Error.sqlite_errorcode & 0xFF)
_PERM, _READONLY, _BUSY, _LOCKED, _IOERR = 3, 8, 5, 6, 10
_CORRUPT, _FULL, _CANTOPEN, _NOTADB = 11, 13, 14, 26
_DAMAGED = {_CORRUPT, _NOTADB}


def _code(exc: sqlite3.Error) -> int:
    return int(getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF


def _disk_full(path: Path) -> bool:
    try:
        import shutil

        return shutil.disk_usage(path.parent).free < 64 * 1024
    except OSError:
        return False


def _identity(path: Path) -> tuple[int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return st.st_dev, st.st_ino


def _unwritable(path: Path) -> bool:
    """The file or its folder exists and this process may not write it (incl. read-only
    media: SQLite then reports only "unable to open", as it cannot create the -wal file)."""
    return any(p.exists() and not os.access(p, os.W_OK) for p in (path, path.parent))


def describe_failure(path: Path, exc: BaseException) -> str:
    """One line: what is wrong with the ledger file at ``path`` and what to do about it."""
    what = f"the rate-limit ledger {path}"
    if path.is_dir():
        return f"{what} is a folder, not a file: move it away (the file is recreated)"
    code = _code(exc) if isinstance(exc, sqlite3.Error) else 0
    errno = getattr(exc, "errno", None)
    if code == _FULL or errno == 28 or (code == _IOERR and _disk_full(path)):
        return f"the disk holding {what} is full: free some space, then run again"
    if code in (_READONLY, _PERM) or errno in (1, 13, 30) or _unwritable(path):
        return (
            f"{what} cannot be written: make it and its folder writable "
            "(or remove the file), then run again"
        )
    if code in _DAMAGED:
        return f"{what} is damaged ({exc}): run again, it is then rebuilt"
    if code in (_BUSY, _LOCKED):
        return f"{what} stayed locked by another ExpiryTrack process: run again when it is done"
    if code == _CANTOPEN or isinstance(exc, OSError):
        reason = f" ({exc.strerror})" if isinstance(exc, OSError) and exc.strerror else ""
        return (
            f"cannot open {what}{reason}: check that its folder exists and is writable, "
            "then run again"
        )
    return f"{what} cannot be used ({exc}): remove the file, then run again"


class Reservation(NamedTuple):
    ticket: int | None  # None: refused, wait and ask again
    wait: float  # seconds until a slot frees if nothing else changes (0.0 when granted)
    on_inflight: bool = False  # the wait ends early if an in-flight request is answered


class Ledger(Protocol):
    def reserve(
        self, now: float, windows: Sequence[tuple[int, float]], priority: int | None = None
    ) -> Reservation:
        """Record a send at ``now`` if every window has room (and no other process waits with
        a lower, more urgent ``priority``); else say how long to wait."""
        ...

    def idle(self) -> None:
        """Nothing of this process waits any more (its published priority is withdrawn)."""
        ...

    def complete(self, ticket: int, now: float) -> None:
        """The answer to ``ticket`` arrived at ``now``: it stops occupying later windows."""
        ...

    def counts(self, now: float, spans: Sequence[float]) -> list[int]:
        """Sends occupying ``(now - span, now]`` (in flight, or answered within it) per span."""
        ...

    def ends(self, now: float, span: float) -> list[float]:
        """Ascending end times of the sends occupying ``(now - span, now]`` (a send in flight
        ends ``now`` at the earliest): the budget already used, for an estimate."""
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

    def reserve(
        self, now: float, windows: Sequence[tuple[int, float]], priority: int | None = None
    ) -> Reservation:
        """``priority`` is the limiter's business within one process: ignored here."""
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

    def ends(self, now: float, span: float) -> list[float]:
        with self._lock:
            self._expire_inflight(now)
            start = bisect.bisect_right(self._ends, now - span)
            return self._ends[start:] + [now] * len(self._inflight)

    def idle(self) -> None:
        """Nothing published to withdraw (one process only)."""

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
        pid_alive: Callable[[int], bool] | None = None,
        yield_grace_s: float = DEFAULT_YIELD_GRACE_S,
        yield_poll_s: float = DEFAULT_YIELD_POLL_S,
    ) -> None:
        """``pid_alive``: whether a process id still runs (without it a dead waiter is ignored
        once overdue by ``yield_grace_s``); ``yield_poll_s``: how soon to ask again after
        letting a more urgent process go first."""
        self.path = Path(path)
        self._pid = os.getpid()
        self.owner = f"{self._pid}:{id(self):x}:{time.time_ns():x}"  # this ledger in the table
        self._pid_alive = pid_alive
        self._grace = yield_grace_s
        self._yield_poll = yield_poll_s
        self._published = False  # a row of ours is in ``waiting``
        self._keep = keep_seconds
        self._hold = hold_seconds
        self._busy_s = busy_timeout_s
        self._lock = threading.Lock()
        self._since_prune = 0
        self._spent_at: float | None = None  # rebuilt: assume every window full at this time
        seen = _identity(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = self._open()
        except sqlite3.DatabaseError as exc:
            if _code(exc) not in _DAMAGED:
                raise LedgerError(describe_failure(self.path, exc)) from None
            self._rebuild(exc, seen)
        except OSError as exc:
            raise LedgerError(describe_failure(self.path, exc)) from None

    def _open(self) -> sqlite3.Connection:
        """Open (creating) the file, trying again while another process holds a lock for up
        to the busy timeout: SQLite does not call its busy handler for every lock taken
        while a new file is set up (journal mode, schema), so two processes starting at
        once on a fresh ledger could see "locked" at once."""
        deadline = time.monotonic() + self._busy_s
        while True:
            try:
                return self._open_once()
            except sqlite3.OperationalError as exc:
                if _code(exc) not in (_BUSY, _LOCKED) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.05)

    def _open_once(self) -> sqlite3.Connection:
        if self.path.is_dir():
            raise LedgerError(describe_failure(self.path, IsADirectoryError(21, "a folder")))
        conn = sqlite3.connect(
            str(self.path), timeout=self._busy_s, isolation_level=None, check_same_thread=False
        )
        try:
            conn.execute(f"PRAGMA busy_timeout={int(self._busy_s * 1000)}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS sent_requests"
                " (id INTEGER PRIMARY KEY, ts REAL NOT NULL, done REAL)"
            )
            conn.execute(
                "CREATE INDEX IF NOT EXISTS sent_requests_ts_done ON sent_requests(ts, done)"
            )
            conn.execute(
                "CREATE TABLE IF NOT EXISTS waiting (owner TEXT PRIMARY KEY, pid INTEGER NOT NULL,"
                " priority INTEGER NOT NULL, retry_at REAL NOT NULL)"
            )
            # Read the table once (a damaged page or a foreign schema shows here, not mid-run)
            # and write once (a read-only file or a full disk too).
            conn.execute("SELECT COUNT(*), MAX(ts), MAX(done) FROM sent_requests").fetchone()
            conn.execute("PRAGMA user_version = 1")
        except BaseException:
            conn.close()
            raise
        return conn

    def _rebuild(self, exc: sqlite3.DatabaseError, seen: tuple[int, int] | None) -> None:
        """Move the damaged file (and its -wal/-shm) aside and start again, conservatively."""
        if _identity(self.path) != seen:  # another process rebuilt it meanwhile: use theirs
            try:
                self._conn = self._open()
                return
            except (OSError, sqlite3.Error) as again:
                raise LedgerError(describe_failure(self.path, again)) from None
        last = 0.0
        for suffix in ("", "-wal", "-journal"):
            with suppress(OSError):
                last = max(last, os.stat(f"{self.path}{suffix}").st_mtime)
        aside = self.path.with_name(self.path.name + ".damaged")
        try:
            os.replace(self.path, aside)
            for suffix in ("-wal", "-shm", "-journal"):
                if os.path.exists(f"{self.path}{suffix}"):
                    os.replace(f"{self.path}{suffix}", f"{aside}{suffix}")
            self._conn = self._open()
        except (OSError, sqlite3.Error) as again:
            raise LedgerError(describe_failure(self.path, again)) from None
        now = time.time()
        horizon = DEFAULT_KEEP_SECONDS + self._hold
        if last > now - horizon:
            self._spent_at = min(last, now)
        note = ""
        if self._spent_at is not None:
            stamp = datetime.fromtimestamp(self._spent_at).strftime("%H:%M:%S")
            until = datetime.fromtimestamp(self._spent_at + 1800).strftime("%H:%M:%S")
            note = (
                f"; its sends are unknown, so the whole API budget counts as used at {stamp} "
                f"(its last change): requests wait until the longest rate-limit window has "
                f"passed since then (until {until} with the default 30 minutes)"
            )
        log.warning(
            "the rate-limit ledger %s was damaged (%s): moved it to %s and started a new one%s",
            self.path,
            exc,
            aside.name,
            note,
        )

    def _fill_spent(self, now: float, windows: Sequence[tuple[int, float]]) -> None:
        """After a rebuild: as many sends at ``_spent_at`` as the largest limit (every window
        full then). Inside the caller's transaction."""
        if self._spent_at is None:
            return
        at = min(self._spent_at, now)
        n = max(limit for limit, _ in windows)
        self._conn.executemany(
            "INSERT INTO sent_requests (ts, done) VALUES (?, ?)", ((at, at) for _ in range(n))
        )
        self._spent_at = None

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """BEGIN IMMEDIATE .. COMMIT; any SQLite failure becomes a LedgerError naming the file.
        (SQLite may already have rolled back by itself, e.g. on a full disk: never hide the
        real error behind "cannot rollback - no transaction is active".)"""
        conn = self._conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    try:
                        conn.execute("ROLLBACK")
                    except sqlite3.Error:
                        log.debug("rollback of the ledger failed", exc_info=True)
                raise
        except sqlite3.Error as exc:
            raise LedgerError(describe_failure(self.path, exc)) from None

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

    def reserve(
        self, now: float, windows: Sequence[tuple[int, float]], priority: int | None = None
    ) -> Reservation:
        with self._lock, self._transaction() as conn:
            if self._spent_at is not None:
                self._fill_spent(now, windows)
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
            if wait <= 0 and priority is not None and self._more_urgent(conn, now, priority):
                wait, on_inflight = self._yield_poll, False  # let it take this slot first
            ticket = None
            if wait <= 0:
                ticket = conn.execute("INSERT INTO sent_requests (ts) VALUES (?)", (now,)).lastrowid
                if self._published:
                    conn.execute("DELETE FROM waiting WHERE owner = ?", (self.owner,))
                    self._published = False
                self._since_prune += 1
                if self._since_prune >= _PRUNE_EVERY:
                    self._since_prune = 0
                    horizon = max(self._keep, max(w for _, w in windows)) + self._hold
                    conn.execute("DELETE FROM sent_requests WHERE ts <= ?", (now - horizon,))
                    conn.execute("DELETE FROM waiting WHERE retry_at <= ?", (now - horizon,))
            elif priority is not None:
                conn.execute(
                    "INSERT OR REPLACE INTO waiting (owner, pid, priority, retry_at)"
                    " VALUES (?, ?, ?, ?)",
                    (self.owner, self._pid, priority, now + wait),
                )
                self._published = True
        if ticket is not None:
            return Reservation(ticket, 0.0, False)
        return Reservation(None, wait, on_inflight)

    def _more_urgent(self, conn: sqlite3.Connection, now: float, priority: int) -> bool:
        """Another live process waits with a lower (more urgent) priority. Waiters overdue by
        more than the grace, or whose process is gone, are removed and ignored."""
        rows = conn.execute(
            "SELECT owner, pid, retry_at FROM waiting WHERE owner != ? AND priority < ?",
            (self.owner, priority),
        ).fetchall()
        urgent = False
        for owner, pid, retry_at in rows:
            alive = self._pid_alive is None or pid == self._pid or self._pid_alive(int(pid))
            if alive and float(retry_at) + self._grace > now:
                urgent = True
            elif not alive or float(retry_at) + self._grace + self._hold <= now:
                conn.execute("DELETE FROM waiting WHERE owner = ?", (owner,))
        return urgent

    def idle(self) -> None:
        """Withdraw this ledger's waiting row (its process has no request waiting now).
        Never raises: a row left behind is ignored once overdue."""
        with self._lock:
            if not self._published:
                return
            try:
                self._conn.execute("DELETE FROM waiting WHERE owner = ?", (self.owner,))
                self._published = False
            except sqlite3.Error as exc:
                log.debug("%s", describe_failure(self.path, exc))

    def complete(self, ticket: int, now: float) -> None:
        """Never raises: a send whose answer cannot be recorded (disk full) stays "in flight"
        for ``hold_s``, which only delays later sends; the next ``reserve`` reports the file."""
        with self._lock:
            try:
                self._conn.execute(
                    "UPDATE sent_requests SET done = MAX(?, ts) WHERE id = ? AND done IS NULL",
                    (now, ticket),
                )
            except sqlite3.Error as exc:  # the next reserve() reports the file
                log.debug("%s", describe_failure(self.path, exc))

    def counts(self, now: float, spans: Sequence[float]) -> list[int]:
        with self._lock:
            try:
                return [self._count(now, s) for s in spans]
            except sqlite3.Error as exc:
                raise LedgerError(describe_failure(self.path, exc)) from None

    def ends(self, now: float, span: float) -> list[float]:
        with self._lock:
            try:
                rows = self._conn.execute(
                    "SELECT CASE WHEN done IS NULL THEN MIN(ts + :hold, :now)"
                    " ELSE MIN(MAX(done, ts), ts + :hold) END AS e "
                    "FROM sent_requests WHERE ts > :lo AND e > :cut ORDER BY e",
                    {
                        "now": now,
                        "lo": now - span - self._hold,
                        "cut": now - span,
                        "hold": self._hold,
                    },
                ).fetchall()
            except sqlite3.Error as exc:
                raise LedgerError(describe_failure(self.path, exc)) from None
            return [float(r[0]) for r in rows]

    def close(self) -> None:
        self.idle()
        with self._lock:
            self._conn.close()

    def __repr__(self) -> str:
        return f"SqliteLedger({str(self.path)!r})"
