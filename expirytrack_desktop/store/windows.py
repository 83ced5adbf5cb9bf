"""Candle-window writes (the hot path): a window's candles and its done/failed mark in one
transaction, from checked Python candles or from the API's answers as decoded."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.store.base import DatabaseBase
from expirytrack_desktop.store.intervals import interval_minutes
from expirytrack_desktop.store.prices import EXACT_INSERT, FAST_INSERT, ROW_INSERT, stored_rows
from expirytrack_desktop.store.rows import StoredWindow, WindowRow
from expirytrack_desktop.timeutil import day_start_epoch
from expirytrack_desktop.upstox.models import Candle

if TYPE_CHECKING:  # the checker (msgspec) is imported by the first write, not by readers
    from expirytrack_desktop.upstox.candles import CandleRows

# ISO text with an offset -> epoch seconds; NULL (refused by NOT NULL) if unreadable.
# strftime('%s') where SQLite predates unixepoch (3.38): text, stored as INTEGER by affinity.
_ISO_TS = "unixepoch(?1)" if sqlite3.sqlite_version_info >= (3, 38, 0) else "strftime('%s', ?1)"


def _store_rows(
    c: sqlite3.Connection, cid: int, iv: int, candles: Sequence[Candle], f: date, t: date
) -> None:
    """Checked Python candles (epoch seconds, ascending, one per time) into the price layout
    of ``store/prices.py``, side rows included, inside the caller's transaction."""
    rows, exact = stored_rows(candles)
    c.executemany(ROW_INSERT.format(cid=cid, iv=iv), rows)
    if exact:
        c.executemany(EXACT_INSERT.format(cid=cid, iv=iv), exact)
    _drop_stale_exact(c, cid, iv, f, t)


def _drop_stale_exact(c: sqlite3.Connection, cid: int, iv: int, f: date, t: date) -> None:
    """Side rows of this window's times whose candle now holds its prices in paise."""
    c.execute(
        "DELETE FROM candle_exact WHERE contract_id = ? AND interval = ? AND ts >= ? AND ts < ? "
        "AND EXISTS (SELECT 1 FROM candle k WHERE k.contract_id = candle_exact.contract_id "
        "AND k.interval = candle_exact.interval AND k.ts = candle_exact.ts "
        "AND k.close IS NOT NULL)",
        (cid, iv, day_start_epoch(f), day_start_epoch(t + timedelta(days=1))),
    )


def _release(
    c: sqlite3.Connection, job_id: int | None, cid: int, iv: int, claim: tuple[date, date] | None
) -> None:
    """Inside the done/failed transaction of a claimed window's last part: drop the claim
    (see ``store/claims.py``)."""
    if job_id is not None and claim is not None:
        c.execute(
            "DELETE FROM window_claim WHERE job_id = ? AND contract_id = ? AND interval = ? "
            "AND from_date = ? AND to_date = ?",
            (job_id, cid, iv, claim[0].isoformat(), claim[1].isoformat()),
        )


class WindowStore(DatabaseBase):
    """fetch_window marks and candle rows (part of :class:`Database`)."""

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

    def window_ranges(
        self, contract_ids: Iterable[int], interval: str | int
    ) -> dict[int, list[tuple[date, date, str]]]:
        """``{contract id: [(first day, last day, state), ...]}`` of these contracts' windows
        for one interval: what planning needs. One row per contract, and each distinct set of
        windows parsed once (the contracts of an expiry mostly share theirs; planning a
        universe reads ~450,000 windows of 150,000 contracts). The lists may be shared
        between contracts: read them, do not change them."""
        iv = interval if isinstance(interval, int) else interval_minutes(interval)
        ids = list(contract_ids)
        out: dict[int, list[tuple[date, date, str]]] = {i: [] for i in ids}
        parsed: dict[str, list[tuple[date, date, str]]] = {}
        day = date.fromisoformat
        for start in range(0, len(ids), 500):
            part = ids[start : start + 500]
            marks = ",".join("?" * len(part))
            for cid, spec in self._query(
                "SELECT contract_id, group_concat(from_date || to_date || state, ',') "
                f"FROM fetch_window WHERE interval = ? AND contract_id IN ({marks}) "
                "GROUP BY contract_id",
                (iv, *part),
            ):
                rows = parsed.get(spec)
                if rows is None:  # 'YYYY-MM-DDYYYY-MM-DDstate,...'
                    rows = parsed[spec] = [
                        (day(w[:10]), day(w[10:20]), w[20:]) for w in spec.split(",")
                    ]
                out[cid] = rows
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
        claim: tuple[date, date] | None = None,
    ) -> StoredWindow:
        """Write one fetched window: its candles AND its done mark, in ONE transaction.

        ``INSERT OR REPLACE`` keyed on (contract, interval, ts), so a re-fetch never duplicates.
        An empty ``candles`` records the window as 'empty' (fetched, no trades). Failed marks
        inside the range are dropped (they are resolved now). If the transaction fails (disk
        full, lock) nothing of it remains and the window stays "not fetched". ``claim``: the
        job's claimed window this write completes (its claim is dropped with the mark).
        """
        iv = interval if isinstance(interval, int) else interval_minutes(interval)
        cid = int(contract_id)
        with self.transaction() as c:
            overlapped = self._overlaps(c, cid, iv, from_date, to_date)
            if candles:
                _store_rows(c, cid, iv, candles, from_date, to_date)
            self._mark_done(c, cid, iv, from_date, to_date, len(candles), job_id, attempts, claim)
        return StoredWindow(len(candles), overlapped)

    def store_window_rows(
        self,
        contract_id: int,
        interval: str | int,
        from_date: date,
        to_date: date,
        answer: CandleRows,
        *,
        job_id: int | None = None,
        attempts: int = 1,
        claim: tuple[date, date] | None = None,
    ) -> StoredWindow:
        """Write one decoded answer (:func:`decode_candles`) for a window, and the window's done
        mark, in ONE transaction.

        The rows stored are exactly those of the Python path (``fetch_window`` +
        :meth:`store_window`): candles of days outside [from_date, to_date] (IST) are dropped,
        a time sent twice keeps its first occurrence (rows go in reversed: the API sends
        newest first, so the first occurrence is written last and ``OR REPLACE`` keeps it; and
        ascending time appends to the clustered index instead of splitting its pages).
        Prices go in as whole paise converted by SQLite when the answer's text shows each is
        one (``answer.paise``); otherwise each candle is checked in Python (``store/prices.py``:
        exact, with a side row for a price that is not a whole number of paise).
        ValueError if a row's time of day cannot be read (SQLite's ``unixepoch`` gives NULL);
        nothing is written then.
        """
        iv = interval if isinstance(interval, int) else interval_minutes(interval)
        cid = int(contract_id)
        kept = answer.in_days(from_date, to_date)
        n = len({r[0] for r in kept.rows})  # different times (one layout per answer)
        with self.transaction() as c:
            overlapped = self._overlaps(c, cid, iv, from_date, to_date)
            if kept.iso and kept.paise:
                try:
                    c.executemany(
                        FAST_INSERT.format(cid=cid, iv=iv, ts=_ISO_TS), reversed(kept.rows)
                    )
                except sqlite3.IntegrityError:
                    from expirytrack_desktop.upstox.candles import checked_rows

                    checked_rows(kept.rows)  # says which candle and why
                    raise ValueError("a candle with an unreadable time") from None
                _drop_stale_exact(c, cid, iv, from_date, to_date)
            elif kept.rows:
                _store_rows(c, cid, iv, kept.candles(), from_date, to_date)
            self._mark_done(c, cid, iv, from_date, to_date, n, job_id, attempts, claim)
        return StoredWindow(n, overlapped)

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
        claim: tuple[date, date] | None = None,
    ) -> None:
        """Inside the caller's transaction: resolve failed marks in the range, mark it done,
        drop the job's claim the write completes."""
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
        _release(c, job_id, contract_id, iv, claim)

    def mark_window_failed(
        self,
        contract_id: int,
        interval: str | int,
        from_date: date,
        to_date: date,
        error: str,
        *,
        job_id: int | None = None,
        claim: tuple[date, date] | None = None,
    ) -> int:
        """Record a failed window (error text, attempts + 1). A done window is never downgraded.
        ``claim``: the job's claimed window this failure ends (its claim is dropped with it).

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
            _release(c, job_id, contract_id, iv, claim)
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
