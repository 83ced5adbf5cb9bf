"""Before a run: requests and wall time a selection still needs, from what is stored.

One estimate for everything about to run (all underlyings, all jobs): they share one rate
limiter, so their requests are added up and timed through the limiter's windows together,
starting from the budget the ledger says is already used. Makes no API request.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from expirytrack_desktop.collect.events import Estimate
from expirytrack_desktop.collect.instruments import display_name
from expirytrack_desktop.collect.plan import WindowTask, target_range
from expirytrack_desktop.collect.planning import plan_expiry
from expirytrack_desktop.collect.selection import Selection
from expirytrack_desktop.collect.span_caps import SpanCaps
from expirytrack_desktop.store import Database
from expirytrack_desktop.store.coverage import chunk_range

TYPICAL_CONTRACTS_PER_EXPIRY = 200  # estimate for expiries whose contracts are not known yet
TYPICAL_EXPIRIES = 26  # per index whose expiries are not known yet (weeklies and monthlies)
TYPICAL_STOCK_EXPIRIES = 6  # per stock: monthly expiries only, about six months kept
DEFAULT_LATENCY = 0.15  # seconds from a send to its answer, as the limiter sees it
DEFAULT_MARGIN = 0.1  # the limiter's safety margin on every window (upstox/limiter.py)
DAY = 86400.0


def typical_expiries(instrument_key: str) -> int:
    """Expiries to assume before the API lists them: stock F&O has monthly ones only."""
    stock = instrument_key.split("|", 1)[0] in ("NSE_EQ", "BSE_EQ")
    return TYPICAL_STOCK_EXPIRIES if stock else TYPICAL_EXPIRIES


def wall_seconds(
    requests: int,
    windows: Sequence[tuple[int, float]],
    *,
    concurrency: int,
    latency: float = DEFAULT_LATENCY,
    margin: float = DEFAULT_MARGIN,
    used: Sequence[float] = (),
) -> float:
    """Seconds ``requests`` take when sent as the limiter sends them.

    Each request is sent as early as every rate window ``(limit, seconds)`` (widened by
    ``margin``) and the ``concurrency`` allow; it occupies the windows until its answer,
    ``latency`` later. ``used``: end times, in seconds relative to now (<= 0), of sends that
    still occupy the windows (the budget already spent).
    """
    if requests <= 0:
        return 0.0
    ends = sorted(min(0.0, e) for e in used)
    n0 = len(ends)
    limits = [(limit, seconds + margin) for limit, seconds in windows]
    cap = max(1, concurrency)
    send = 0.0
    for k in range(requests):
        if k >= cap:
            send = max(send, ends[n0 + k - cap])
        for limit, span in limits:
            i = n0 + k - limit
            if i >= 0:
                send = max(send, ends[i] + span)
        ends.append(send + latency)
    return send + latency


def describe_days(seconds: float) -> str | None:
    """A note for a backfill that takes more than a day, else None."""
    if seconds < DAY:
        return None
    return (
        f"this is a backfill of about {seconds / DAY:.1f} days at the rate limits: it keeps "
        "what it collected whenever it stops, and the same selection (or a daily scheduled "
        "run) continues where it stopped"
    )


async def estimate(
    db: Database,
    client: Any,
    caps: SpanCaps,
    selections: Sequence[Selection],
    *,
    concurrency: int,
    latency: float = DEFAULT_LATENCY,
) -> Estimate:
    """Behind :meth:`Collector.estimate`: ``selections`` run as one job each, concurrently,
    on ``client``'s limiter (``concurrency`` requests in flight per job)."""
    policy = await caps.policy()
    notes: list[str] = []
    underlyings: set[str] = set()
    requests = expiries = contracts = windows = 0
    guessed = False
    planned: list[WindowTask] = []
    for selection in selections:
        span = policy.cap_days(selection.interval)
        requests += len(selection.underlyings)  # one expiry list each
        underlyings.update(selection.underlyings)
        for key in selection.underlyings:
            known = await db.run(db.known_expiries, key)
            dates = [d for d, _, _ in known]
            if selection.expiries is not None:
                dates = list(selection.expiries)
            elif not known:
                guessed = True
                n = typical_expiries(key)
                notes.append(f"{display_name(key)}: expiries not known yet ({n} assumed)")
                per = len(chunk_range(target_range(date.today(), selection.months), span))
                expiries += n
                contracts += n * TYPICAL_CONTRACTS_PER_EXPIRY
                windows += n * TYPICAL_CONTRACTS_PER_EXPIRY * per
                requests += n * 2
            fetched = {d for d, f, _ in known if f}
            for d in dates:
                expiries += 1
                if d not in fetched:
                    guessed = True
                    requests += 2
                    per = len(chunk_range(target_range(d, selection.months), span))
                    contracts += TYPICAL_CONTRACTS_PER_EXPIRY
                    windows += TYPICAL_CONTRACTS_PER_EXPIRY * per
                    continue
                plan = await db.run(plan_expiry, db, key, d, selection, span)
                contracts += plan.contracts
                windows += len(plan.tasks)
                planned += plan.tasks
    if planned:
        held = await db.run(db.claimed_elsewhere, [t.claim_key for t in planned])
        if held:
            windows -= len(held)
            jobs = ", ".join(str(j) for j in sorted(set(held.values())))
            notes.append(
                f"{len(held)} more window(s) of this selection are being fetched by job {jobs} "
                "now: left to it, never fetched twice"
            )
    if guessed and any(s.expiries is not None for s in selections):
        notes.append(
            f"contracts of some expiries are not known yet: {TYPICAL_CONTRACTS_PER_EXPIRY} "
            "per expiry assumed"
        )
    for interval in dict.fromkeys(s.interval for s in selections):
        if not await caps.known(interval):
            notes.append(
                f"span cap of the candle endpoint not learned yet: {policy.cap_days(interval)} "
                "days per request assumed (more requests if the API allows less)"
            )
            guessed = True
    requests += windows
    seconds, spent = _time(client, requests, concurrency * max(1, len(selections)), latency)
    if spent:
        notes.append(f"{spent:,} request(s) already sent still count against the rate limits")
    days = describe_days(seconds)
    if days:
        notes.append(days)
    return Estimate(
        underlyings=len(underlyings),
        expiries=expiries,
        contracts=contracts,
        windows=windows,
        requests=requests,
        seconds=seconds,
        is_estimate=guessed,
        notes=tuple(notes),
    )


def _time(client: Any, requests: int, concurrency: int, latency: float) -> tuple[float, int]:
    """(seconds for ``requests`` on ``client``'s limiter, requests already in its windows)."""
    limiter = getattr(client, "limiter", None)
    spec_windows = list(getattr(getattr(limiter, "spec", None), "windows", ()) or ())
    used: list[float] = []
    if spec_windows and limiter is not None:
        now = float(limiter.clock())
        longest = max(s for _, s in spec_windows) + float(limiter.margin)
        used = [e - now for e in limiter.ledger.ends(now, longest)]
    margin = float(getattr(limiter, "margin", DEFAULT_MARGIN))
    seconds = wall_seconds(
        requests, spec_windows, concurrency=concurrency, latency=latency, margin=margin, used=used
    )
    return seconds, len(used)
