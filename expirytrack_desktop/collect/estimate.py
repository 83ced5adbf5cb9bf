"""Before a run: requests and seconds a selection still needs, from what is stored.

Makes no API request; behind :meth:`Collector.estimate`.
"""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from expirytrack_desktop.collect.events import Estimate
from expirytrack_desktop.collect.instruments import display_name
from expirytrack_desktop.collect.plan import estimate_seconds, target_range
from expirytrack_desktop.collect.selection import Selection
from expirytrack_desktop.store.coverage import chunk_range

if TYPE_CHECKING:
    from expirytrack_desktop.collect.collector import Collector

TYPICAL_CONTRACTS_PER_EXPIRY = 200  # estimate for expiries whose contracts are not known yet


async def estimate(collector: Collector, selection: Selection) -> Estimate:
    """Behind :meth:`Collector.estimate`."""
    policy = await collector.span_policy()
    span = policy.cap_days(selection.interval)
    notes: list[str] = []
    requests = len(selection.underlyings)  # one expiry list each
    expiries = contracts = windows = 0
    guessed = False
    planned = []
    for key in selection.underlyings:
        known = await collector.db.run(collector.db.known_expiries, key)
        dates = [d for d, _, _ in known]
        if selection.expiries is not None:
            dates = list(selection.expiries)
        elif not known:
            guessed = True
            notes.append(f"{display_name(key)}: expiries not known yet (26 assumed)")
            per = len(chunk_range(target_range(date.today(), selection.months), span))
            expiries += 26
            contracts += 26 * TYPICAL_CONTRACTS_PER_EXPIRY
            windows += 26 * TYPICAL_CONTRACTS_PER_EXPIRY * per
            requests += 26 * 2
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
            tasks = await collector.db.run(collector._plan_expiry, key, d, selection, span, False)
            contracts += tasks[1]
            windows += len(tasks[0])
            planned += tasks[0]
    if planned:
        keys = [t.claim_key for t in planned]
        held = await collector.db.run(collector.db.claimed_elsewhere, keys)
        if held:
            windows -= len(held)
            jobs = ", ".join(str(j) for j in sorted(set(held.values())))
            notes.append(
                f"{len(held)} more window(s) of this selection are being fetched by job {jobs} "
                "now: left to it, never fetched twice"
            )
    if guessed and selection.expiries is not None:
        notes.append(
            f"contracts of some expiries are not known yet: {TYPICAL_CONTRACTS_PER_EXPIRY} "
            "per expiry assumed"
        )
    cap_known = selection.interval in (await collector.db.run(collector.db.span_caps))
    if not cap_known:
        notes.append(
            f"span cap of the candle endpoint not learned yet: {span} days per request "
            "assumed (more requests if the API allows less)"
        )
    requests += windows
    limiter = getattr(collector.client, "limiter", None)
    spec_windows = list(getattr(getattr(limiter, "spec", None), "windows", ()) or ())
    seconds = estimate_seconds(requests, spec_windows, collector.concurrency)
    return Estimate(
        underlyings=len(selection.underlyings),
        expiries=expiries,
        contracts=contracts,
        windows=windows,
        requests=requests,
        seconds=seconds,
        is_estimate=guessed or not cap_known,
        notes=tuple(notes),
    )
