"""Per-contract data quality against a direct computation, and planted anomalies found."""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from contextlib import closing
from datetime import datetime

import pytest

from expirytrack_desktop.analysis.quality import SESSION_MINUTES, expiry_quality, gap_runs
from expirytrack_desktop.store import open_database
from expirytrack_desktop.timeutil import IST
from tests.analysis_helpers import MONTHLY, NIFTY, collect_chain_db


@pytest.fixture
def quality_db(tmp_path):
    return collect_chain_db(tmp_path, (MONTHLY,), strikes=2)


def session_stamps(path):
    """contract key -> IST datetimes of its session candles, from the documented views."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        out = defaultdict(list)
        for key, ts in conn.execute(
            "SELECT h.expired_instrument_key, h.timestamp FROM historical_data h "
            "JOIN contracts c USING (expired_instrument_key) WHERE c.expiry_date = ? "
            "ORDER BY h.timestamp",
            (MONTHLY.isoformat(),),
        ):
            moment = datetime.fromisoformat(ts).astimezone(IST)
            if "09:15" <= moment.strftime("%H:%M") <= "15:29":
                out[key].append(moment)
        symbols = dict(
            conn.execute("SELECT expired_instrument_key, openalgo_symbol FROM contracts")
        )
    return out, symbols


def test_missing_minutes_equal_a_direct_count(quality_db):
    stamps, symbols = session_stamps(quality_db)
    days = sorted({m.date() for ms in stamps.values() for m in ms})
    with open_database(quality_db, create=False, check_writable=False) as db:
        report = {q.symbol: q for q in expiry_quality(db, NIFTY, MONTHLY)}
    assert report and next(iter(report.values())).contract_type == "FUT"
    for key, symbol in symbols.items():
        q = report[symbol]
        ms = stamps.get(key, [])
        if not ms:
            assert q.candles == 0 and q.missing_pct is None
            continue
        span = [d for d in days if ms[0].date() <= d <= ms[-1].date()]
        assert q.candles == len(ms)
        assert q.days_traded == len({m.date() for m in ms})
        assert q.expected_minutes == len(span) * SESSION_MINUTES
        assert q.missing_minutes == len(span) * SESSION_MINUTES - len(ms)
        assert q.anomalies == 0 and q.failed_windows == 0
    future = next(q for q in report.values() if q.contract_type == "FUT")
    assert future.missing_pct == 0.0  # the simulator's future trades every minute


def test_gap_runs_add_up_to_the_missing_minutes(quality_db):
    with open_database(quality_db, create=False, check_writable=False) as db:
        for q in expiry_quality(db, NIFTY, MONTHLY):
            if not q.candles:
                continue
            runs = gap_runs(db, q.contract_id)
            traded_days_only = q.days_traded * SESSION_MINUTES - q.candles
            assert sum(r.minutes for r in runs) == traded_days_only
            assert all(r.minutes >= 1 for r in runs)


def test_planted_anomalies_are_counted(quality_db):
    with closing(sqlite3.connect(quality_db)) as conn:
        cid, ts = conn.execute(
            "SELECT k.contract_id, k.ts FROM candle k JOIN contract c ON c.id = k.contract_id "
            "WHERE c.contract_type = 'CE' ORDER BY k.contract_id, k.ts LIMIT 1 OFFSET 40"
        ).fetchone()
        conn.execute("UPDATE candle SET low = high + 1 WHERE contract_id = ? AND ts = ?", (cid, ts))
        conn.execute(
            "UPDATE candle SET oi = oi * 3 WHERE contract_id = ? AND ts = "
            "(SELECT min(ts) FROM candle WHERE contract_id = ? AND ts > ?)",
            (cid, cid, ts + 3600),
        )
        conn.execute(
            "UPDATE candle SET volume = -1 WHERE contract_id = ? AND ts = "
            "(SELECT max(ts) FROM candle WHERE contract_id = ?)",
            (cid, cid),
        )
        conn.commit()
    with open_database(quality_db, create=False, check_writable=False) as db:
        report = {q.contract_id: q for q in expiry_quality(db, NIFTY, MONTHLY)}
    hit = report.pop(cid)
    assert (hit.ohlc_anomalies, hit.negative_values) == (1, 1)
    assert hit.oi_jumps == 2  # up x3, then back down to the unchanged next minute
    assert all(q.anomalies == 0 for q in report.values())


def test_unknown_expiry_is_empty(quality_db):
    from datetime import date

    with open_database(quality_db, create=False, check_writable=False) as db:
        assert expiry_quality(db, NIFTY, date(2020, 1, 30)) == []
