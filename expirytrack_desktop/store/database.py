"""The SQLite store: opening (pragmas, migrations, backups, clear errors) and repository calls.

Threading model (DESIGN: "Database work must not stall the GUI"): one connection, used by one
writer thread at a time. The engine calls ``await db.run(fn, *args)``, which executes ``fn`` on
the Database's own single-thread executor, so SQLite never runs on the asyncio/Qt loop thread.
Synchronous methods may also be called directly (CLI ``status``, tests); a lock serialises them.

Dates are ``YYYY-MM-DD`` text, candle times epoch seconds, intervals integer minutes (1440 =
day); the documented views (``instruments``, ``expiries``, ``contracts``, ``historical_data``,
``job_status``) translate for users' SQL.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from expirytrack_desktop.store.coverage import DateRange, subtract_ranges
from expirytrack_desktop.store.errors import (
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreMissingError,
    StoreUnwritableError,
    StoreVersionError,
)
from expirytrack_desktop.upstox.models import INTERVAL_MINUTES, Candle, Contract

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_BUSY_TIMEOUT_MS = 5000
JOB_STATUSES = (
    "pending",
    "running",
    "paused",
    "needs_login",
    "completed",
    "failed",
    "cancelled",
    "interrupted",
)
# A running job whose heartbeat is older than this is treated as dead even if its pid lives
# (pid reuse after a crash). The engine beats every HEARTBEAT_INTERVAL seconds, even while it
# waits on the rate limiter or is paused.
STALE_HEARTBEAT = timedelta(minutes=3)
HEARTBEAT_INTERVAL = 30.0
_MIGRATION_RE = re.compile(r"^(\d{3})_[\w\-]+\.sql$")
_MINUTES_INTERVAL = {v: k for k, v in INTERVAL_MINUTES.items()}
# Database.store_window_json needs SQLite's ``->>`` operator and ``unixepoch`` (3.38, 2022).
JSON_INGEST = sqlite3.sqlite_version_info >= (3, 38, 0)


class _NotPlain(Exception):
    """Internal: a JSON body needs the exact (clipping, order-keeping) statement."""


# rows in a window's range, and how many hold a value the Python path would not have stored
_COUNT_AND_CHECK = (
    "SELECT count(*), total(typeof(open) != 'real' OR typeof(high) != 'real' "
    "OR typeof(low) != 'real' OR typeof(close) != 'real' "
    "OR typeof(volume) != 'integer' OR typeof(oi) != 'integer') "
)


def interval_minutes(interval: str) -> int:
    """``"1minute" -> 1``, ``"day" -> 1440``; ValueError for anything else."""
    try:
        return INTERVAL_MINUTES[interval]
    except KeyError:
        raise ValueError(
            f"unknown interval {interval!r}; use one of {', '.join(INTERVAL_MINUTES)}"
        ) from None


def interval_name(minutes: int) -> str:
    return _MINUTES_INTERVAL[minutes]


# ---------------------------------------------------------------------------------------------
# Rows returned to callers (plain frozen dataclasses: safe to hand to another thread / the UI)


@dataclass(frozen=True, slots=True)
class ContractRow:
    id: int
    expired_key: str
    underlying_key: str
    expiry_date: date
    contract_type: str
    strike_price: float | None
    trading_symbol: str | None
    openalgo_symbol: str | None


@dataclass(frozen=True, slots=True)
class WindowRow:
    """One ``fetch_window`` row: what was asked of the API for a contract and how it went."""

    contract_id: int
    interval: int
    from_date: date
    to_date: date
    state: str  # 'fetched' | 'empty' | 'failed'
    candles: int
    attempts: int
    error: str | None
    job_id: int | None

    @classmethod
    def from_row(cls, r: Sequence[Any]) -> WindowRow:
        """From ``contract_id, interval, from_date, to_date, state, candles, attempts, error,
        job_id`` as selected from ``fetch_window``."""
        return cls(r[0], r[1], date.fromisoformat(r[2]), date.fromisoformat(r[3]), *r[4:9])


@dataclass(frozen=True, slots=True)
class StoredWindow:
    """Result of :meth:`Database.store_window`."""

    candles: int
    overlapped: bool  # True if part of this range was already covered (a re-fetch)


@dataclass(frozen=True, slots=True)
class ExpiryCoverage:
    """Coverage of one underlying × expiry for one interval (status command, UI dashboard).

    ``state``: 'complete' (every contract's target window fetched, no failures), 'partial'
    (some covered, some not yet), 'failed' (some windows failed and are not covered since),
    'no_data' (nothing fetched yet; also when contracts are not known yet).
    ``contracts_no_trades`` counts contracts whose covered windows were all empty.
    """

    instrument_key: str
    symbol: str | None
    expiry_date: date
    is_weekly: bool | None
    interval: str
    contracts_fetched: bool
    contracts: int
    contracts_complete: int
    contracts_no_trades: int
    failed_windows: int
    candles: int
    target: DateRange | None
    state: str


@dataclass(frozen=True, slots=True)
class Counts:
    underlyings: int
    expiries: int
    contracts: int
    candles: int  # sum of stored window counts (exact for planner-made windows; no table scan)
    db_bytes: int


@dataclass(frozen=True, slots=True)
class JobRecord:
    id: int
    job_type: str
    status: str
    params: dict[str, Any]
    underlyings: str | None
    expiries: str | None
    total_items: int
    done_items: int
    failed_items: int
    requests: int
    candles: int
    error_message: str | None
    retry_count: int
    pid: int | None
    created_at: str
    started_at: str | None
    completed_at: str | None
    heartbeat_at: str | None

    @property
    def resumable(self) -> bool:
        return self.status in ("paused", "needs_login", "interrupted", "failed", "cancelled")


# ---------------------------------------------------------------------------------------------
# Errors


def translate_error(exc: BaseException, path: Path | str, busy_timeout_ms: int) -> StoreError:
    """Map a sqlite3/OS error to a one-line :class:`StoreError` naming the file."""
    if isinstance(exc, StoreError):
        return exc
    code = getattr(exc, "sqlite_errorcode", None)
    text = str(exc)
    low = text.lower()
    if code == sqlite3.SQLITE_FULL or "disk is full" in low or "database or disk is full" in low:
        return StoreFullError(
            f"Disk full while writing {path}; nothing half-written was kept. "
            "Free some space and run the same command again to continue."
        )
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in low:
        return StoreLockedError(
            f"Database {path} is locked by another process (waited {busy_timeout_ms / 1000:g} s); "
            "close the other ExpiryTrack window or command and try again."
        )
    if (
        code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)
        or "not a database" in low
        or ("malformed" in low)
    ):
        return StoreCorruptError(
            f"{path} is not a usable ExpiryTrack database ({text}); "
            "choose another file or restore a backup."
        )
    if (
        code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM)
        or "readonly" in low
        or "unable to open" in low
        or isinstance(exc, OSError)
    ):
        return StoreUnwritableError(f"Cannot write the database {path}: {text}.")
    return StoreError(f"Database error on {path}: {text}")


# ---------------------------------------------------------------------------------------------
# Migrations


def load_migrations() -> list[tuple[int, str, str]]:
    """Ordered ``(version, name, sql)`` from ``store/migrations/NNN_*.sql`` (importlib.resources,
    so a PyInstaller bundle that ships the package data finds them)."""
    folder = resources.files("expirytrack_desktop.store").joinpath("migrations")
    found: list[tuple[int, str, str]] = []
    for entry in folder.iterdir():
        m = _MIGRATION_RE.match(entry.name)
        if m:
            found.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migrations must be numbered 001.. without gaps: {versions}")
    return found


def latest_version() -> int:
    return len(load_migrations())


# ---------------------------------------------------------------------------------------------


def _day_epoch(d: date) -> int:
    """Epoch seconds of 00:00 UTC of ``d`` (callers shift by the IST offset)."""
    return (d - date(1970, 1, 1)).days * 86400


def _utc_text(dt: datetime) -> str:
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")


def _default_clock() -> datetime:
    return datetime.now(UTC)


def pid_alive(pid: int | None) -> bool:
    """True if a process with this id exists (best effort, no psutil at runtime)."""
    if not pid or pid <= 0:
        return False
    if pid == os.getpid():
        return True
    if os.name == "nt":  # pragma: no cover - Windows
        import ctypes

        handle = ctypes.windll.kernel32.OpenProcess(0x1000, False, pid)
        if not handle:
            return False
        code = ctypes.c_ulong()
        ctypes.windll.kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
        ctypes.windll.kernel32.CloseHandle(handle)
        return code.value == 259  # STILL_ACTIVE
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Database:
    """One open ExpiryTrack database. Create with :func:`open_database`."""

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

    def __enter__(self) -> Database:
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

    def span_caps(self) -> dict[str, int]:
        """Learned candle span caps per interval name (kv ``span_cap_days:<interval>``)."""
        out: dict[str, int] = {}
        for row in self._query("SELECT key, value FROM kv WHERE key LIKE 'span_cap_days:%'"):
            with contextlib.suppress(ValueError):
                out[row[0].split(":", 1)[1]] = int(row[1])
        return out

    def set_span_cap(self, interval: str, days: int) -> None:
        self.kv_set(f"span_cap_days:{interval}", str(int(days)))

    # ---- instruments, expiries, contracts ----------------------------------------------------

    def upsert_underlying(
        self,
        instrument_key: str,
        *,
        symbol: str | None = None,
        name: str | None = None,
        exchange: str | None = None,
        segment: str | None = None,
        underlying_type: str | None = None,
    ) -> int:
        """Insert or complete an underlying; known non-null fields are never blanked. -> id."""
        segment = segment or instrument_key.split("|", 1)[0]
        with self.transaction() as c:
            c.execute(
                "INSERT INTO underlying(instrument_key, symbol, name, exchange, segment, "
                "underlying_type) VALUES (?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(instrument_key) DO UPDATE SET "
                "symbol = COALESCE(excluded.symbol, symbol), name = COALESCE(excluded.name, name), "
                "exchange = COALESCE(excluded.exchange, exchange), "
                "segment = COALESCE(excluded.segment, segment), "
                "underlying_type = COALESCE(excluded.underlying_type, underlying_type)",
                (instrument_key, symbol, name, exchange, segment, underlying_type),
            )
            uid = c.execute(
                "SELECT id FROM underlying WHERE instrument_key = ?", (instrument_key,)
            ).fetchone()[0]
        self._underlying_ids[instrument_key] = uid
        return int(uid)

    def upsert_expiries(
        self,
        instrument_key: str,
        expiries: Iterable[date],
        *,
        weekly: dict[date, bool] | None = None,
    ) -> dict[date, int]:
        """Record the expiry dates the API offers for an underlying. -> {date: expiry id}.

        ``weekly`` (from the contracts' API flag) fills ``is_weekly`` when known; it is never
        inferred from the weekday.
        """
        uid = self._underlying_id(instrument_key)
        weekly = weekly or {}
        out: dict[date, int] = {}
        with self.transaction() as c:
            for d in expiries:
                w = weekly.get(d)
                c.execute(
                    "INSERT INTO expiry(underlying_id, expiry_date, is_weekly) VALUES (?, ?, ?) "
                    "ON CONFLICT(underlying_id, expiry_date) DO UPDATE SET "
                    "is_weekly = COALESCE(excluded.is_weekly, is_weekly)",
                    (uid, d.isoformat(), None if w is None else int(w)),
                )
                out[d] = c.execute(
                    "SELECT id FROM expiry WHERE underlying_id = ? AND expiry_date = ?",
                    (uid, d.isoformat()),
                ).fetchone()[0]
        return out

    def _underlying_id(self, instrument_key: str) -> int:
        uid = self._underlying_ids.get(instrument_key)
        if uid is None:
            rows = self._query(
                "SELECT id FROM underlying WHERE instrument_key = ?", (instrument_key,)
            )
            uid = rows[0][0] if rows else self.upsert_underlying(instrument_key)
            self._underlying_ids[instrument_key] = uid
        return uid

    def expiry_id(self, instrument_key: str, expiry: date) -> int | None:
        rows = self._query(
            "SELECT e.id FROM expiry e JOIN underlying u ON u.id = e.underlying_id "
            "WHERE u.instrument_key = ? AND e.expiry_date = ?",
            (instrument_key, expiry.isoformat()),
        )
        return rows[0][0] if rows else None

    def known_expiries(self, instrument_key: str) -> list[tuple[date, bool, bool | None]]:
        """``(expiry_date, contracts_fetched, is_weekly)`` stored for an underlying, ascending."""
        rows = self._query(
            "SELECT e.expiry_date, e.contracts_fetched, e.is_weekly FROM expiry e "
            "JOIN underlying u ON u.id = e.underlying_id WHERE u.instrument_key = ? "
            "ORDER BY e.expiry_date",
            (instrument_key,),
        )
        return [
            (date.fromisoformat(r[0]), bool(r[1]), None if r[2] is None else bool(r[2]))
            for r in rows
        ]

    def store_contracts(
        self,
        instrument_key: str,
        expiry: date,
        contracts: Sequence[Contract],
        *,
        openalgo: Callable[[Contract], str | None] | None = None,
        mark_fetched: bool = False,
    ) -> int:
        """Upsert contracts of one expiry (complete metadata + raw JSON) in one transaction.

        ``mark_fetched`` sets ``contracts_fetched`` in the same transaction: pass True only
        when BOTH the option and the future lists were fetched successfully. The expiry's
        ``is_weekly`` is filled from the contracts' ``weekly`` flag when the API sent one.
        Returns the number of contracts written.
        """
        uid = self._underlying_id(instrument_key)
        weekly_flags = {c.weekly for c in contracts if c.weekly is not None}
        is_weekly = None if len(weekly_flags) != 1 else int(weekly_flags.pop())
        rows = []
        for c in contracts:
            symbol = openalgo(c) if openalgo else None
            rows.append(
                (
                    c.instrument_key,
                    c.instrument_type,
                    c.strike_price,
                    c.trading_symbol,
                    c.lot_size,
                    c.tick_size,
                    c.exchange_token,
                    c.freeze_quantity,
                    c.minimum_lot,
                    None if c.weekly is None else int(c.weekly),
                    c.underlying_symbol,
                    symbol,
                    json.dumps(c.raw, separators=(",", ":"), sort_keys=True) if c.raw else None,
                )
            )
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO expiry(underlying_id, expiry_date, is_weekly) VALUES (?, ?, ?) "
                "ON CONFLICT(underlying_id, expiry_date) DO UPDATE SET "
                "is_weekly = COALESCE(excluded.is_weekly, is_weekly)",
                (uid, expiry.isoformat(), is_weekly),
            )
            eid = conn.execute(
                "SELECT id FROM expiry WHERE underlying_id = ? AND expiry_date = ?",
                (uid, expiry.isoformat()),
            ).fetchone()[0]
            conn.executemany(
                "INSERT INTO contract(expired_key, expiry_id, contract_type, strike_price, "
                "trading_symbol, lot_size, tick_size, exchange_token, freeze_quantity, "
                "minimum_lot, weekly, underlying_symbol, openalgo_symbol, raw_json) "
                f"VALUES (?, {int(eid)}, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT(expired_key) DO UPDATE SET contract_type = excluded.contract_type, "
                "strike_price = excluded.strike_price, trading_symbol = excluded.trading_symbol, "
                "lot_size = excluded.lot_size, tick_size = excluded.tick_size, "
                "exchange_token = excluded.exchange_token, "
                "freeze_quantity = excluded.freeze_quantity, minimum_lot = excluded.minimum_lot, "
                "weekly = excluded.weekly, underlying_symbol = excluded.underlying_symbol, "
                "openalgo_symbol = COALESCE(excluded.openalgo_symbol, openalgo_symbol), "
                "raw_json = COALESCE(excluded.raw_json, raw_json)",
                rows,
            )
            if contracts:
                first = contracts[0]
                conn.execute(
                    "UPDATE underlying SET symbol = COALESCE(symbol, ?), "
                    "underlying_type = COALESCE(underlying_type, ?), "
                    "exchange = COALESCE(exchange, ?), name = COALESCE(name, ?) WHERE id = ?",
                    (
                        first.underlying_symbol or None,
                        first.underlying_type or None,
                        first.exchange or None,
                        first.name or None,
                        uid,
                    ),
                )
            if mark_fetched:
                conn.execute("UPDATE expiry SET contracts_fetched = 1 WHERE id = ?", (eid,))
        return len(rows)

    def contracts_for(
        self, instrument_key: str, expiry: date, contract_types: Iterable[str] = ("CE", "PE", "FUT")
    ) -> list[ContractRow]:
        types = tuple(contract_types)
        marks = ",".join("?" * len(types))
        rows = self._query(
            "SELECT c.id, c.expired_key, u.instrument_key, e.expiry_date, c.contract_type, "
            "c.strike_price, c.trading_symbol, c.openalgo_symbol FROM contract c "
            "JOIN expiry e ON e.id = c.expiry_id JOIN underlying u ON u.id = e.underlying_id "
            f"WHERE u.instrument_key = ? AND e.expiry_date = ? AND c.contract_type IN ({marks}) "
            "ORDER BY c.contract_type = 'FUT' DESC, c.strike_price, c.contract_type",
            (instrument_key, expiry.isoformat(), *types),
        )
        return [
            ContractRow(r[0], r[1], r[2], date.fromisoformat(r[3]), r[4], r[5], r[6], r[7])
            for r in rows
        ]

    # ---- windows and candles (the hot path) --------------------------------------------------

    def windows_for(
        self, contract_ids: Iterable[int], interval: str | int
    ) -> dict[int, list[WindowRow]]:
        """All fetch_window rows of these contracts for one interval, by contract id."""
        iv = interval if isinstance(interval, int) else interval_minutes(interval)
        ids = list(contract_ids)
        out: dict[int, list[WindowRow]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            for r in self._query(
                "SELECT contract_id, interval, from_date, to_date, state, candles, attempts, "
                f"error, job_id FROM fetch_window WHERE interval = ? AND contract_id IN ({marks})",
                (iv, *part),
            ):
                out[r[0]].append(WindowRow.from_row(r))
        return out

    def store_window(
        self,
        contract_id: int,
        interval: str | int,
        from_date: date,
        to_date: date,
        candles: Sequence[Candle],
        *,
        job_id: int | None = None,
        attempts: int = 1,
    ) -> StoredWindow:
        """Write one fetched window: its candles AND its done mark, in ONE transaction.

        ``INSERT OR REPLACE`` keyed on (contract, interval, ts), so a re-fetch never duplicates.
        An empty ``candles`` records the window as 'empty' (fetched, no trades). Failed marks
        inside the range are dropped (they are resolved now). If the transaction fails (disk
        full, lock) nothing of it remains and the window stays "not fetched".
        """
        iv = interval if isinstance(interval, int) else interval_minutes(interval)
        cid = int(contract_id)
        with self.transaction() as c:
            overlapped = self._overlaps(c, cid, iv, from_date, to_date)
            if candles:
                # contract id and interval are ints inlined in the statement, so the rows go to
                # executemany as they are (no per-row tuple building on the hot path)
                c.executemany(
                    f"INSERT OR REPLACE INTO candle VALUES ({cid}, {iv}, ?, ?, ?, ?, ?, ?, ?)",
                    candles,
                )
            self._mark_done(c, cid, iv, from_date, to_date, len(candles), job_id, attempts)
        return StoredWindow(len(candles), overlapped)

    def store_window_json(
        self,
        contract_id: int,
        interval: str | int,
        from_date: date,
        to_date: date,
        body: str | bytes | Sequence[str | bytes],
        *,
        path: str = "$.data.candles",
        job_id: int | None = None,
        attempts: int = 1,
    ) -> StoredWindow:
        """Like :meth:`store_window`, from the API's JSON text: SQLite parses it (json_each,
        unixepoch) in C, with no Python object per candle — the fastest bytes-to-rows path.

        ``body`` may be a list of responses (the sub-windows of one window), written together.
        ``path`` locates the candle array (default: a whole candle response). The rows stored
        are exactly those of the Python path (``fetch_window`` + :meth:`store_window`): candles
        outside [from_date, to_date] (IST) are dropped, a timestamp sent twice keeps its first
        occurrence, volume and open interest must be integers. Malformed JSON, a missing candle
        array or a candle with a missing or invalid field (a missing open interest included)
        raises ValueError and writes nothing: the caller then takes the checked Python path.
        Needs SQLite >= 3.38 (``->>``, ``unixepoch``): see :data:`JSON_INGEST`.
        """
        iv = interval if isinstance(interval, int) else interval_minutes(interval)
        parts = [body] if isinstance(body, str | bytes | bytearray) else list(body)
        texts = [p.decode("utf-8") if isinstance(p, bytes | bytearray) else p for p in parts]
        args = (int(contract_id), iv, from_date, to_date, texts, path, job_id, attempts)
        try:
            # The usual answer (every candle inside the window, no time twice) is written by
            # the plain statement; anything else (candles of other days, repeated times, rows
            # replaced) is written again by the exact one: clipped, first occurrence wins.
            return self._store_json(*args, exact=False)
        except _NotPlain:
            return self._store_json(*args, exact=True)

    def _store_json(
        self,
        cid: int,
        iv: int,
        from_date: date,
        to_date: date,
        texts: list[str],
        path: str,
        job_id: int | None,
        attempts: int,
        *,
        exact: bool,
    ) -> StoredWindow:
        from expirytrack_desktop.timeutil import IST_OFFSET_SECONDS

        lo = _day_epoch(from_date) - IST_OFFSET_SECONDS
        hi = _day_epoch(to_date) + 86400 - IST_OFFSET_SECONDS
        in_range = "FROM candle WHERE contract_id = ? AND interval = ? AND ts >= ? AND ts < ?"
        with self.transaction() as c:
            overlapped, before = c.execute(
                "SELECT EXISTS (SELECT 1 FROM fetch_window WHERE contract_id = ? AND "
                "interval = ? AND state != 'failed' AND from_date <= ? AND to_date >= ?), "
                f"(SELECT count(*) {in_range})",
                (cid, iv, to_date.isoformat(), from_date.isoformat(), cid, iv, lo, hi),
            ).fetchone()
            try:
                written = self._insert_json(c, cid, iv, texts, path, (lo, hi) if exact else None)
                n, bad = c.execute(_COUNT_AND_CHECK + in_range, (cid, iv, lo, hi)).fetchone()
            except sqlite3.IntegrityError as exc:
                raise ValueError(f"candle with a missing or invalid field ({exc})") from None
            except sqlite3.OperationalError as exc:
                if "json" in str(exc).lower():
                    raise ValueError(f"malformed candle JSON ({exc})") from None
                raise
            if not exact and written != n - before:
                raise _NotPlain  # rolls this transaction back
            if bad:
                # a value SQLite could not store as a number, or a fractional volume/OI: the
                # Python path's float()/int() would have refused or rounded it
                raise ValueError(f"{int(bad)} candle(s) with a non-numeric value")
            self._mark_done(c, cid, iv, from_date, to_date, n, job_id, attempts)
        return StoredWindow(n, bool(overlapped))

    @staticmethod
    def _insert_json(
        c: sqlite3.Connection,
        cid: int,
        iv: int,
        texts: list[str],
        path: str,
        clip: tuple[int, int] | None,
    ) -> int:
        """INSERT the candles of each body; returns the rows written. ValueError if a body has
        no candle array. ``clip`` = (lo, hi) epoch bounds: keep only candles inside."""
        # The API sends newest first: insert in key order reversed (ascending time), which
        # appends to the clustered index instead of splitting its pages, and lets the first
        # occurrence of a repeated time be written last (it wins, as in the Python path).
        if clip is None:
            # (json_extract with a literal path is ~10% cheaper than ->> with an integer)
            sql = (
                f"INSERT OR REPLACE INTO candle SELECT {cid}, {iv}, "
                "unixepoch(json_extract(value, '$[0]')), json_extract(value, '$[1]'), "
                "json_extract(value, '$[2]'), json_extract(value, '$[3]'), "
                "json_extract(value, '$[4]'), json_extract(value, '$[5]'), "
                "json_extract(value, '$[6]') FROM json_each(?, ?) ORDER BY key DESC"
            )
        else:
            # LIMIT keeps SQLite from flattening the subquery: each value is extracted once
            # and the filter reads the computed time (NULL kept: it fails NOT NULL)
            sql = (
                f"INSERT OR REPLACE INTO candle SELECT {cid}, {iv}, t, o, h, l, c, v, i FROM ("
                "SELECT unixepoch(value ->> 0) AS t, value ->> 1 AS o, value ->> 2 AS h, "
                "value ->> 3 AS l, value ->> 4 AS c, value ->> 5 AS v, value ->> 6 AS i "
                "FROM json_each(?, ?) ORDER BY key DESC LIMIT -1) "
                f"WHERE t IS NULL OR (t >= {int(clip[0])} AND t < {int(clip[1])})"
            )
        written = 0
        for text in texts:
            cur = c.execute(sql, (text, path))
            if cur.rowcount > 0:
                written += cur.rowcount
            else:  # tell "an empty candle array" from "no array at all"
                kind = c.execute("SELECT json_type(?, ?)", (text, path)).fetchone()[0]
                if kind != "array":
                    raise ValueError(f"no candle array at {path} ({kind or 'missing'})")
        return written

    @staticmethod
    def _overlaps(c: sqlite3.Connection, cid: int, iv: int, f: date, t: date) -> bool:
        return (
            c.execute(
                "SELECT 1 FROM fetch_window WHERE contract_id = ? AND interval = ? "
                "AND state != 'failed' AND from_date <= ? AND to_date >= ? LIMIT 1",
                (cid, iv, t.isoformat(), f.isoformat()),
            ).fetchone()
            is not None
        )

    def _mark_done(
        self,
        c: sqlite3.Connection,
        contract_id: int,
        iv: int,
        from_date: date,
        to_date: date,
        n: int,
        job_id: int | None,
        attempts: int,
    ) -> None:
        """Inside the caller's transaction: resolve failed marks in the range, mark it done."""
        f, t = from_date.isoformat(), to_date.isoformat()
        c.execute(
            "DELETE FROM fetch_window WHERE contract_id = ? AND interval = ? "
            "AND state = 'failed' AND from_date <= ? AND to_date >= ?",
            (contract_id, iv, t, f),
        )
        c.execute(
            "INSERT OR REPLACE INTO fetch_window(contract_id, interval, from_date, to_date, "
            "state, candles, attempts, error, job_id, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, NULL, ?, ?)",
            (
                contract_id,
                iv,
                f,
                t,
                "fetched" if n else "empty",
                n,
                attempts,
                job_id,
                self.now_text(),
            ),
        )

    def mark_window_failed(
        self,
        contract_id: int,
        interval: str | int,
        from_date: date,
        to_date: date,
        error: str,
        *,
        job_id: int | None = None,
    ) -> int:
        """Record a failed window (error text, attempts + 1). A done window is never downgraded.

        Returns the attempts now recorded.
        """
        iv = interval if isinstance(interval, int) else interval_minutes(interval)
        with self.transaction() as c:
            c.execute(
                "INSERT INTO fetch_window(contract_id, interval, from_date, to_date, state, "
                "candles, attempts, error, job_id, updated_at) "
                "VALUES (?, ?, ?, ?, 'failed', 0, 1, ?, ?, ?) "
                "ON CONFLICT(contract_id, interval, from_date) DO UPDATE SET "
                "attempts = attempts + 1, error = excluded.error, to_date = excluded.to_date, "
                "job_id = excluded.job_id, updated_at = excluded.updated_at "
                "WHERE state = 'failed'",
                (
                    contract_id,
                    iv,
                    from_date.isoformat(),
                    to_date.isoformat(),
                    error[:1000],
                    job_id,
                    self.now_text(),
                ),
            )
            row = c.execute(
                "SELECT attempts FROM fetch_window WHERE contract_id = ? AND interval = ? "
                "AND from_date = ?",
                (contract_id, iv, from_date.isoformat()),
            ).fetchone()
        return int(row[0]) if row else 0

    def failed_windows(self, job_id: int | None = None) -> list[tuple[WindowRow, str]]:
        """Failed windows (optionally of one job) with their contract's expired key."""
        sql = (
            "SELECT w.contract_id, w.interval, w.from_date, w.to_date, w.state, w.candles, "
            "w.attempts, w.error, w.job_id, c.expired_key FROM fetch_window w "
            "JOIN contract c ON c.id = w.contract_id WHERE w.state = 'failed'"
        )
        params: tuple[Any, ...] = ()
        if job_id is not None:
            sql += " AND w.job_id = ?"
            params = (job_id,)
        return [
            (
                WindowRow.from_row(r),
                r[9],
            )
            for r in self._query(sql + " ORDER BY w.contract_id, w.from_date", params)
        ]

    def set_coverage_target(
        self, expiry_id: int, interval: str | int, from_date: date, to_date: date
    ) -> None:
        """Remember the widest history window asked for an expiry (what 'complete' means)."""
        iv = interval if isinstance(interval, int) else interval_minutes(interval)
        with self.transaction() as c:
            c.execute(
                "INSERT INTO coverage_target(expiry_id, interval, from_date, to_date) "
                "VALUES (?, ?, ?, ?) ON CONFLICT(expiry_id, interval) DO UPDATE SET "
                "from_date = MIN(from_date, excluded.from_date), "
                "to_date = MAX(to_date, excluded.to_date)",
                (expiry_id, iv, from_date.isoformat(), to_date.isoformat()),
            )

    def set_data_fetched(self, expiry_id: int, done: bool = True) -> None:
        with self.transaction() as c:
            c.execute("UPDATE expiry SET data_fetched = ? WHERE id = ?", (int(done), expiry_id))

    # ---- reports -----------------------------------------------------------------------------

    def coverage(
        self, instrument_key: str | None = None, interval: str | None = None
    ) -> list[ExpiryCoverage]:
        """Coverage per underlying × expiry × interval (targets recorded by the engine).

        Expiries known but never targeted are listed with interval ``interval or '1minute'``
        and state 'no_data'. Ordered by underlying, then expiry date descending.
        """
        where, params = "", []
        if instrument_key:
            where = " WHERE u.instrument_key = ?"
            params.append(instrument_key)
        exp_rows = self._query(
            "SELECT e.id, u.instrument_key, u.symbol, e.expiry_date, e.is_weekly, "
            "e.contracts_fetched FROM expiry e JOIN underlying u ON u.id = e.underlying_id"
            + where
            + " ORDER BY u.instrument_key, e.expiry_date DESC",
            params,
        )
        iv_filter = interval_minutes(interval) if interval else None
        targets: dict[int, list[tuple[int, date, date]]] = {}
        for r in self._query("SELECT expiry_id, interval, from_date, to_date FROM coverage_target"):
            if iv_filter is None or r[1] == iv_filter:
                targets.setdefault(r[0], []).append(
                    (r[1], date.fromisoformat(r[2]), date.fromisoformat(r[3]))
                )
        out: list[ExpiryCoverage] = []
        for eid, key, symbol, exp_text, weekly, cfetched in exp_rows:
            exp = date.fromisoformat(exp_text)
            contract_ids = [
                r[0] for r in self._query("SELECT id FROM contract WHERE expiry_id = ?", (eid,))
            ]
            tlist = targets.get(eid) or [
                (iv_filter or 1, None, None)  # type: ignore[list-item]
            ]
            for iv, t_from, t_to in tlist:
                windows = self.windows_for(contract_ids, iv) if contract_ids else {}
                complete = no_trades = failed = candles = 0
                any_cov = False
                for cid in contract_ids:
                    ws = windows.get(cid, [])
                    done = [(w.from_date, w.to_date) for w in ws if w.state != "failed"]
                    candles += sum(w.candles for w in ws)
                    any_cov = any_cov or bool(done)
                    gaps = subtract_ranges((t_from, t_to), done) if t_from else [(exp, exp)]
                    if not gaps:
                        complete += 1
                        if all(w.candles == 0 for w in ws if w.state != "failed"):
                            no_trades += 1
                    for w in ws:
                        if w.state == "failed" and subtract_ranges((w.from_date, w.to_date), done):
                            failed += 1
                if failed:
                    state = "failed"
                elif cfetched and contract_ids and complete == len(contract_ids) and t_from:
                    state = "complete"
                elif any_cov:
                    state = "partial"
                elif cfetched and not contract_ids and t_from:
                    state = "complete"  # the API listed no contracts for this expiry
                else:
                    state = "no_data"
                out.append(
                    ExpiryCoverage(
                        instrument_key=key,
                        symbol=symbol,
                        expiry_date=exp,
                        is_weekly=None if weekly is None else bool(weekly),
                        interval=interval_name(iv),
                        contracts_fetched=bool(cfetched),
                        contracts=len(contract_ids),
                        contracts_complete=complete,
                        contracts_no_trades=no_trades,
                        failed_windows=failed,
                        candles=candles,
                        target=(t_from, t_to) if t_from else None,
                        state=state,
                    )
                )
        return out

    def counts(self) -> Counts:
        r = self._query(
            "SELECT (SELECT count(*) FROM underlying), (SELECT count(*) FROM expiry), "
            "(SELECT count(*) FROM contract), "
            "(SELECT COALESCE(sum(candles), 0) FROM fetch_window WHERE state = 'fetched')"
        )[0]
        size = 0
        for suffix in ("", "-wal"):
            with contextlib.suppress(OSError):
                size += os.path.getsize(str(self.path) + suffix)
        return Counts(r[0], r[1], r[2], r[3], size)

    def candle_rows(
        self, expired_key: str, interval: str = "1minute"
    ) -> list[tuple[int, float, float, float, float, int, int]]:
        """Stored candles of one contract, oldest first (tests, verification)."""
        rows = self._query(
            "SELECT k.ts, k.open, k.high, k.low, k.close, k.volume, k.oi FROM candle k "
            "JOIN contract c ON c.id = k.contract_id WHERE c.expired_key = ? AND k.interval = ? "
            "ORDER BY k.ts",
            (expired_key, interval_minutes(interval)),
        )
        return [tuple(r) for r in rows]  # type: ignore[misc]

    # ---- jobs ----------------------------------------------------------------------------------

    _JOB_COLUMNS = (
        "status",
        "params_json",
        "underlyings",
        "expiries",
        "total_items",
        "done_items",
        "failed_items",
        "requests",
        "candles",
        "error_message",
        "retry_count",
        "pid",
        "started_at",
        "completed_at",
        "heartbeat_at",
    )

    def create_job(
        self,
        job_type: str,
        params: dict[str, Any],
        *,
        underlyings: str = "",
        expiries: str = "",
        status: str = "pending",
    ) -> int:
        with self.transaction() as c:
            cur = c.execute(
                "INSERT INTO job(job_type, status, params_json, underlyings, expiries, created_at) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (job_type, status, json.dumps(params), underlyings, expiries, self.now_text()),
            )
            return int(cur.lastrowid or 0)

    def update_job(self, job_id: int, **fields: Any) -> None:
        """Set job columns (status, counters, error_message, pid, started_at, ...)."""
        bad = set(fields) - set(self._JOB_COLUMNS)
        if bad:
            raise ValueError(f"unknown job fields: {sorted(bad)}")
        if "status" in fields and fields["status"] not in JOB_STATUSES:
            raise ValueError(f"unknown job status {fields['status']!r}")
        if not fields:
            return
        sets = ", ".join(f"{k} = ?" for k in fields)
        with self.transaction() as c:
            c.execute(f"UPDATE job SET {sets} WHERE id = ?", (*fields.values(), job_id))

    def add_job_log(self, job_id: int, level: str, message: str) -> None:
        with self.transaction() as c:
            c.execute(
                "INSERT INTO job_log(job_id, at, level, message) VALUES (?, ?, ?, ?)",
                (job_id, self.now_text(), level, message[:2000]),
            )

    def job_logs(self, job_id: int, limit: int = 200) -> list[tuple[str, str, str]]:
        """``(at, level, message)``, oldest first, the last ``limit`` entries."""
        rows = self._query(
            "SELECT at, level, message FROM (SELECT rowid AS r, at, level, message FROM job_log "
            "WHERE job_id = ? ORDER BY rowid DESC LIMIT ?) ORDER BY r",
            (job_id, limit),
        )
        return [(r[0], r[1], r[2]) for r in rows]

    def get_job(self, job_id: int) -> JobRecord | None:
        dead = self._dead_jobs()
        rows = self._query("SELECT * FROM job WHERE id = ?", (job_id,))
        return self._job(rows[0], dead) if rows else None

    def list_jobs(self, limit: int = 100, job_type: str | None = None) -> list[JobRecord]:
        """Newest first; dead 'running' jobs are reported (and stored) as 'interrupted'."""
        dead = self._dead_jobs()
        if job_type:
            rows = self._query(
                "SELECT * FROM job WHERE job_type = ? ORDER BY id DESC LIMIT ?", (job_type, limit)
            )
        else:
            rows = self._query("SELECT * FROM job ORDER BY id DESC LIMIT ?", (limit,))
        return [self._job(r, dead) for r in rows]

    def _dead_jobs(self) -> set[int]:
        """Mark dead jobs interrupted; report them even if the file cannot be written now
        (read-only, locked): the status command must still tell the truth."""
        dead = self._find_dead_jobs()
        if dead:
            with contextlib.suppress(StoreLockedError, StoreUnwritableError):
                self._store_interrupted(dead)
        return dead

    def mark_interrupted_jobs(self) -> int:
        """Jobs whose process is gone -> interrupted (resumable). Returns how many.

        Running/paused: the recorded pid is not alive, or the heartbeat is stale. Pending (just
        created, its process has not started it yet, so no pid): only when a recorded pid is
        dead, or when it has stayed pending longer than ``STALE_HEARTBEAT``; otherwise listing
        jobs right after ``create_job`` would flip a job that is about to start.
        """
        dead = self._find_dead_jobs()
        if dead:
            self._store_interrupted(dead)
        return len(dead)

    def _find_dead_jobs(self) -> set[int]:
        rows = self._query(
            "SELECT id, status, pid, heartbeat_at, created_at FROM job "
            "WHERE status IN ('running', 'pending', 'paused')"
        )
        now = self.clock()

        def older(text: str | None) -> bool:
            if not text:
                return False
            at = datetime.strptime(text, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
            return now - at > STALE_HEARTBEAT

        dead: set[int] = set()
        for jid, status, pid, beat, created in rows:
            if status == "pending" and pid is None:
                if older(beat or created):
                    dead.add(jid)
            elif not self._pid_alive(pid) or older(beat):
                dead.add(jid)
        return dead

    def _store_interrupted(self, dead: set[int]) -> None:
        with self.transaction() as c:
            c.executemany(
                "UPDATE job SET status = 'interrupted' WHERE id = ? "
                "AND status IN ('running', 'pending', 'paused')",
                [(j,) for j in sorted(dead)],
            )

    @staticmethod
    def _job(r: sqlite3.Row, dead: set[int] | frozenset[int] = frozenset()) -> JobRecord:
        try:
            params = json.loads(r["params_json"] or "{}")
        except ValueError:
            params = {}
        return JobRecord(
            id=r["id"],
            job_type=r["job_type"],
            status="interrupted"
            if r["id"] in dead and r["status"] in ("running", "pending", "paused")
            else r["status"],
            params=params,
            underlyings=r["underlyings"],
            expiries=r["expiries"],
            total_items=r["total_items"],
            done_items=r["done_items"],
            failed_items=r["failed_items"],
            requests=r["requests"],
            candles=r["candles"],
            error_message=r["error_message"],
            retry_count=r["retry_count"],
            pid=r["pid"],
            created_at=r["created_at"],
            started_at=r["started_at"],
            completed_at=r["completed_at"],
            heartbeat_at=r["heartbeat_at"],
        )

    def integrity_check(self) -> str:
        return str(self._query("PRAGMA integrity_check")[0][0])


# ---------------------------------------------------------------------------------------------


def open_database(
    path: Path | str,
    *,
    create: bool = True,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    check_writable: bool = True,
    max_page_count: int | None = None,
    clock: Callable[[], datetime] = _default_clock,
    backup: bool = True,
) -> Database:
    """Open (and create/migrate) an ExpiryTrack database. Raises a :class:`StoreError` subclass.

    - WAL journal, foreign keys on, ``busy_timeout_ms`` wait for another process's write lock.
    - ``PRAGMA user_version`` migrations in order; an existing database is first copied to
      ``<file>.v<old>.bak`` with SQLite's backup API. A file from a newer version is refused
      before anything is written to it.
    - ``check_writable`` probes the write lock now (so "locked"/"read-only" is reported up front).
    - ``max_page_count`` caps the file size for this connection (simulates a full disk).
    """
    path = Path(path)
    if str(path) != ":memory:":
        if not path.exists():
            if not create:
                raise StoreMissingError(f"No database at {path}.")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnwritableError(
                    f"Cannot create the folder for the database {path}: {exc.strerror or exc}."
                ) from exc
        elif path.is_dir():
            raise StoreUnwritableError(f"{path} is a folder, not a database file.")
    try:
        conn = sqlite3.connect(
            str(path),
            timeout=busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
        )
    except sqlite3.Error as exc:
        raise translate_error(exc, path, busy_timeout_ms) from exc
    conn.row_factory = sqlite3.Row
    try:
        db = _prepare(conn, path, busy_timeout_ms, check_writable, max_page_count, clock, backup)
    except BaseException:
        conn.close()
        raise
    return db


def _prepare(
    conn: sqlite3.Connection,
    path: Path,
    busy_timeout_ms: int,
    check_writable: bool,
    max_page_count: int | None,
    clock: Callable[[], datetime],
    backup: bool,
) -> Database:
    migrations = load_migrations()
    target = len(migrations)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        has_tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
    except sqlite3.Error as exc:
        raise translate_error(exc, path, busy_timeout_ms) from exc
    if version > target:
        raise StoreVersionError(
            f"{path} was written by a newer ExpiryTrack (schema {version}, this version knows "
            f"{target}); update the app. The file was not changed."
        )
    if version == 0 and has_tables:
        raise StoreCorruptError(f"{path} is an SQLite file but not an ExpiryTrack database.")
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        if str(path) != ":memory:":
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("journal_mode is %s, not WAL, for %s", mode, path)
        conn.execute("PRAGMA synchronous = NORMAL")
        if max_page_count is not None:
            conn.execute(f"PRAGMA max_page_count = {int(max_page_count)}")
        if check_writable:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        raise translate_error(exc, path, busy_timeout_ms) from exc
    if version < target:
        if version > 0 and backup and str(path) != ":memory:":
            _backup(conn, path, version, busy_timeout_ms)
        for number, name, sql in migrations[version:]:
            try:
                conn.executescript(
                    f"BEGIN IMMEDIATE;\n{sql}\n;PRAGMA user_version = {number};\nCOMMIT;"
                )
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                err = translate_error(exc, path, busy_timeout_ms)
                raise type(err)(f"Migration {name} failed: {err}") from exc
            log.info("migrated %s to schema %d (%s)", path, number, name)
    return Database(conn, path, busy_timeout_ms=busy_timeout_ms, clock=clock)


def _backup(conn: sqlite3.Connection, path: Path, version: int, busy_timeout_ms: int) -> Path:
    dest = path.with_name(f"{path.name}.v{version}.bak")
    n = 1
    while dest.exists():
        n += 1
        dest = path.with_name(f"{path.name}.v{version}.{n}.bak")
    try:
        target = sqlite3.connect(str(dest))
        with target:
            conn.backup(target)
        target.close()
    except (sqlite3.Error, OSError) as exc:
        raise translate_error(exc, dest, busy_timeout_ms) from exc
    log.info("backed up %s to %s before migrating", path, dest)
    return dest
