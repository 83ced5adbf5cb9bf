"""Expiries about to be lost: chosen, not complete, and vanishing from Upstox within N days.

Upstox keeps an expired contract for about six months ("Retention" in upstox-api.md). The
oldest expiry the expiries endpoint still returned on a day marks the edge: an expiry ``E`` is
still there ``seen - oldest`` days after it expired, so its last day is taken as
``E + (seen - oldest)``. The store records that edge whenever the API's list is stored; before
the first look (or when the edge is implausible) ``DEFAULT_RETENTION_DAYS`` is assumed.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

DEFAULT_RETENTION_DAYS = 182  # "about six months"
DEFAULT_AT_RISK_DAYS = 14
_PLAUSIBLE_RETENTION = (60, 400)  # an edge outside this is a stale or partial list


@dataclass(frozen=True, slots=True)
class AtRiskExpiry:
    instrument_key: str
    symbol: str | None
    expiry: date
    last_day: date  # the last day it can still be fetched (estimate)
    days_left: int  # 0 = today is the last day
    state: str  # the worst coverage state over its intervals: 'no_data', 'partial', 'failed'
    contracts: int
    contracts_complete: int
    retention_days: int
    edge_known: bool  # retention learned from the API's list (else the default)


@dataclass(frozen=True, slots=True)
class Chosen:
    """One selection's reach: an underlying and its expiries (``None`` = all it offers)."""

    instrument_key: str
    expiries: tuple[date, ...] | None = None


def retention_days(
    edge: tuple[date, date] | None, default: int = DEFAULT_RETENTION_DAYS
) -> tuple[int, bool]:
    """``(days an expiry stays fetchable, learned?)`` from an edge ``(seen_on, oldest)``."""
    if edge is not None:
        days = (edge[0] - edge[1]).days
        if _PLAUSIBLE_RETENTION[0] <= days <= _PLAUSIBLE_RETENTION[1]:
            return days, True
    return default, False


def last_day(expiry: date, retention: int) -> date:
    return expiry + timedelta(days=retention)


def chosen_from_jobs(jobs: Iterable[Any]) -> list[Chosen]:
    """What earlier collect jobs asked for (their stored selection parameters). A strike-
    filtered job (a watchlist's run) is left to its watchlist, which judges completeness
    without the strikes it leaves out."""
    out: list[Chosen] = []
    for job in jobs:
        if getattr(job, "job_type", None) != "collect":
            continue
        params = job.params or {}
        if params.get("strikes") is not None:
            continue
        exp = params.get("expiries")
        dates = None if exp is None else tuple(date.fromisoformat(d) for d in exp)
        out.extend(Chosen(str(key), dates) for key in params.get("underlyings", []))
    return out


_ORDER = {"failed": 0, "no_data": 1, "partial": 2, "complete": 3}


def at_risk(
    db: Any,
    chosen: Sequence[Chosen],
    *,
    today: date,
    within_days: int = DEFAULT_AT_RISK_DAYS,
    default_retention: int = DEFAULT_RETENTION_DAYS,
) -> list[AtRiskExpiry]:
    """Chosen expiries known to the database that are not complete and whose last day is in
    ``[today, today + within_days]``; soonest first. Expiries already gone are left out."""
    everything: set[str] = set()
    some: dict[str, set[date]] = {}
    for c in chosen:
        if c.expiries is None:
            everything.add(c.instrument_key)
        else:
            some.setdefault(c.instrument_key, set()).update(c.expiries)
    if not everything and not some:
        return []
    edges: dict[str, tuple[date, date]] = db.retention_edges()
    worst: dict[tuple[str, date], Any] = {}
    for r in db.coverage():
        ukey, exp = r.instrument_key, r.expiry_date
        if ukey not in everything and exp not in some.get(ukey, ()):
            continue
        seen = worst.get((ukey, exp))
        if seen is None or _ORDER.get(r.state, 1) < _ORDER.get(seen.state, 1):
            worst[(ukey, exp)] = r
    out: list[AtRiskExpiry] = []
    for (ukey, exp), r in worst.items():
        if r.state == "complete":
            continue
        days, learned = retention_days(edges.get(ukey), default_retention)
        last = last_day(exp, days)
        left = (last - today).days
        if 0 <= left <= within_days:
            out.append(
                AtRiskExpiry(
                    ukey, r.symbol, exp, last, left, r.state, r.contracts,
                    r.contracts_complete, days, learned,
                )
            )  # fmt: skip
    out.sort(key=lambda a: (a.last_day, a.instrument_key, a.expiry))
    return out
