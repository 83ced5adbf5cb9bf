"""Before a run: requests and wall time a selection still needs, from what is stored.

One estimate for everything about to run (all underlyings, all jobs): they share one rate
limiter, so their requests are added up and timed through the limiter's windows together,
starting from the budget the ledger says is already used. Makes no API request.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from expirytrack_desktop.collect.atrisk import DEFAULT_RETENTION_DAYS
from expirytrack_desktop.collect.deadline_check import ExpiryLoad, finish_times, late_expiries
from expirytrack_desktop.collect.events import Estimate
from expirytrack_desktop.collect.instruments import display_name
from expirytrack_desktop.collect.plan import WindowTask, target_range
from expirytrack_desktop.collect.planning import plan_expiry
from expirytrack_desktop.collect.selection import Selection
from expirytrack_desktop.collect.span_caps import SpanCaps
from expirytrack_desktop.store import Database
from expirytrack_desktop.store.coverage import chunk_range
from expirytrack_desktop.timeutil import IST
from expirytrack_desktop.upstox.models import is_stock_key

TYPICAL_CONTRACTS_PER_EXPIRY = 200  # estimate for expiries whose contracts are not known yet
TYPICAL_EXPIRIES = 26  # per index whose expiries are not known yet (weeklies and monthlies)
TYPICAL_STOCK_EXPIRIES = 6  # per stock: monthly expiries only, about six months kept
DEFAULT_LATENCY = 0.15  # seconds from a send to its answer, as the limiter sees it
DEFAULT_MARGIN = 0.1  # the limiter's safety margin on every window (upstox/limiter.py)
DAY = 86400.0


def typical_expiries(instrument_key: str) -> int:
    """Expiries to assume before the API lists them: stock F&O has monthly ones only."""
    return TYPICAL_STOCK_EXPIRIES if is_stock_key(instrument_key) else TYPICAL_EXPIRIES


def _weekly_flags(known: Sequence[tuple[date, bool, bool | None]]) -> dict[date, bool]:
    """Whether each stored expiry is a weekly: the API's flag (stored with its contracts),
    else by the calendar -- the monthly is the last expiry of its month, as on NSE and BSE (a
    month cut off at either end of the list counts its last one as a monthly: the larger)."""
    last: dict[tuple[int, int], date] = {}
    for d, _, _ in known:
        last[(d.year, d.month)] = max(d, last.get((d.year, d.month), d))
    return {d: (w if w is not None else d != last[(d.year, d.month)]) for d, _, w in known}


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
    return finish_times(
        requests,
        [requests],
        windows,
        concurrency=concurrency,
        latency=latency,
        margin=margin,
        used=used,
    )[0]


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
    now: datetime | None = None,
) -> Estimate:
    """Behind :meth:`Collector.estimate`: ``selections`` run as one job each, concurrently,
    on ``client``'s limiter (``concurrency`` requests in flight per job). ``now`` (aware; default
    the wall clock) dates the walk that finds expiries reached after they vanish."""
    policy = await caps.policy()
    now = now or datetime.now(IST)
    today = now.astimezone(IST).date()
    notes: list[str] = []
    underlyings: set[str] = set()
    requests = expiries = contracts = windows = 0
    guessed = False
    planned: list[WindowTask] = []
    owners: list[tuple[str, date]] = []  # (underlying, expiry) of each planned window
    loads: list[ExpiryLoad] = []
    keys = sorted({k for s in selections for k in s.underlyings})
    names = await db.run(db.underlying_names, keys)
    hints = await db.run(db.contracts_per_expiry, keys)  # {weekly: {key: contracts}}
    peers = await db.run(db.peer_contracts_per_expiry)  # {(stock, weekly): median}
    unhinted: dict[str, int] = {}  # underlyings whose unlisted expiries got an assumed count
    round_guess: set[str] = set()  # ... and of those, the ones without even a peer's

    def typical(key: str, weekly: bool | None = None) -> int:
        """Contracts an unlisted expiry of ``key`` will list (earlier expiries, the master);
        a weekly one lists fewer strikes than a monthly (unknown: counted as a monthly).
        Neither known (a stock the master no longer lists): the master's median stock or
        index, else a round guess."""
        n = hints[bool(weekly)].get(key)
        if n is not None:
            return n
        n = peers.get((is_stock_key(key), bool(weekly)))
        if n is None:
            round_guess.add(key)
            n = TYPICAL_CONTRACTS_PER_EXPIRY
        unhinted.setdefault(key, n)
        return n

    def name(key: str) -> str:
        return names.get(key) or display_name(key)

    for selection in selections:
        span = await caps.planning_span(selection.interval)
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
                notes.append(f"{name(key)}: expiries not known yet ({n} assumed)")
                per = len(chunk_range(target_range(today, selection.months), span))
                each = typical(key)
                expiries += n
                contracts += n * each
                windows += n * each * per
                requests += n * 2
                loads += _assumed_loads(key, n, each * per, today)
            fetched = {d for d, f, _ in known if f}
            weekly = _weekly_flags(known)
            for d in dates:
                expiries += 1
                if d not in fetched:
                    guessed = True
                    requests += 2
                    per = len(chunk_range(target_range(d, selection.months), span))
                    n_contracts = typical(key, weekly.get(d))
                    contracts += n_contracts
                    windows += n_contracts * per
                    loads.append(ExpiryLoad(key, d, d, n_contracts * per))
                    continue
                plan = await db.run(plan_expiry, db, key, d, selection, span)
                contracts += plan.contracts
                windows += len(plan.tasks)
                planned += plan.tasks
                owners += [(key, d)] * len(plan.tasks)
    held: dict[int, int] = {}
    if planned:
        held = await db.run(db.claimed_elsewhere, [t.claim_key for t in planned])
        if held:
            windows -= len(held)
            jobs = ", ".join(str(j) for j in sorted(set(held.values())))
            notes.append(
                f"{len(held)} more window(s) of this selection are being fetched by job {jobs} "
                "now: left to it, never fetched twice"
            )
    per_expiry: dict[tuple[str, date], int] = {}
    for i, owner in enumerate(owners):
        per_expiry[owner] = per_expiry.get(owner, 0) + (i not in held)
    loads += [ExpiryLoad(k, d, d, n) for (k, d), n in per_expiry.items()]
    if unhinted:
        notes.append(_unhinted_note(unhinted, name, peers=not round_guess))
    for interval in dict.fromkeys(s.interval for s in selections):
        if not await caps.known(interval):
            notes.append(
                "span cap of the candle endpoint not learned yet:"
                f" {await caps.planning_span(interval)} days per request assumed (the run"
                f" asks for {policy.cap_days(interval)}: fewer requests if the API allows it)"
            )
            guessed = True
    before = requests  # expiry and contract lists: sent ahead of any window
    requests += windows
    timing = _timing(client, concurrency * max(1, len(selections)), latency)
    edges = await db.run(db.retention_edges)
    late, seconds = late_expiries(
        loads, before=before, finish=timing, now=now, edges=edges, name=name
    )
    if timing.spent:
        notes.append(
            f"{timing.spent:,} request(s) already sent still count against the rate limits"
        )
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
        late=tuple(late),
    )


def _unhinted_note(unhinted: dict[str, int], name: Callable[[str], str], *, peers: bool) -> str:
    """Which underlyings' contract counts are guesses, and whose counts stood in."""
    shown = ", ".join(sorted(name(k) for k in unhinted)[:3]) + (", …" if len(unhinted) > 3 else "")
    counts = sorted(set(unhinted.values()))
    each = f"{counts[0]:,}" if len(counts) == 1 else f"{counts[0]:,}-{counts[-1]:,}"
    if peers:
        stocks = {is_stock_key(k) for k in unhinted}
        whose = (
            "stocks" if stocks == {True} else "indices" if stocks == {False} else "stocks, indices"
        )
        return (
            f"contracts of {shown} not known (not in the instrument master, none listed yet): "
            f"{each} per expiry assumed, the median of the master's {whose}"
        )
    return (
        f"contracts of {shown} not known yet: {each} per expiry assumed "
        "(the instrument master or listed expiries would tell)"
    )


def _assumed_loads(key: str, n: int, each: int, today: date) -> list[ExpiryLoad]:
    """``n`` expiries not known yet, assumed spread over the retention period (their places
    in the deadline order; never reported themselves)."""
    step = DEFAULT_RETENTION_DAYS / max(1, n)
    start = today - timedelta(days=DEFAULT_RETENTION_DAYS)
    return [
        ExpiryLoad(key, None, start + timedelta(days=round(step * (i + 1))), each) for i in range(n)
    ]


class _Timing:
    """Seconds until the first m of n requests are answered on one limiter (its windows, its
    margin, and the budget its ledger says is already used)."""

    def __init__(
        self,
        windows: list[tuple[int, float]],
        used: list[float],
        concurrency: int,
        latency: float,
        margin: float,
    ) -> None:
        self.windows, self.used = windows, used
        self.concurrency, self.latency, self.margin = concurrency, latency, margin
        self.spent = len(used)

    def __call__(self, requests: int, marks: Sequence[int]) -> list[float]:
        return finish_times(
            requests,
            marks,
            self.windows,
            concurrency=self.concurrency,
            latency=self.latency,
            margin=self.margin,
            used=self.used,
        )


def _timing(client: Any, concurrency: int, latency: float) -> _Timing:
    """The timing of ``client``'s limiter, from now."""
    limiter = getattr(client, "limiter", None)
    spec_windows = list(getattr(getattr(limiter, "spec", None), "windows", ()) or ())
    used: list[float] = []
    if spec_windows and limiter is not None:
        now = float(limiter.clock())
        longest = max(s for _, s in spec_windows) + float(limiter.margin)
        used = [e - now for e in limiter.ledger.ends(now, longest)]
    margin = float(getattr(limiter, "margin", DEFAULT_MARGIN))
    return _Timing(spec_windows, used, concurrency, latency, margin)
