"""Coverage summaries (schema 4): what coverage() and counts() report from the stored summary
equals a computation from scratch after every kind of change, and a summary computed while a
window was written is not kept as current."""

from __future__ import annotations

from datetime import date

import pytest

from expirytrack_desktop.store import open_database
from expirytrack_desktop.store import reports as reports_mod
from expirytrack_desktop.timeutil import parse_ts
from tests.test_prices import EXP, KEY, contract


def candles(day: date, n: int) -> list[tuple]:
    start = parse_ts(f"{day.isoformat()}T09:15:00+05:30")
    return [(start + 60 * i, 10.0, 10.5, 9.5, 10.25, i, 100 + i) for i in range(n)]


@pytest.fixture
def db(tmp_path):
    d = open_database(tmp_path / "c.sqlite3")
    d.upsert_underlying(KEY, symbol="NIFTY")
    d.store_contracts(KEY, EXP, [contract("1"), contract("2")], mark_fetched=True)
    yield d
    d.close()


def from_scratch(db) -> tuple[list, object]:
    with db.transaction() as c:
        c.execute("DELETE FROM coverage_summary")
        c.execute("DELETE FROM expiry_candles")
        c.execute(
            "INSERT OR REPLACE INTO coverage_stale(expiry_id, stamp) SELECT id, 1 FROM expiry"
        )
    return db.coverage(), db.counts().candles


def test_summary_follows_every_change(db):
    a, b = (c.id for c in db.contracts_for(KEY, EXP))
    steps = [
        lambda: db.set_coverage_target(db.expiry_id(KEY, EXP), "1minute", date(2025, 4, 23), EXP),
        lambda: db.store_window(a, "1minute", date(2025, 4, 23), EXP, candles(EXP, 30)),
        lambda: db.mark_window_failed(b, "1minute", date(2025, 4, 23), EXP, "HTTP 500"),
        lambda: db.store_window(b, "1minute", date(2025, 4, 23), date(2025, 4, 23), []),
        lambda: db.store_window(b, "1minute", EXP, EXP, candles(EXP, 5)),
        lambda: db.upsert_expiries(KEY, [date(2025, 5, 29)]),
        lambda: db.store_contracts(KEY, EXP, [contract("3")], mark_fetched=True),
    ]
    for step in steps:
        step()
        got = (db.coverage(), db.counts().candles)
        assert db.execute("SELECT count(*) FROM coverage_stale")[0][0] == 0
        assert got == from_scratch(db)
    states = {(r.instrument_key, r.symbol, r.expiry_date, r.state) for r in db.coverage()}
    assert states == {(KEY, "NIFTY", EXP, "partial"), (KEY, "NIFTY", date(2025, 5, 29), "no_data")}


def test_a_window_written_while_the_summary_is_computed_keeps_it_stale(db, monkeypatch):
    a = db.contracts_for(KEY, EXP)[0].id
    db.set_coverage_target(db.expiry_id(KEY, EXP), "1minute", EXP, EXP)
    db.coverage()
    real = reports_mod.ReportStore._expiry_figures
    written: list[int] = []

    def racing(self, *args, **kwargs):
        out = real(self, *args, **kwargs)
        if not written:
            written.append(self.store_window(a, "1minute", EXP, EXP, candles(EXP, 3)).candles)
        return out

    db.store_window(a, "1minute", EXP, EXP, candles(EXP, 2))  # stale now
    monkeypatch.setattr(reports_mod.ReportStore, "_expiry_figures", racing)
    db.coverage()  # computed before the 3-candle write landed: not stored as current
    assert written == [3]
    assert db.execute("SELECT count(*) FROM coverage_stale")[0][0] == 1
    monkeypatch.setattr(reports_mod.ReportStore, "_expiry_figures", real)
    (row,) = db.coverage()
    assert row.candles == 3 and db.counts().candles == 3
    assert db.execute("SELECT count(*) FROM coverage_stale")[0][0] == 0


def test_a_read_only_file_still_reports_current_figures(tmp_path):
    path = tmp_path / "ro.sqlite3"
    with open_database(path) as d:
        d.upsert_underlying(KEY, symbol="NIFTY")
        d.store_contracts(KEY, EXP, [contract("1")], mark_fetched=True)
        d.set_coverage_target(d.expiry_id(KEY, EXP), "1minute", EXP, EXP)
        d.store_window(d.contracts_for(KEY, EXP)[0].id, "1minute", EXP, EXP, candles(EXP, 4))
    path.chmod(0o444)
    try:
        with open_database(path, check_writable=False) as d:
            (row,) = d.coverage()
            assert (row.state, row.candles, d.counts().candles) == ("complete", 4, 4)
    finally:
        path.chmod(0o644)
