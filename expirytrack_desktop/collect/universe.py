"""The F&O universe: keeping the cached instrument master fresh, and turning what a person
types (``RELIANCE``, ``m&m``, ``BAJAJ-AUTO``, ``NSE_EQ|INE002A01018``) into instrument keys.

The master is downloaded at most once per (IST) day. When it cannot be had, the cached copy is
used and its date said; with no cache at all, typed keys and the index symbols still work.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from expirytrack_desktop.collect.instruments import KNOWN_UNDERLYINGS, resolve_instrument
from expirytrack_desktop.store.underlyings import UniverseEntry, UniverseInfo, UniverseRow
from expirytrack_desktop.timeutil import IST
from expirytrack_desktop.upstox.master import MasterError, download_master, shown_url


@dataclass(frozen=True, slots=True)
class UniverseStatus:
    """Where the universe in the database stands after :func:`refresh_universe`."""

    state: str  # 'fetched' (new master stored) | 'current' (today's copy) | 'cached' | 'none'
    info: UniverseInfo | None
    problem: str | None = None  # why the download did not happen or was refused

    @property
    def note(self) -> str | None:
        """One line for the user when the universe is not today's (None when it is)."""
        if self.state == "cached" and self.info:
            return (
                f"{self.problem}; using the cached instrument master of "
                f"{self.info.master_date.isoformat()}"
            )
        if self.state == "none":
            return (
                f"{self.problem}; no cached instrument master yet: instrument keys and the "
                f"index symbols ({', '.join(KNOWN_UNDERLYINGS)}) still work"
            )
        return None


def ist_today(clock: Callable[[], datetime] | None = None) -> date:
    return (clock() if clock else datetime.now(IST)).astimezone(IST).date()


async def refresh_universe(
    db: Any,
    url: str,
    *,
    transport: Any = None,
    today: date | None = None,
    force: bool = False,
) -> UniverseStatus:
    """Download and store the master unless today's copy is cached (or ``force``).

    A download or parse failure keeps the cached copy and reports why (never raises for it).
    """
    today = today or ist_today()
    info: UniverseInfo | None = await db.run(db.universe_info)
    if info is not None and info.master_date >= today and not force:
        return UniverseStatus("current", info)
    try:
        summary = await download_master(url, transport=transport)
    except MasterError as exc:
        return UniverseStatus("cached" if info else "none", info, str(exc))
    entries = [
        UniverseEntry(
            u.key,
            u.symbol,
            u.name,
            u.kind,
            u.segment,
            u.lot_size,
            u.contracts_per_expiry,
            u.contracts_per_weekly,
        )
        for u in summary.underlyings
    ]
    await db.run(db.replace_universe, entries, today, shown_url(url))
    return UniverseStatus("fetched", await db.run(db.universe_info))


async def load_universe(
    db: Any, url: str, *, transport: Any = None, today: date | None = None
) -> tuple[list[UniverseRow], str]:
    """Every underlying (refreshing the master first when due) and one line saying where the
    list comes from: today's master, the cached copy of a day (and why), or nothing."""
    status = await refresh_universe(db, url, transport=transport, today=today)
    rows: list[UniverseRow] = await db.run(db.universe)
    if status.note:
        return rows, status.note
    info = status.info
    assert info is not None
    indices = sum(1 for r in rows if r.underlying_type == "INDEX" and r.in_fo)
    former = f"; {info.former} that left F&O" if info.former else ""
    return rows, (
        f"{indices} indices and {info.in_fo - indices} stocks in F&O (instrument master of "
        f"{info.master_date.isoformat()}{former})"
    )


class ResolveError(ValueError):
    """Unknown or ambiguous instrument text; the message names the closest matches."""

    def __init__(self, message: str, matches: Sequence[UniverseRow] = ()) -> None:
        super().__init__(message)
        self.matches = tuple(matches)


def needs_universe(text: str) -> bool:
    """True when ``text`` looks like a symbol (no ``|``, no space) other than the built-in
    index symbols: only then is the instrument master needed."""
    value = text.strip()
    return (
        bool(value)
        and "|" not in value
        and not any(ch.isspace() for ch in value)
        and (value.upper() not in KNOWN_UNDERLYINGS)
    )


def _label(r: UniverseRow) -> str:
    gone = "" if r.in_fo else f", left F&O after {r.last_seen.isoformat()}"
    return f"{r.symbol} ({r.name}, {r.instrument_key}{gone})"


def closest(text: str, rows: Sequence[UniverseRow], n: int = 5) -> list[UniverseRow]:
    """Rows whose symbol or name contains ``text``, else the most similar (difflib)."""
    up = text.strip().upper()
    contains = [r for r in rows if up and (up in r.symbol.upper() or up in r.name.upper())]
    if contains:
        return contains[:n]
    by_word: dict[str, UniverseRow] = {}
    for r in rows:
        by_word.setdefault(r.symbol.upper(), r)
        by_word.setdefault(r.name.upper(), r)
    out: list[UniverseRow] = []
    for word in difflib.get_close_matches(up, list(by_word), n=n * 2, cutoff=0.5):
        if by_word[word] not in out:
            out.append(by_word[word])
    return out[:n]


def resolve_one(text: str, rows: Sequence[UniverseRow]) -> str:
    """One instrument key for ``text``: a key as typed, else an exact symbol (any case);
    ResolveError (with the closest matches by symbol or name) otherwise. Without a cached
    master only keys and the index symbols are understood (InstrumentError otherwise)."""
    value = (text or "").strip()
    if not rows or not needs_universe(value):
        return resolve_instrument(value)  # InstrumentError (a ValueError) when malformed
    up = value.upper()
    same = [r for r in rows if r.symbol.upper() == up]
    if len(same) == 1:
        return same[0].instrument_key
    if len(same) > 1:
        current = [r for r in same if r.in_fo]
        if len(current) == 1:
            return current[0].instrument_key
        raise ResolveError(
            f"{value!r} is ambiguous: "
            + "; ".join(_label(r) for r in same)
            + " — give the instrument key",
            same,
        )
    near = closest(value, rows)
    if len(near) > 1 and all(up in _words(r) for r in near):
        raise ResolveError(
            f"{value!r} is ambiguous; it matches "
            + "; ".join(_label(r) for r in near)
            + " — give one symbol exactly",
            near,
        )
    hint = "; did you mean " + " or ".join(_label(r) for r in near) + "?" if near else ""
    raise ResolveError(f"unknown instrument {value!r}{hint}", near)


def _words(r: UniverseRow) -> str:
    return f"{r.symbol.upper()} {r.name.upper()}"


def resolve_many(texts: Iterable[str], rows: Sequence[UniverseRow]) -> list[str]:
    """Instrument keys for each text, in order, without duplicates (first error raised)."""
    out: list[str] = []
    for t in texts:
        key = resolve_one(t, rows)
        if key not in out:
            out.append(key)
    return out
