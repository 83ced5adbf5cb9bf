"""Before a run: which expiries the plan would reach only after Upstox has deleted them.

A run fetches its expiry and contract lists first, then its candle windows deadline-first
(oldest expiry first, across underlyings and the jobs sharing the limiter). Walking the same
order through the limiter's rate windows gives, for each expiry, the moment its last window
would be fetched; an expiry reached after its last fetchable day (the vanish rule of
:mod:`.atrisk`) would be lost by this plan, so the user is told before starting.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from expirytrack_desktop.collect.atrisk import last_day, retention_days
from expirytrack_desktop.collect.events import LateExpiry
from expirytrack_desktop.timeutil import IST


@dataclass(frozen=True, slots=True)
class ExpiryLoad:
    """The requests one expiry of one underlying still needs, and when it vanishes.

    ``expiry`` None: an expiry not known yet (its count is a typical value); it still takes
    its place in the order at ``deadline`` (an assumed date) but is never reported.
    """

    instrument_key: str
    expiry: date | None
    deadline: date
    requests: int


def finish_times(
    requests: int,
    marks: Sequence[int],
    windows: Sequence[tuple[int, float]],
    *,
    concurrency: int,
    latency: float,
    margin: float,
    used: Sequence[float] = (),
) -> list[float]:
    """Seconds from now until the first ``m`` of ``requests`` are answered, for each ``m`` in
    ``marks`` (each 1..requests), sending as the limiter does (see ``estimate.wall_seconds``)."""
    out: list[float] = []
    if requests <= 0:
        return [0.0 for _ in marks]
    want = sorted(set(marks))
    at: dict[int, float] = {}
    ends = sorted(min(0.0, e) for e in used)
    n0 = len(ends)
    limits = [(limit, seconds + margin) for limit, seconds in windows]
    cap = max(1, concurrency)
    send = 0.0
    j = 0
    for k in range(requests):
        if k >= cap:
            send = max(send, ends[n0 + k - cap])
        for limit, span in limits:
            i = n0 + k - limit
            if i >= 0:
                send = max(send, ends[i] + span)
        ends.append(send + latency)
        while j < len(want) and want[j] == k + 1:
            at[k + 1] = send + latency
            j += 1
    for m in marks:
        out.append(at.get(m, send + latency) if m > 0 else 0.0)
    return out


def late_expiries(
    loads: Sequence[ExpiryLoad],
    *,
    before: int,
    finish: Callable[[int, Sequence[int]], list[float]],
    now: datetime,
    edges: Mapping[str, tuple[date, date]],
    name: Callable[[str], str],
) -> tuple[list[LateExpiry], float]:
    """``(expiries of loads whose last window the plan reaches after their last day, seconds
    for the whole plan)``.

    ``before``: requests sent ahead of any window (expiry and contract lists);
    ``finish(total, marks)``: seconds until the first ``m`` requests are answered (the rate
    windows, concurrency and budget already used); ``edges``: the retention edge per
    underlying (``db.retention_edges()``). Expiries already gone today are left out.
    """
    order = sorted((w for w in loads if w.requests > 0), key=lambda w: w.deadline)
    marks: list[int] = []
    total = before
    for w in order:
        total += w.requests
        marks.append(total)
    if total <= 0:
        return [], 0.0
    *seconds, whole = finish(total, [*marks, total])
    now_ist = now.astimezone(IST)
    today = now_ist.date()
    late: list[LateExpiry] = []
    for w, s in zip(order, seconds, strict=True):
        if w.expiry is None:
            continue
        last = last_day(w.expiry, retention_days(edges.get(w.instrument_key))[0])
        if last < today:
            continue  # already gone: the API no longer offers it
        reaches = (now_ist + timedelta(seconds=s)).date()
        if reaches > last:
            vanishes = last + timedelta(days=1)
            late.append(
                LateExpiry(w.instrument_key, name(w.instrument_key), w.expiry, vanishes, reaches)
            )
    return late, whole
