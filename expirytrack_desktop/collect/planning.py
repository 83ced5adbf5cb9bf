"""Planning from the store: the candle windows a selection still needs, as functions of the
database state (run them on the database's writer thread, ``db.run(plan_expiry, db, ...)``).

The arithmetic is the pure planner's (:mod:`.plan`); these functions read what it needs with
one set-based query per expiry (its contracts, then all their windows) and order the result
deadline-first.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from expirytrack_desktop.collect.plan import (
    ContractTarget,
    WindowTask,
    deadline_first,
    plan_ranges,
    plan_windows,
    target_range,
)
from expirytrack_desktop.collect.selection import Selection
from expirytrack_desktop.collect.strikes import describe, filter_rows, price_near_expiry
from expirytrack_desktop.store import Database

Covered = dict[int, list[tuple[date, date, str]]]


@dataclass(frozen=True, slots=True)
class ExpiryPlan:
    """What one expiry still needs: its windows, how many contracts it has, its row id, and
    (with a strike filter) what the filter did or why it could not."""

    tasks: list[WindowTask]
    contracts: int
    expiry_id: int | None
    note: str | None = None


def _covered(db: Database, contract_ids: Iterable[int], interval: str) -> Covered:
    return db.window_ranges(contract_ids, interval)


def plan_expiry(
    db: Database,
    key: str,
    expiry: date,
    selection: Selection,
    span: int | None,
    *,
    record: bool = False,
) -> ExpiryPlan:
    """The windows of ``key``'s ``expiry`` that ``selection`` still needs. ``record``: store the
    expiry's coverage target (a run does; an estimate does not)."""
    eid = db.expiry_id(key, expiry)
    rows = db.contracts_for(key, expiry, selection.contract_types)
    note = None
    if selection.strikes is not None and any(r.contract_type != "FUT" for r in rows):
        price, source = price_near_expiry(db, key, expiry)
        if price is None:
            note = f"{expiry}: no price near expiry ({source}); all strikes taken"
        else:
            kept = filter_rows(rows, selection.strikes, price)
            note = (
                f"{expiry}: {describe(selection.strikes)} around {price:g} ({source}): "
                f"{len(kept)} of {len(rows)} contracts"
            )
            rows = kept
    f0, t0 = target_range(expiry, selection.months)
    if selection.windows is not None:  # only these ranges of these contracts (no new target)
        return _plan_windows_of(db, rows, expiry, selection, span, eid)
    if record and eid is not None:
        db.set_coverage_target(eid, selection.interval, f0, t0)
    targets = [
        ContractTarget(r.id, r.expired_key, f0, t0, r.openalgo_symbol or r.expired_key, expiry)
        for r in rows
    ]
    covered = _covered(db, [r.id for r in rows], selection.interval)
    tasks = plan_windows(targets, covered, selection.interval, span)
    return ExpiryPlan(tasks, len(rows), eid, note)


def _plan_windows_of(
    db: Database,
    rows: list[Any],
    expiry: date,
    selection: Selection,
    span: int | None,
    eid: int | None,
) -> ExpiryPlan:
    """``selection.windows`` of this expiry's contracts, less what is stored by now."""
    by_key = {r.expired_key: r for r in rows}
    ranges = []
    for key, first, last in selection.windows or ():
        r = by_key.get(key)
        if r is not None:
            label = r.openalgo_symbol or r.expired_key
            ranges.append((ContractTarget(r.id, key, first, last, label, expiry), first, last))
    covered = _covered(db, {t.contract_id for t, _, _ in ranges}, selection.interval)
    tasks = plan_ranges(ranges, covered, selection.interval, span)
    return ExpiryPlan(tasks, len({t.contract_id for t, _, _ in ranges}), eid)


def plan_failed(db: Database, job_id: int, interval: str, span: int | None) -> list[WindowTask]:
    """The failed windows of job ``job_id`` still missing, oldest deadline first."""
    ranges = [
        (
            ContractTarget(w.contract_id, key, w.from_date, w.to_date, key),
            w.from_date,
            w.to_date,
        )
        for w, key in db.failed_windows(job_id)
    ]
    return _plan_ranges(db, ranges, interval, span)


def plan_again(db: Database, tasks: list[WindowTask], span: int | None) -> list[WindowTask]:
    """What is still missing of these windows (another job may have fetched them)."""
    if not tasks:
        return []
    ranges = [
        (
            ContractTarget(t.contract_id, t.expired_key, t.from_date, t.to_date, t.label, t.expiry),
            t.from_date,
            t.to_date,
        )
        for t in tasks
    ]
    return _plan_ranges(db, ranges, tasks[0].interval, span)


def _plan_ranges(
    db: Database,
    ranges: list[tuple[ContractTarget, date, date]],
    interval: str,
    span: int | None,
) -> list[WindowTask]:
    covered = _covered(db, {t.contract_id for t, _, _ in ranges}, interval)
    return deadline_first(plan_ranges(ranges, covered, interval, span))


def matching_job(db: Database, params: dict[str, Any]) -> int | None:
    """A stopped collection job with exactly these parameters (rerunning a command continues
    it instead of adding a history entry), else None."""
    for rec in db.list_jobs(limit=20, job_type="collect"):
        if rec.params == params and rec.status in (
            "needs_login",
            "interrupted",
            "failed",
            "cancelled",
        ):
            return rec.id
    return None
