"""The F&O universe kept from Upstox's instrument master (table ``fo_underlying``).

A new master replaces what is "in F&O now" in one transaction, so a refused or interrupted
refresh leaves the previous copy whole. Underlyings that left F&O are never deleted: their
expired contracts can still be collected for about six months.
"""

from __future__ import annotations

import json
import sqlite3
import statistics
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from expirytrack_desktop.store.base import DatabaseBase
from expirytrack_desktop.upstox.models import is_stock_key

_KV_DATE = "universe_master_date"
_KV_SOURCE = "universe_master_source"
_KV_FETCHED = "universe_master_fetched_at"
KINDS = ("INDEX", "EQUITY")
_KV_EDGE = "retention_edge:"  # + instrument key -> 'seen_on|oldest expiry offered'
_KV_COUNTS = "universe_contracts_per_expiry"  # JSON {instrument key: contracts}, the latest
_KV_WEEKLY = "universe_contracts_per_weekly"  # the same, of weekly expiries


def record_retention_edge(
    conn: sqlite3.Connection, instrument_key: str, now: datetime, oldest: date
) -> None:
    """Within the caller's transaction: on ``now`` (IST day) the API's oldest expiry of
    ``instrument_key`` was ``oldest``."""
    from expirytrack_desktop.timeutil import IST

    seen = now.astimezone(IST).date() if now.tzinfo else now.date()
    conn.execute(
        "INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)",
        (_KV_EDGE + instrument_key, f"{seen.isoformat()}|{oldest.isoformat()}"),
    )


def _counts(text: str | None) -> dict[str, int]:
    """The kept master counts (a damaged value reads as none: they are only estimates)."""
    try:
        got = json.loads(text) if text else {}
    except ValueError:
        return {}
    if not isinstance(got, dict):
        return {}
    return {str(k): v for k, v in got.items() if isinstance(v, int) and v > 0}


def read_underlying_names(
    query: Callable[[str, Sequence[Any]], Sequence[Sequence[Any]]], keys: Iterable[str] | None
) -> dict[str, str]:
    """``{instrument key: trading symbol}`` for the user to read: the instrument master's
    symbol, else the one stored with the underlying's contracts. Keys with neither are left
    out (callers show the key). ``keys`` None: all."""
    wanted = None if keys is None else set(keys)
    if wanted is not None and not wanted:
        return {}
    out: dict[str, str] = {}
    for table in ("underlying", "fo_underlying"):  # the master's symbol wins
        sql = f"SELECT instrument_key, symbol FROM {table} WHERE symbol IS NOT NULL"
        if wanted is not None and len(wanted) <= 500:
            marks = ",".join("?" * len(wanted))
            rows = query(f"{sql} AND instrument_key IN ({marks})", sorted(wanted))
        else:
            rows = query(sql, ())
        for key, symbol in rows:
            if symbol and symbol != key and (wanted is None or key in wanted):
                out[key] = symbol
    return out


@dataclass(frozen=True, slots=True)
class UniverseEntry:
    """What a master says of one F&O underlying (the input of :meth:`replace_universe`)."""

    instrument_key: str
    symbol: str
    name: str
    underlying_type: str  # 'INDEX' | 'EQUITY'
    fo_segment: str  # 'NSE_FO' | 'BSE_FO'
    lot_size: int
    contracts_per_expiry: int = 0  # the most of one listed monthly expiry (0: not counted)
    contracts_per_weekly: int = 0  # ... of one weekly expiry


@dataclass(frozen=True, slots=True)
class UniverseRow:
    instrument_key: str
    symbol: str
    name: str
    underlying_type: str
    fo_segment: str
    lot_size: int
    first_seen: date
    last_seen: date
    in_fo: bool  # listed by the cached master


@dataclass(frozen=True, slots=True)
class UniverseInfo:
    """The cached master: its day, where it came from, when it was fetched (UTC text)."""

    master_date: date
    source: str
    fetched_at: str
    in_fo: int
    former: int


@dataclass(frozen=True, slots=True)
class UniverseChange:
    total: int
    added: int  # first seen in this master
    left: int  # in the previous master, not in this one


class UniverseStore(DatabaseBase):
    """Part of :class:`~expirytrack_desktop.store.Database`."""

    def universe_info(self) -> UniverseInfo | None:
        """The cached master's facts, or None before the first successful download."""
        day = self.kv_get(_KV_DATE)
        if not day:
            return None
        counts = self._query(
            "SELECT sum(last_seen = ?), sum(last_seen < ?) FROM fo_underlying", (day, day)
        )[0]
        return UniverseInfo(
            date.fromisoformat(day),
            self.kv_get(_KV_SOURCE, "") or "",
            self.kv_get(_KV_FETCHED, "") or "",
            int(counts[0] or 0),
            int(counts[1] or 0),
        )

    def replace_universe(
        self, entries: Iterable[UniverseEntry], master_date: date, source: str
    ) -> UniverseChange:
        """Store a complete master of ``master_date`` (one transaction; ValueError on a bad
        entry, nothing written). Facts are updated; first_seen stays; absent ones are kept."""
        rows = []
        for e in entries:
            if e.underlying_type not in KINDS or e.fo_segment not in ("NSE_FO", "BSE_FO"):
                raise ValueError(f"not an F&O underlying: {e!r}")
            rows.append(e)
        if not rows:
            raise ValueError("an instrument master with no F&O underlying is refused")
        day = master_date.isoformat()
        with self.transaction() as c:
            previous = c.execute("SELECT value FROM kv WHERE key = ?", (_KV_DATE,)).fetchone()
            prev_day = previous[0] if previous else None
            before = {
                r[0]: r[1] for r in c.execute("SELECT instrument_key, last_seen FROM fo_underlying")
            }
            c.executemany(
                "INSERT INTO fo_underlying (instrument_key, symbol, name, underlying_type, "
                "fo_segment, lot_size, first_seen, last_seen) VALUES (?,?,?,?,?,?,?,?) "
                "ON CONFLICT (instrument_key) DO UPDATE SET symbol = excluded.symbol, "
                "name = excluded.name, underlying_type = excluded.underlying_type, "
                "fo_segment = excluded.fo_segment, lot_size = excluded.lot_size, "
                "first_seen = min(first_seen, excluded.first_seen), "
                "last_seen = max(last_seen, excluded.last_seen)",
                [
                    (e.instrument_key, e.symbol, e.name, e.underlying_type, e.fo_segment,
                     int(e.lot_size), day, day)
                    for e in rows
                ],
            )  # fmt: skip
            # Underlyings collected before their symbol was known (stocks by ISIN key) are
            # named from now on: job summaries, coverage and at-risk lists read this symbol.
            c.execute(
                "UPDATE underlying SET symbol = (SELECT f.symbol FROM fo_underlying f "
                "WHERE f.instrument_key = underlying.instrument_key), name = COALESCE(name, "
                "(SELECT f.name FROM fo_underlying f WHERE f.instrument_key = "
                "underlying.instrument_key)) WHERE (symbol IS NULL OR symbol = instrument_key) "
                "AND instrument_key IN (SELECT instrument_key FROM fo_underlying)"
            )
            if prev_day is None or day >= prev_day:
                kept = []
                for name, attr in ((_KV_COUNTS, "contracts_per_expiry"),
                                   (_KV_WEEKLY, "contracts_per_weekly")):  # fmt: skip
                    counts = self._master_counts(c, name)
                    counts.update({e.instrument_key: int(getattr(e, attr))
                                   for e in rows if getattr(e, attr) > 0})  # fmt: skip
                    kept.append((name, json.dumps(counts, sort_keys=True)))
                for key, value in ((_KV_DATE, day), (_KV_SOURCE, source),
                                   (_KV_FETCHED, self.now_text()), *kept):  # fmt: skip
                    c.execute("INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)", (key, value))
        now = {e.instrument_key for e in rows}
        left = sum(1 for k, seen in before.items() if seen == prev_day and k not in now)
        return UniverseChange(len(now), len(now - before.keys()), left)

    @staticmethod
    def _master_counts(conn: sqlite3.Connection, name: str) -> dict[str, int]:
        row = conn.execute("SELECT value FROM kv WHERE key = ?", (name,)).fetchone()
        return _counts(row[0] if row else None)

    def _master_counts_by_kind(self) -> dict[bool, dict[str, int]]:
        """The latest master's counts: ``{weekly: {instrument key: contracts}}``."""
        return {False: _counts(self.kv_get(_KV_COUNTS)), True: _counts(self.kv_get(_KV_WEEKLY))}

    def contracts_per_expiry(self, keys: Iterable[str]) -> dict[bool, dict[str, int]]:
        """What a monthly (``False``) and a weekly (``True``) expiry of each underlying
        lists, for estimates before its contracts are listed: the median over its listed
        expiries of that kind, else the most of one such expiry in the latest instrument
        master, else the same of the other kind; keys with none of these are left out."""
        wanted = sorted(set(keys))
        listed: dict[tuple[str, bool], list[int]] = {}
        for i in range(0, len(wanted), 500):
            part = wanted[i : i + 500]
            for key, is_weekly, n in self._query(
                "SELECT u.instrument_key, coalesce(e.is_weekly, 0), count(c.id) FROM underlying u"
                " JOIN expiry e ON e.underlying_id = u.id AND e.contracts_fetched = 1"
                " JOIN contract c ON c.expiry_id = e.id"
                f" WHERE u.instrument_key IN ({','.join('?' * len(part))})"
                " GROUP BY e.id",
                part,
            ):
                listed.setdefault((str(key), bool(is_weekly)), []).append(int(n))
        master = self._master_counts_by_kind()
        out: dict[bool, dict[str, int]] = {False: {}, True: {}}
        for weekly, found in out.items():
            for key in wanted:
                for kind in (weekly, not weekly):  # this kind first, then the other
                    if (key, kind) in listed:
                        found[key] = int(statistics.median(listed[(key, kind)]))
                        break
                    if key in master[kind]:
                        found[key] = master[kind][key]
                        break
        return out

    def peer_contracts_per_expiry(self) -> dict[tuple[bool, bool], int]:
        """``(stock, weekly)`` -> the median contracts per expiry of the latest instrument
        master's stocks or indices: the estimate for an underlying the master no longer lists
        (a stock that left F&O) whose expiries are not listed yet either."""
        out: dict[tuple[bool, bool], int] = {}
        for weekly, counts in self._master_counts_by_kind().items():
            for stock in (False, True):
                mine = [n for k, n in counts.items() if is_stock_key(k) == stock]
                if mine:
                    out[(stock, weekly)] = int(statistics.median(mine))
        return out

    def retention_edges(self) -> dict[str, tuple[date, date]]:
        """Per underlying key: ``(day seen, oldest expiry the API offered that day)``."""
        out: dict[str, tuple[date, date]] = {}
        for key, value in self._query(
            "SELECT key, value FROM kv WHERE key LIKE ?", (_KV_EDGE + "%",)
        ):
            seen, _, oldest = str(value).partition("|")
            try:
                out[key[len(_KV_EDGE) :]] = (date.fromisoformat(seen), date.fromisoformat(oldest))
            except ValueError:
                continue
        return out

    def underlying_names(self, keys: Iterable[str] | None = None) -> dict[str, str]:
        """``{instrument key: trading symbol}`` ('NSE_EQ|INE002A01018' -> 'RELIANCE')."""
        return read_underlying_names(self._query, keys)

    def universe(
        self,
        *,
        search: str | None = None,
        kind: str | None = None,
        include_former: bool = True,
    ) -> list[UniverseRow]:
        """Underlyings, indices first then by symbol; ``search`` matches symbol or name
        (case-insensitive substring); ``kind`` 'INDEX' or 'EQUITY'."""
        day = self.kv_get(_KV_DATE) or ""
        where, params = ["1"], []
        if kind:
            where.append("underlying_type = ?")
            params.append(kind)
        if search:
            where.append("(instr(upper(symbol), ?) > 0 OR instr(upper(name), ?) > 0)")
            params += [search.strip().upper()] * 2
        if not include_former:
            where.append("last_seen = ?")
            params.append(day)
        rows = self._query(
            "SELECT instrument_key, symbol, name, underlying_type, fo_segment, lot_size, "
            "first_seen, last_seen FROM fo_underlying WHERE "
            + " AND ".join(where)
            + " ORDER BY underlying_type = 'EQUITY', upper(symbol), instrument_key",
            params,
        )
        return [
            UniverseRow(
                r[0], r[1], r[2], r[3], r[4], int(r[5]),
                date.fromisoformat(r[6]), date.fromisoformat(r[7]), r[7] == day,
            )
            for r in rows
        ]  # fmt: skip
