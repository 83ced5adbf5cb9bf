"""Chart series: N-minute and day bars from 1-minute candles, straddle premiums over a day."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import date, datetime, time

import pytest

from expirytrack_desktop.analysis.candles import Candle, DbCandleSource
from expirytrack_desktop.analysis.chain import build_chain
from expirytrack_desktop.analysis.series import aggregate, bucket_start, straddle_series
from expirytrack_desktop.store import open_database
from expirytrack_desktop.timeutil import IST
from tests.analysis_helpers import MONTHLY, NIFTY, RATE, collect_chain_db


@pytest.fixture(scope="module")
def chain_db(tmp_path_factory):
    return collect_chain_db(tmp_path_factory.mktemp("series"), (MONTHLY,), strikes=2)


def ist(d: date, hh: int, mm: int) -> int:
    return int(datetime.combine(d, time(hh, mm), tzinfo=IST).timestamp())


D = date(2025, 9, 24)


@pytest.mark.parametrize(
    ("minute", "width", "start"),
    [
        ((9, 15), 5, (9, 15)), ((9, 19), 5, (9, 15)), ((9, 20), 5, (9, 20)),
        ((9, 16), 3, (9, 15)), ((9, 18), 3, (9, 18)), ((10, 44), 15, (10, 30)),
        ((15, 29), 30, (15, 15)), ((9, 44), 30, (9, 15)), ((9, 45), 30, (9, 45)),
    ],
)  # fmt: skip
def test_bars_are_aligned_to_the_session_open(minute, width, start):
    assert bucket_start(ist(D, *minute), width) == ist(D, *start)


def test_day_bars_start_at_ist_midnight():
    assert bucket_start(ist(D, 15, 29), 1440) == ist(D, 0, 0)
    assert bucket_start(ist(D, 9, 15), 1440) == ist(D, 0, 0)


def test_aggregate_ohlcv_and_gaps():
    def c(hh, mm, o, h, lo, cl, v, oi):
        return Candle(ist(D, hh, mm), o, h, lo, cl, v, oi)

    minutes = [c(9, 15, 10, 12, 9, 11, 5, 100), c(9, 16, 11, 15, 10, 14, 7, 110),
               c(9, 19, 14, 14, 8, 9, 1, 90),  # 9:17, 9:18 missing: still one bar
               c(9, 31, 20, 21, 19, 20, 3, 95)]  # 9:20-9:29 missing: no bar there  # fmt: skip
    bars = aggregate(minutes, 5)
    assert [(b.ts, b.open, b.high, b.low, b.close, b.volume, b.oi) for b in bars] == [
        (ist(D, 9, 15), 10, 15, 8, 9, 13, 90),
        (ist(D, 9, 30), 20, 21, 19, 20, 3, 95),
    ]
    assert aggregate(minutes, 1) == minutes


@pytest.mark.parametrize("width", [3, 5, 15, 30, 1440])
def test_aggregate_equals_sql_over_the_stored_candles(chain_db, width):
    with open_database(chain_db, create=False, check_writable=False) as db:
        source = DbCandleSource(db)
        future = next(c for c in source.contracts(NIFTY, MONTHLY) if c.contract_type == "FUT")
        bars = aggregate(source.candles(future.contract_id), width)
    with closing(sqlite3.connect(f"file:{chain_db}?mode=ro", uri=True)) as conn:
        rows = conn.execute(
            "SELECT timestamp, open, high, low, close, volume, oi FROM historical_data h "
            "JOIN contracts c USING (expired_instrument_key) "
            "WHERE c.contract_type = 'FUT' AND c.expiry_date = ? ORDER BY timestamp",
            (MONTHLY.isoformat(),),
        ).fetchall()
    groups: dict[int, list] = {}
    for ts, o, h, lo, cl, v, oi in rows:
        moment = datetime.fromisoformat(ts)
        day0 = datetime.combine(moment.date(), time(0), tzinfo=IST)
        if width == 1440:
            key = int(day0.timestamp())
        else:
            since = (moment - day0).seconds - (9 * 3600 + 15 * 60)
            key = int(day0.timestamp()) + 9 * 3600 + 15 * 60 + since // (width * 60) * width * 60
        groups.setdefault(key, []).append((o, h, lo, cl, v, oi))
    expect = [
        (k, g[0][0], max(x[1] for x in g), min(x[2] for x in g), g[-1][3],
         sum(x[4] for x in g), g[-1][5])
        for k, g in sorted(groups.items())
    ]  # fmt: skip
    assert [(b.ts, b.open, b.high, b.low, b.close, b.volume, b.oi) for b in bars] == expect
    assert len(bars) > 10


def test_straddle_equals_the_chain_minute_by_minute(chain_db):
    with open_database(chain_db, create=False, check_writable=False) as db:
        source = DbCandleSource(db, cache=True)
        atm = straddle_series(source, NIFTY, MONTHLY, D, rate=RATE)
        strike = atm[len(atm) // 2].ce_strike
        fixed = straddle_series(source, NIFTY, MONTHLY, D, ce_strike=strike, pe_strike=strike)
        for point in (atm[0], atm[len(atm) // 3], atm[-1]):
            minute = datetime.fromtimestamp(point.ts, IST)
            snap = build_chain(DbCandleSource(db), NIFTY, MONTHLY, minute, rate=RATE)
            priced = [r.strike for r in snap.rows if r.ce and r.ce.ltp and r.pe and r.pe.ltp]
            nearest = min(priced, key=lambda k: (abs(k - snap.forward), k))
            assert point.ce_strike == point.pe_strike == nearest
            row = next(r for r in snap.rows if r.strike == point.ce_strike)
            assert (point.ce, point.pe) == (row.ce.ltp, row.pe.ltp)
            assert point.premium == row.ce.ltp + row.pe.ltp
    assert len(atm) == 375 and atm[0].ts == ist(D, 9, 15)  # every minute of the session
    assert {p.ce_strike for p in fixed} == {strike} and len(fixed) > 300


def test_straddle_bad_strikes(chain_db):
    with open_database(chain_db, create=False, check_writable=False) as db:
        source = DbCandleSource(db)
        with pytest.raises(ValueError, match="both strikes"):
            straddle_series(source, NIFTY, MONTHLY, D, ce_strike=25000.0)
        with pytest.raises(ValueError, match=r"no CE 1\.0"):
            straddle_series(source, NIFTY, MONTHLY, D, ce_strike=1.0, pe_strike=1.0)
