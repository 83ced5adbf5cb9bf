"""The pure planner: from what the database holds, the candle windows still missing.

No I/O, no clock: the same inputs give the same plan, so resume after any interruption is
"plan again" and tests can check the plan exactly. Coverage is the union of a contract's
'fetched' and 'empty' windows; 'failed' windows cover nothing and are planned again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date

from expirytrack_desktop.store.coverage import chunk_range, months_before, subtract_ranges
from expirytrack_desktop.store.intervals import interval_minutes


@dataclass(frozen=True, slots=True)
class ContractTarget:
    """A contract and the date range it should be covered for."""

    contract_id: int
    expired_key: str
    from_date: date
    to_date: date
    label: str = ""  # for progress text, e.g. the OpenAlgo symbol
    expiry: date | None = None  # the contract's expiry: when its data vanishes from Upstox


@dataclass(frozen=True, slots=True)
class WindowTask:
    """One candle window to fetch (inclusive dates); written with its done mark atomically."""

    contract_id: int
    expired_key: str
    interval: str
    from_date: date
    to_date: date
    label: str = ""
    expiry: date | None = None  # the contract's expiry (None: unknown, e.g. a failed window)

    @property
    def deadline(self) -> date:
        """When this window's data vanishes from Upstox, as an order: its contract's expiry
        (about six months later it is gone), else its last day (never after the expiry)."""
        return self.expiry or self.to_date

    @property
    def days(self) -> int:
        return (self.to_date - self.from_date).days + 1

    @property
    def claim_key(self) -> tuple[int, int, date, date]:
        """(contract id, interval in minutes, first day, last day): its ``window_claim`` row."""
        return (self.contract_id, interval_minutes(self.interval), self.from_date, self.to_date)


def target_range(expiry: date, months: int) -> tuple[date, date]:
    """A contract's history window: ``[expiry - months, expiry]``."""
    return months_before(expiry, months), expiry


def plan_windows(
    targets: Iterable[ContractTarget],
    covered: Mapping[int, Sequence[tuple[date, date, str]]],
    interval: str,
    span_days: int | None,
) -> list[WindowTask]:
    """Missing windows per contract, each at most ``span_days`` long (None = unchunked).

    ``covered[contract_id]`` = ``(from_date, to_date, state)`` rows of ``fetch_window``.
    """
    tasks: list[WindowTask] = []
    # The contracts of one expiry mostly share their target and their windows: work out the
    # missing pieces once per distinct (target, windows) (a universe plans 150,000 contracts).
    pieces_of: dict[tuple[date, date, tuple[tuple[date, date, str], ...]], list[tuple[date, date]]]
    pieces_of = {}
    for t in targets:
        rows = tuple(covered.get(t.contract_id, ()))
        key = (t.from_date, t.to_date, rows)
        pieces = pieces_of.get(key)
        if pieces is None:
            done = [(f, to) for f, to, state in rows if state != "failed"]
            pieces = pieces_of[key] = [
                piece
                for gap in subtract_ranges((t.from_date, t.to_date), done)
                for piece in chunk_range(gap, span_days)
            ]
        for f, to in pieces:
            tasks.append(
                WindowTask(t.contract_id, t.expired_key, interval, f, to, t.label, t.expiry)
            )
    return tasks


def plan_ranges(
    ranges: Iterable[tuple[ContractTarget, date, date]],
    covered: Mapping[int, Sequence[tuple[date, date, str]]],
    interval: str,
    span_days: int | None,
) -> list[WindowTask]:
    """Like :func:`plan_windows` for explicit ranges (retrying failed windows)."""
    tasks: list[WindowTask] = []
    seen: set[tuple[int, date, date]] = set()
    for t, f0, t0 in ranges:
        done = [(f, to) for f, to, state in covered.get(t.contract_id, ()) if state != "failed"]
        for gap in subtract_ranges((f0, t0), done):
            for f, to in chunk_range(gap, span_days):
                if (t.contract_id, f, to) not in seen:
                    seen.add((t.contract_id, f, to))
                    tasks.append(
                        WindowTask(t.contract_id, t.expired_key, interval, f, to, t.label, t.expiry)
                    )
    return tasks


def deadline_first(tasks: Iterable[WindowTask]) -> list[WindowTask]:
    """``tasks`` ordered by the date their data vanishes from Upstox, oldest expiry first
    (stable: within one expiry the planned order is kept)."""
    return sorted(tasks, key=lambda t: t.deadline)
