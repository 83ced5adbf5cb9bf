"""The window's scoped verify (store/findings.py): the same findings as ``verify`` for the same
damage, each attributed to its expiry and contract, and "Collect missing" planning exactly the
ranges they name (Selection.windows through the real planner)."""

from __future__ import annotations

import shutil
from collections import Counter
from datetime import date, timedelta

import pytest

from expirytrack_desktop.collect import Selection, target_range
from expirytrack_desktop.collect.planning import plan_expiry
from expirytrack_desktop.collect.selection import SelectionError
from expirytrack_desktop.store import open_database
from expirytrack_desktop.store.coverage import months_before
from expirytrack_desktop.store.findings import repairs, scoped_verify
from expirytrack_desktop.store.verify import INCOMPLETE, NOTE, VerifyReport, fix, verify
from tests.collect_helpers import NIFTY
from tests.test_verify import EXPIRY, OTHER_EXPIRY, collect, fetched_windows, sql, ts


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    path = tmp_path_factory.mktemp("findings") / "template.sqlite3"
    collect(path)
    return path


@pytest.fixture
def dbfile(template, tmp_path):
    path = tmp_path / "f.sqlite3"
    shutil.copy(template, path)
    return path


def labels(path) -> dict[int, str]:
    return {r[0]: r[1] for r in sql(path, "SELECT id, openalgo_symbol FROM contract")}


def test_a_clean_collection_has_no_finding(dbfile):
    with open_database(dbfile, create=False) as db:
        report = scoped_verify(db, NIFTY, [EXPIRY])
        assert report.findings == [] and report.candles > 0 and report.windows > 0
        assert report.contracts == len(db.contracts_for(NIFTY, EXPIRY))


def test_each_damage_is_a_finding_of_its_contract_like_verify(dbfile):
    (w1, w2, w3, w4, w5, *_rest) = fetched_windows(dbfile)
    names = labels(dbfile)
    sql(dbfile, "DELETE FROM fetch_window WHERE contract_id = ?", (w1[0],))  # never fetched
    later = (date.fromisoformat(w2[2]) + timedelta(days=10)).isoformat()
    n = sql(dbfile, "SELECT count(*) FROM candle WHERE contract_id = ? AND ts >= ?",
            (w2[0], ts(date.fromisoformat(later), 0, 0)))[0][0]  # fmt: skip
    sql(dbfile, "UPDATE fetch_window SET from_date = ?, candles = ? WHERE contract_id = ?",
        (later, n, w2[0]))  # fmt: skip  # a gap before `later`
    sql(dbfile, "UPDATE fetch_window SET state = 'failed', candles = 0, error = 'HTTP 500' "
        "WHERE contract_id = ?", (w3[0],))  # fmt: skip
    first = sql(dbfile, "SELECT min(ts) FROM candle WHERE contract_id = ?", (w4[0],))[0][0]
    sql(dbfile, "DELETE FROM candle WHERE contract_id = ? AND ts < ?", (w4[0], first + 600))
    sql(dbfile, "UPDATE candle SET low = high + 1 WHERE contract_id = ? AND ts = "
        "(SELECT max(ts) FROM candle WHERE contract_id = ?)", (w5[0], w5[0]))  # fmt: skip
    eid = sql(dbfile, "SELECT id FROM expiry WHERE expiry_date = ?", (OTHER_EXPIRY.isoformat(),))
    sql(dbfile, "INSERT INTO coverage_target VALUES (?, 1, '2025-01-01', ?)",
        (eid[0][0], OTHER_EXPIRY.isoformat()))  # fmt: skip
    with open_database(dbfile, create=False) as db:
        whole = verify(db, instrument=NIFTY, full=True)
        report = scoped_verify(db, NIFTY)  # every expiry of NIFTY
        only = scoped_verify(db, NIFTY, [EXPIRY])
    counted = {f.key: f.count for f in whole.findings if f.count and f.key != "never_collected"}
    assert Counter(f.key for f in report.findings) == counted
    got = {(f.key, f.contract, f.expiry) for f in report.findings}
    assert got == {
        ("no_windows", names[w1[0]], EXPIRY),
        ("gaps", names[w2[0]], EXPIRY),
        ("failed", names[w3[0]], EXPIRY),
        ("gaps", names[w3[0]], EXPIRY),
        ("missing_candles", names[w4[0]], EXPIRY),
        ("ohlc", names[w5[0]], EXPIRY),
        ("no_contract_list", "", OTHER_EXPIRY),
    }
    assert [f for f in only.findings if f.expiry != EXPIRY] == []
    assert len(only.findings) == len(report.findings) - 1
    by = {(f.key, f.contract_id): f for f in report.findings}
    target = target_range(EXPIRY, 1)
    assert by["no_windows", w1[0]].missing == (target,)
    assert by["gaps", w2[0]].missing == (
        (target[0], date.fromisoformat(later) - timedelta(days=1)),
    )
    assert by["failed", w3[0]].missing == ((date.fromisoformat(w3[2]), date.fromisoformat(w3[3])),)
    assert "1 attempt(s), HTTP 500" in by["failed", w3[0]].detail
    assert by["missing_candles", w4[0]].unmark[0].contract_id == w4[0]
    assert not by["ohlc", w5[0]].collectable and by["ohlc", w5[0]].fix.startswith("stored as")
    [list_missing] = [f for f in report.findings if f.key == "no_contract_list"]
    assert list_missing.contract_id is None and list_missing.severity == INCOMPLETE
    # the fewest whole months reaching back to the target's first day, 2025-01-01
    m = list_missing.whole_months
    assert months_before(OTHER_EXPIRY, m) <= date(2025, 1, 1) < months_before(OTHER_EXPIRY, m - 1)

    plans = repairs(report.findings)
    assert [(r.expiry, r.windows is None) for r in plans] == [(OTHER_EXPIRY, True), (EXPIRY, False)]
    plans.reverse()
    key = {r[0]: r[1] for r in sql(dbfile, "SELECT id, expired_key FROM contract")}
    w3_range = (date.fromisoformat(w3[2]), date.fromisoformat(w3[3]))
    assert plans[0].windows == tuple(
        sorted(
            [
                (key[w1[0]], *target),
                (key[w2[0]], target[0], date.fromisoformat(later) - timedelta(days=1)),
                (key[w3[0]], *w3_range),  # its failed window lies in its gap: fetched once
                (key[w4[0]], date.fromisoformat(w4[2]), date.fromisoformat(w4[3])),
            ]
        )
    )
    # the planner, given these windows, plans exactly them once the stale mark is gone
    with open_database(dbfile, create=False) as db:
        sel = Selection([NIFTY], [EXPIRY], windows=plans[0].windows)
        assert Selection.from_params(sel.to_params()) == sel
        before = plan_expiry(db, NIFTY, EXPIRY, sel, None).tasks
        assert {(t.expired_key, t.from_date, t.to_date) for t in before} == set(
            plans[0].windows
        ) - {(key[w4[0]], date.fromisoformat(w4[2]), date.fromisoformat(w4[3]))}
        fix(db, VerifyReport(str(dbfile), NIFTY, fixable=list(plans[0].unmark)))
        after = plan_expiry(db, NIFTY, EXPIRY, sel, None, record=True).tasks
        assert {(t.expired_key, t.from_date, t.to_date) for t in after} == set(plans[0].windows)
        # a repair asks no new history: the target is as it was
        targets = db.execute("SELECT from_date, to_date FROM coverage_target ORDER BY 1 DESC")
        assert (targets[0][0], targets[0][1]) == (target[0].isoformat(), target[1].isoformat())


def test_notes_have_no_collection_and_bad_windows_are_refused(dbfile):
    (w1, *_rest) = fetched_windows(dbfile)
    late = sql(dbfile, "SELECT max(ts) FROM candle WHERE contract_id = ?", (w1[0],))[0][0]
    cols = "contract_id, interval, ts, open, high, low, close, volume, oi"
    sql(dbfile, f"INSERT INTO candle ({cols}) SELECT {cols.replace('ts,', '? + 3600,')} "
        "FROM candle WHERE contract_id = ? AND ts = ?", (late, w1[0], late))  # fmt: skip
    with open_database(dbfile, create=False) as db:
        report = scoped_verify(db, NIFTY, [EXPIRY])
    keys = {f.key: f for f in report.findings}
    assert set(keys) == {"hours", "extra_candles"}
    assert all(f.severity == NOTE and not f.collectable for f in report.findings)
    assert repairs(report.findings) == [] and report.problems == []
    with pytest.raises(SelectionError, match="ends before it starts"):
        Selection([NIFTY], [EXPIRY], windows=[("k", EXPIRY, EXPIRY - timedelta(days=1))])
    with pytest.raises(SelectionError, match="at least one window"):
        Selection([NIFTY], [EXPIRY], windows=[])
