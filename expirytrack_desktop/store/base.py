"""The connection core every part of :class:`Database` builds on: the lock, the single writer
thread (``await db.run``), transactions, read queries, error mapping, the clock, and the small
``kv`` table."""

from __future__ import annotations

import contextlib
import functools
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self, TypeVar

from expirytrack_desktop.store.errors import StoreError
from expirytrack_desktop.store.migrate import translate_error
from expirytrack_desktop.store.processes import pid_alive

T = TypeVar("T")


def _utc_text(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _default_clock() -> datetime:
    return datetime.now(UTC)


class DatabaseBase:
    """Connection, lock and writer thread shared by the :class:`Database` parts."""

    def __init__(
        self,
        conn: sqlite3.Connection,
        path: Path,
        *,
        busy_timeout_ms: int,
        clock: Callable[[], datetime] = _default_clock,
        pid_alive: Callable[[int | None], bool] = pid_alive,
    ) -> None:
        self._conn = conn
        self.path = path
        self.busy_timeout_ms = busy_timeout_ms
        self.clock = clock
        self._pid_alive = pid_alive
        self._lock = threading.RLock()
        self._executor: ThreadPoolExecutor | None = None
        self._closed = False
        self._underlying_ids: dict[str, int] = {}

    # ---- lifecycle / threading ---------------------------------------------------------------

    async def run(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Run ``fn(*args, **kwargs)`` on the database's single writer thread.

        ``fn`` is usually a bound method of this Database. The event loop stays free while SQLite
        works; calls run in submission order.
        """
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="expirytrack-db")
        import asyncio  # here, not at the top: `expirytrack status` never needs the event loop

        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))

    def close(self) -> None:
        """Wait for queued writes, then close the connection (idempotent)."""
        if self._closed:
            return
        if self._executor is not None:
            self._executor.shutdown(wait=True)
        with self._lock:
            self._conn.close()
            self._closed = True

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Database({str(self.path)!r})"

    @contextlib.contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` ... ``COMMIT`` (rollback on any error); errors become StoreError."""
        with self._lock:
            conn = self._conn
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise self._error(exc) from exc
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise self._error(exc) from exc
                raise

    @contextlib.contextmanager
    def temp(self) -> Iterator[sqlite3.Connection]:
        """The connection under the lock, for TEMP tables only (no write lock on the file, so
        a read-only database can use them too); sqlite3 errors become StoreError."""
        with self._lock:
            try:
                yield self._conn
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    def _error(self, exc: BaseException) -> StoreError:
        return translate_error(exc, self.path, self.busy_timeout_ms)

    def _query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            try:
                return self._conn.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise self._error(exc) from exc

    def execute(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        """Read-only convenience for tools and tests (rows support ``row["col"]``)."""
        return self._query(sql, params)

    def now_text(self) -> str:
        return _utc_text(self.clock())

    @property
    def schema_version(self) -> int:
        return int(self._query("PRAGMA user_version")[0][0])

    # ---- kv ----------------------------------------------------------------------------------

    def kv_get(self, key: str, default: str | None = None) -> str | None:
        rows = self._query("SELECT value FROM kv WHERE key = ?", (key,))
        return rows[0][0] if rows else default

    def kv_set(self, key: str, value: str) -> None:
        with self.transaction() as c:
            c.execute("INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)", (key, value))

    def _kv_days(self, prefix: str) -> dict[str, int]:
        """``{interval: days}`` of the kv keys ``<prefix>:<interval>`` (bad values skipped)."""
        out: dict[str, int] = {}
        for row in self._query("SELECT key, value FROM kv WHERE key LIKE ?", (prefix + ":%",)):
            with contextlib.suppress(ValueError):
                out[row[0].split(":", 1)[1]] = int(row[1])
        return out

    def span_caps(self) -> dict[str, int]:
        """Learned candle span caps per interval name (kv ``span_cap_days:<interval>``)."""
        return self._kv_days("span_cap_days")

    def set_span_cap(self, interval: str, days: int) -> None:
        self.kv_set(f"span_cap_days:{interval}", str(int(days)))

    def span_proven(self) -> dict[str, int]:
        """The widest span per interval the API has accepted (kv ``span_proven_days:``),
        while no cap is learned: what estimates may plan with."""
        return self._kv_days("span_proven_days")

    def set_span_proven(self, interval: str, days: int) -> None:
        self.kv_set(f"span_proven_days:{interval}", str(int(days)))

    def integrity_check(self) -> str:
        return str(self._query("PRAGMA integrity_check")[0][0])
