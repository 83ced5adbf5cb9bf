"""Planning at universe scale reads windows one row per contract and works out each distinct
set of windows once: the answer must be the one the plain per-window reading gives."""

from __future__ import annotations

import random
from datetime import date, timedelta

from expirytrack_desktop.collect.plan import ContractTarget, plan_windows
from expirytrack_desktop.store.coverage import chunk_range, subtract_ranges
from tests.test_store import EXP, KEY, contract, db, seeded  # noqa: F401  (db: fixture)


def naive(targets, covered, span):
    """The planner's definition, contract by contract, without sharing anything."""
    out = []
    for t in targets:
        done = [(f, to) for f, to, s in covered.get(t.contract_id, ()) if s != "failed"]
        for gap in subtract_ranges((t.from_date, t.to_date), done):
            out += [(t.contract_id, f, to) for f, to in chunk_range(gap, span)]
    return out


def test_window_ranges_equal_the_rows_of_windows_for(db):  # noqa: F811
    seeded(db)
    db.store_contracts(KEY, EXP, [contract(str(n)) for n in range(4, 12)], mark_fetched=True)
    ids = [c.id for c in db.contracts_for(KEY, EXP)]
    rng = random.Random(3)
    start = date(2025, 1, 1)
    for cid in ids[:-1]:  # the last contract has no window at all
        day = start + timedelta(days=rng.randrange(5))
        for _ in range(rng.randrange(1, 4)):
            end = day + timedelta(days=rng.randrange(1, 20))
            if rng.random() < 0.3:
                db.mark_window_failed(cid, "1minute", day, end, "boom")
            else:
                db.store_window(cid, "1minute", day, end, [])
            day = end + timedelta(days=1 + rng.randrange(3))
    got = db.window_ranges(ids, "1minute")
    want = db.windows_for(ids, "1minute")
    assert set(got) == set(want) == set(ids)
    for cid in ids:
        assert sorted(got[cid]) == sorted((w.from_date, w.to_date, w.state) for w in want[cid])
    assert got[ids[-1]] == []
    assert db.window_ranges(ids, "5minute") == {cid: [] for cid in ids}


def test_plan_windows_shares_work_but_not_answers():
    rng = random.Random(11)
    d0 = date(2025, 3, 1)
    patterns = [
        [],
        [(d0, d0 + timedelta(days=29), "fetched")],
        [(d0, d0 + timedelta(days=29), "failed")],
        [(d0 + timedelta(days=10), d0 + timedelta(days=40), "empty"),
         (d0, d0 + timedelta(days=5), "fetched")],
    ]  # fmt: skip
    targets, covered = [], {}
    for cid in range(200):
        f = d0 + timedelta(days=rng.choice([0, 0, 0, 3]))
        targets.append(ContractTarget(cid, f"K{cid}", f, f + timedelta(days=89), f"L{cid}"))
        covered[cid] = patterns[rng.randrange(len(patterns))]  # the same list objects shared
    for span in (None, 7, 30):
        tasks = plan_windows(targets, covered, "1minute", span)
        assert [(t.contract_id, t.from_date, t.to_date) for t in tasks] == naive(
            targets, covered, span
        )
        assert all(t.expired_key == f"K{t.contract_id}" for t in tasks)
