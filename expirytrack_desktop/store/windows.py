"""Candle-window writes (the hot path): a window's candles and its done/failed mark in one
transaction, from Python candles or straight from the API's JSON text."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import date
from typing import Any

from expirytrack_desktop.store.base import DatabaseBase
from expirytrack_desktop.store.intervals import interval_minutes
from expirytrack_desktop.store.rows import StoredWindow, WindowRow
from expirytrack_desktop.upstox.models import Candle

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


def _day_epoch(d: date) -> int:
    """Epoch seconds of 00:00 UTC of ``d`` (callers shift by the IST offset)."""
    return (d - date(1970, 1, 1)).days * 86400


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
