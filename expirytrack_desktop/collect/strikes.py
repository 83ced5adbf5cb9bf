"""The strike filter: only the option strikes near the underlying's price near expiry.

"Price near expiry" of an expiry ``E`` of an underlying:

1. the last close, on or before ``E``'s day, of the future that expires on ``E``;
2. for an expiry with no future (an index weekly), the close on ``E``'s day (the last one on
   or before it) of the nearest monthly future expiring on or after ``E``;
3. neither stored: unknown. A run fetches the futures first for this reason (whether or not
   the selection keeps them), then filters the options by their price; if no future price
   can be had at all, every strike is taken and the job says so in a note.

Filters: ``"N"`` keeps the N strikes each side of the strike nearest that price (2N + 1
strikes); ``"X%"`` keeps the strikes within ±X % of it. Futures are never filtered.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Any

from expirytrack_desktop.timeutil import IST

_SPEC_RE = re.compile(r"^(\d{1,3})$|^(\d{1,2}(?:\.\d+)?)%$")


def check_strikes(text: str | None) -> str | None:
    """``"all"``/None/"" -> None; ``"5"`` -> ±5 strikes; ``"10%"`` -> ±10 %. ValueError
    (one line) otherwise."""
    if text is None or text.strip().lower() in ("", "all"):
        return None
    value = text.strip()
    m = _SPEC_RE.match(value)
    if not m or (m.group(1) and int(m.group(1)) < 1) or (m.group(2) and float(m.group(2)) <= 0):
        raise ValueError(
            f"bad strike filter {text!r}: use all, a number of strikes each side (e.g. 5) "
            "or a percentage of the price near expiry (e.g. 10%)"
        )
    return value


def describe(spec: str | None) -> str:
    if spec is None:
        return "all strikes"
    if spec.endswith("%"):
        return f"strikes within ±{spec}"
    return f"±{spec} strikes"


def _last_close(db: Any, contract_id: int, day: date) -> float | None:
    """The last close of a contract on or before ``day`` (IST; any interval stored), in
    rupees (through the ``candle_rupees`` view every reader uses)."""
    end = datetime(day.year, day.month, day.day, tzinfo=IST) + timedelta(days=1)
    rows = db._query(
        "SELECT close FROM candle_rupees WHERE contract_id = ? AND ts < ? ORDER BY ts DESC LIMIT 1",
        (contract_id, int(end.timestamp())),
    )
    return float(rows[0][0]) if rows and rows[0][0] is not None else None


def price_near_expiry(db: Any, key: str, expiry: date) -> tuple[float | None, str]:
    """``(price, where it came from)`` for ``key``'s ``expiry`` from stored futures' candles
    (see the module docstring); ``(None, why)`` when none is stored."""
    own = db.contracts_for(key, expiry, ("FUT",))
    for c in own:
        price = _last_close(db, c.id, expiry)
        if price is not None:
            return price, f"future {c.trading_symbol or c.expired_key}"
    if own:
        return None, "its future has no candle up to the expiry day"
    later = sorted(d for d, _, _ in db.known_expiries(key) if d > expiry)
    for d in later:
        futs = db.contracts_for(key, d, ("FUT",))
        if not futs:
            continue
        for c in futs:
            price = _last_close(db, c.id, expiry)
            if price is not None:
                return price, f"monthly future {c.trading_symbol or c.expired_key}"
        return None, "the nearest monthly future has no candle up to the expiry day"
    return None, "no future of this or a later expiry is stored"


def keep_strikes(strikes: Sequence[float], spec: str, price: float) -> set[float]:
    """The strikes of ``strikes`` the filter ``spec`` keeps around ``price``."""
    ladder = sorted(set(strikes))
    if not ladder:
        return set()
    if spec.endswith("%"):
        width = price * float(spec[:-1]) / 100.0
        return {s for s in ladder if abs(s - price) <= width + 1e-9}
    n = int(spec)
    i = bisect.bisect_left(ladder, price)
    if i == len(ladder) or (i > 0 and price - ladder[i - 1] <= ladder[i] - price):
        i -= 1  # the nearest strike (the lower one on a tie)
    return set(ladder[max(0, i - n) : i + n + 1])


def filter_rows(rows: Sequence[Any], spec: str, price: float) -> list[Any]:
    """Contract rows (``contract_type``, ``strike_price``) the filter keeps: every future,
    and each option whose strike is kept."""
    opts = [r for r in rows if r.contract_type != "FUT" and r.strike_price is not None]
    kept = keep_strikes([float(r.strike_price) for r in opts], spec, price)
    return [
        r
        for r in rows
        if r.contract_type == "FUT" or r.strike_price is None or float(r.strike_price) in kept
    ]
