"""``expirytrack status --at-risk``: chosen expiries that are not complete and will vanish from
Upstox within N days (``collect.atrisk``), soonest first, with their last day.

"Chosen" = what earlier collect jobs asked for plus every stored schedule's selection.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.collect.atrisk import Chosen, at_risk, chosen_from_jobs
from expirytrack_desktop.timeutil import IST


def _chosen_by_schedules(rt: Any) -> list[Chosen]:
    from datetime import date

    from expirytrack_desktop.collect.instruments import resolve_instrument
    from expirytrack_desktop.schedule import ScheduleError, ScheduleStore

    try:
        schedules = ScheduleStore(rt.paths.config_dir / "schedules.json").load()
    except (ScheduleError, OSError, ValueError):
        return []
    out = []
    for s in schedules:
        dates = None if s.expiries is None else tuple(date.fromisoformat(d) for d in s.expiries)
        for text in s.instruments:
            try:
                out.append(Chosen(resolve_instrument(text), dates))
            except ValueError:
                continue
    return out


def print_at_risk(rt: Any, db: Any, within: int | None) -> int:
    days = rt.settings.at_risk_days if within is None else within
    if days < 0:
        from expirytrack_desktop.cli.failure import fail

        return fail(exitcodes.BAD_INPUT, "--within must be 0 or more days")
    today = datetime.now(IST).date()
    chosen = chosen_from_jobs(db.list_jobs(limit=10_000, job_type="collect"))
    chosen += _chosen_by_schedules(rt)
    found = at_risk(db, chosen, today=today, within_days=days)
    if not found:
        print(
            "Nothing at risk: no chosen, incomplete expiry vanishes from Upstox within "
            f"{days} days."
        )
        return exitcodes.OK
    print(
        f"At risk: {len(found)} chosen expiries are not complete and vanish from Upstox within "
        f"{days} days (last day = expiry + retention; * = retention assumed, not yet learned):"
    )
    print(
        f"{'underlying':<12} {'expiry':<10} {'last day':<10} {'days left':>9} {'state':<8} "
        f"{'contracts':>9} {'complete':>8}"
    )
    for a in found:
        mark = "" if a.edge_known else "*"
        print(
            f"{(a.symbol or a.instrument_key)[:12]:<12} {a.expiry.isoformat():<10} "
            f"{a.last_day.isoformat() + mark:<10} {a.days_left:>9} {a.state:<8} "
            f"{a.contracts:>9} {a.contracts_complete:>8}"
        )
    return exitcodes.OK
