"""``expirytrack status --at-risk``: chosen expiries that are not complete and will vanish from
Upstox within N days (``collect.atrisk``), soonest first, with their last day.

"Chosen" = what earlier collect jobs asked for plus every stored schedule's selection
(:func:`schedule.manage.chosen_everywhere`, which the window's at-risk panel uses too).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.collect.atrisk import at_risk
from expirytrack_desktop.schedule.manage import chosen_everywhere
from expirytrack_desktop.timeutil import IST


def print_at_risk(rt: Any, db: Any, within: int | None) -> int:
    days = rt.settings.at_risk_days if within is None else within
    if days < 0:
        from expirytrack_desktop.cli.failure import fail

        return fail(exitcodes.BAD_INPUT, "--within must be 0 or more days")
    today = datetime.now(IST).date()
    found = at_risk(db, chosen_everywhere(db, rt.paths), today=today, within_days=days)
    if not found:
        print(
            "Nothing at risk: no chosen, incomplete expiry vanishes from Upstox within "
            f"{days} days."
        )
        return exitcodes.OK
    print(
        f"At risk: {len(found)} chosen "
        + (
            "expiry is not complete and vanishes"
            if len(found) == 1
            else "expiries are not complete and vanish"
        )
        + f" from Upstox within {days} days (last day = expiry + retention; * = retention "
        "assumed, not yet learned):"
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
