"""Keep-complete watchlists at run time: which underlyings a watchlist means today, how
complete it is, and the collection selection that fetches what is missing.

A run is one collection job over every underlying of the watchlist with all the expiries
the API offers (new ones included), planned from the database (only what is missing) and
fetched deadline-first by the collect engine. An underlying the instrument master no longer
lists stays in the watchlist: its expired contracts can still be fetched for months, so it
is only noted.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from expirytrack_desktop.collect.atrisk import (
    DEFAULT_AT_RISK_DAYS,
    DEFAULT_RETENTION_DAYS,
    last_day,
    retention_days,
)
from expirytrack_desktop.collect.discovery import OfferedExpiries, check_selection
from expirytrack_desktop.collect.instruments import display_name
from expirytrack_desktop.collect.planning import plan_expiry
from expirytrack_desktop.collect.selection import Selection, SelectionError
from expirytrack_desktop.collect.strikes import check_strikes, describe
from expirytrack_desktop.store import Database
from expirytrack_desktop.store.underlyings import UniverseRow
from expirytrack_desktop.store.watchlists import Watchlist, list_watchlists


def parse_strikes(text: str | None) -> str | None:
    """``--strikes``: None for all, ``"N"`` or ``"X%"`` (:mod:`.strikes`); SelectionError."""
    try:
        return check_strikes(text)
    except ValueError as exc:
        raise SelectionError(str(exc).replace("bad strike filter", "bad --strikes")) from None


def symbol_of(key: str, rows: Sequence[UniverseRow] = ()) -> str:
    """The master's symbol of ``key`` (RELIANCE), else the built-in name or the key."""
    return next((r.symbol for r in rows if r.instrument_key == key), None) or display_name(key)


def what_text(wl: Watchlist, rows: Sequence[UniverseRow] = ()) -> str:
    """``"NIFTY, RELIANCE: CE/PE/FUT, all strikes, 1minute, 3 month(s)"``."""
    who = {
        "indices": "all indices",
        "stocks": "all stocks",
        "everything": "all indices and stocks",
    }.get(wl.kind) or ", ".join(symbol_of(k, rows) for k in wl.keys)
    return (
        f"{who}: {'/'.join(wl.types)}, {describe(wl.strikes)}, {wl.interval}, {wl.months} month(s)"
    )


def watch_keys(wl: Watchlist, rows: Sequence[UniverseRow]) -> tuple[list[str], list[str]]:
    """``(instrument keys, notes)``: the watchlist's underlyings today.

    'indices' / 'stocks' / 'everything' take the stored F&O underlyings of that kind the
    cached master lists now, plus those that left F&O within the retention (about six months
    before the master's day: their expired contracts are still offered, so they are kept
    complete too). A 'list' keeps every key, noting those the master no longer lists.
    """
    if wl.kind != "list":
        kinds = {"indices": ("INDEX",), "stocks": ("EQUITY",)}.get(wl.kind, ("INDEX", "EQUITY"))
        mine = [r for r in rows if r.underlying_type in kinds]
        if not mine:
            return [], ["no instrument master cached yet: no underlyings to collect"]
        day = max(r.last_seen for r in mine)
        keys = [r.instrument_key for r in mine if r.in_fo]
        former = [
            r for r in mine
            if not r.in_fo and (day - r.last_seen).days <= DEFAULT_RETENTION_DAYS
        ]  # fmt: skip
        notes = []
        if former:
            keys += [r.instrument_key for r in former]
            notes.append(
                f"{len(former)} underlying(s) that left F&O are kept while Upstox still offers "
                f"their expired contracts: {', '.join(r.symbol for r in former)}"
            )
        return keys, notes
    by_key = {r.instrument_key: r for r in rows}
    notes = []
    if rows:
        for key in wl.keys:
            r = by_key.get(key)
            if r is None or not r.in_fo:
                since = f" (last listed {r.last_seen.isoformat()})" if r is not None else ""
                notes.append(
                    f"{symbol_of(key, rows)} is no longer listed by the instrument master{since}; "
                    "kept: its expired contracts are collected while Upstox offers them"
                )
    return list(wl.keys), notes


def selection_for(wl: Watchlist, keys: Sequence[str]) -> Selection:
    """The collect selection of one run: every offered expiry of ``keys``."""
    return Selection(keys, None, wl.interval, wl.months, wl.types, wl.strikes)


LISTS_IN_FLIGHT = 8  # expiry lists asked at once (the client's limiter paces them)


async def offered_expiries(
    client: Any, selection: Selection
) -> tuple[OfferedExpiries, list[str], list[str]]:
    """Each underlying's live expiry list, checked one by one so one refused underlying does
    not stop the others: ``(offered, keys kept, notes on the ones left out)``, in the
    selection's order. Up to :data:`LISTS_IN_FLIGHT` are asked at once: one after another,
    the 231 lists of the whole F&O universe took ~40 s of round trips."""
    gate = asyncio.Semaphore(LISTS_IN_FLIGHT)
    sent0 = int(getattr(client, "requests_sent", 0))

    async def one(key: str) -> OfferedExpiries | SelectionError:
        async with gate:
            try:
                return await check_selection(
                    client, Selection([key], None, selection.interval, selection.months)
                )
            except SelectionError as exc:
                return exc

    tasks = [asyncio.ensure_future(one(key)) for key in selection.underlyings]
    try:
        results = await asyncio.gather(*tasks)
    except BaseException:  # a cancel: the lists still asked are not waited for
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise
    offered = OfferedExpiries()
    kept: list[str] = []
    notes: list[str] = []
    for key, got in zip(selection.underlyings, results, strict=True):
        if isinstance(got, SelectionError):
            notes.append(f"left out this run: {got}")
            continue
        offered.update(got)
        offered.errors.update(got.errors)
        kept.append(key)
    offered.requests = int(getattr(client, "requests_sent", 0)) - sent0
    return offered, kept, notes


@dataclass(frozen=True, slots=True)
class Completeness:
    """Expiries known for a watchlist's underlyings and how many hold everything it wants."""

    complete: int
    total: int
    at_risk: int  # incomplete and vanishing from Upstox within the at-risk days


def completeness(
    db: Database,
    wl: Watchlist,
    keys: Sequence[str],
    *,
    today: date,
    within_days: int = DEFAULT_AT_RISK_DAYS,
) -> Completeness:
    """From the database alone (run it on the writer thread): an expiry is complete when its
    contracts are stored and nothing the watchlist wants of them is missing (the planner's
    answer, the strike filter included)."""
    if not keys:
        return Completeness(0, 0, 0)
    selection = selection_for(wl, keys)
    edges = db.retention_edges()
    complete = total = risky = 0
    for key in keys:
        days, _ = retention_days(edges.get(key))
        for expiry, fetched, _weekly in db.known_expiries(key):
            total += 1
            if fetched and not plan_expiry(db, key, expiry, selection, None).tasks:
                complete += 1
            elif 0 <= (last_day(expiry, days) - today).days <= within_days:
                risky += 1
    return Completeness(complete, total, risky)


def incomplete_expiries(db: Database, wl: Watchlist, keys: Sequence[str]) -> dict[str, list[date]]:
    """Per underlying, the known expiries not complete by this watchlist's measure (its types
    and strike filter): what the at-risk report should watch for it."""
    if not keys:
        return {}
    selection = selection_for(wl, keys)
    out: dict[str, list[date]] = {}
    for key in keys:
        out[key] = [
            expiry
            for expiry, fetched, _weekly in db.known_expiries(key)
            if not fetched or plan_expiry(db, key, expiry, selection, None).tasks
        ]
    return out


async def watch_selection(
    db: Database, wl: Watchlist, *, instruments_url: str, transport: Any = None
) -> tuple[Selection | None, list[str]]:
    """The selection of one run of ``wl`` after refreshing the universe (at most daily) and
    the notes to show (cached master, underlyings the master no longer lists); None when it
    names no underlying."""
    from expirytrack_desktop.collect.universe import refresh_universe

    status = await refresh_universe(db, instruments_url, transport=transport)
    keys, notes = watch_keys(wl, await db.run(db.universe))
    if status.note:
        notes.insert(0, status.note)
    return (selection_for(wl, keys) if keys else None), notes


async def start_watch(
    collector: Any, selection: Selection, *, on_progress: Any = None
) -> tuple[Any, list[str]]:
    """Check each underlying's expiries (a refused one is left out with a note) and start
    the run's one job: ``(job or None when no underlying is left, notes)``."""
    offered, kept, notes = await offered_expiries(collector.client, selection)
    if not kept:
        return None, notes
    sel = Selection(
        kept, None, selection.interval, selection.months, selection.contract_types,
        selection.strikes,
    )  # fmt: skip
    job = await collector.start(sel, on_progress=on_progress, offered=offered)
    return job, notes


@dataclass(frozen=True, slots=True)
class WatchSummary:
    """One watchlist as ``watch list`` and the window show it."""

    watchlist: Watchlist
    what: str
    underlyings: int
    completeness: Completeness


def summaries(
    db: Database, *, today: date, within_days: int = DEFAULT_AT_RISK_DAYS
) -> list[WatchSummary]:
    """Every stored watchlist with its completeness, from the database alone (writer thread)."""
    rows = db.universe()
    out: list[WatchSummary] = []
    for wl in list_watchlists(db):
        keys, _notes = watch_keys(wl, rows)
        c = completeness(db, wl, keys, today=today, within_days=within_days)
        out.append(WatchSummary(wl, what_text(wl, rows), len(keys), c))
    return out
