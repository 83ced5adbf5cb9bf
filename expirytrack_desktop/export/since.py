"""Only what is new: an export narrowed to the (underlying, expiry) pairs whose candles
changed since an earlier export of the same selection ("after each scheduled collection,
export what is new").

The caller keeps the fingerprints this returns (:mod:`.fingerprint`: per pair, each
contract's candle count, first and last minute and sums) and hands them back next time, only
once that export has succeeded; a failed run is then done again whole. The narrowed export is
every candle of the changed pairs (a complete file per expiry, not a diff), and a pair that
changed while the export ran is simply exported again next time: never less than what is
new, sometimes more (the underlyings and expiries are filtered separately, so an expiry that
changed for one underlying comes with the other selected underlyings' candles of that date).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import date, datetime
from typing import Any

from expirytrack_desktop.export.db import DbSource, reading
from expirytrack_desktop.export.fingerprint import partition_prints
from expirytrack_desktop.export.options import ExportOptions
from expirytrack_desktop.export.query import select_contracts, ts_bounds
from expirytrack_desktop.timeutil import now_utc


def changed_since(
    db: DbSource,
    options: ExportOptions,
    previous: dict[str, Any],
    *,
    clock: Callable[[], datetime] = now_utc,
) -> tuple[ExportOptions | None, dict[str, Any]]:
    """(``options`` narrowed to what changed since ``previous``, or None when nothing did;
    the fingerprints now, by "UNDERLYING/EXPIRY", to keep once the export has succeeded)."""
    lo, hi = ts_bounds(options, clock)
    with reading(db) as conn:
        contracts = select_contracts(conn, options)
        parts = partition_prints(conn, contracts, options.interval_minutes, lo, hi)
    now = {f"{u}/{e}": fp for (u, e), (_members, fp) in parts.items()}
    changed = [
        (members, expiry)
        for (u, expiry), (members, fp) in parts.items()
        if previous.get(f"{u}/{expiry}") != fp and any(c.rows for c in members)
    ]
    if not changed:
        return None, now
    keys = tuple(dict.fromkeys(members[0].instrument_key for members, _ in changed))
    expiries = tuple(sorted({date.fromisoformat(e) for _, e in changed}))
    return replace(options, underlyings=keys, expiries=expiries), now
