"""The synthetic market: determinism, calendar, contract items, candle invariants."""

from __future__ import annotations

import re
from collections import OrderedDict
from datetime import date, datetime, timedelta

import pytest

from expirytrack_desktop.sandbox import Market
from expirytrack_desktop.sandbox.tradingcal import holidays, is_trading_day

TODAY = date(2025, 6, 1)
NIFTY = "NSE_INDEX|Nifty 50"
SENSEX = "BSE_INDEX|SENSEX"
VEDL = "NSE_EQ|INE205A01025"
TS_RE = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:00\+05:30$")


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(seed=7, today=TODAY, strikes_per_side=4)


def monthly(m: Market, key: str) -> list[date]:
    return [e for e in m.expiries(key) if not m.is_weekly(key, e)]


def weekly(m: Market, key: str) -> list[date]:
    return [e for e in m.expiries(key) if m.is_weekly(key, e)]


def test_underlyings_include_the_documented_keys(market):
    keys = market.underlying_keys()
    for key in (
        NIFTY,
        "NSE_INDEX|Nifty Bank",
        "NSE_INDEX|Nifty Fin Service",
        "NSE_INDEX|NIFTY MID SELECT",
        SENSEX,
        VEDL,
    ):
        assert key in keys


def test_same_seed_same_market_other_seed_other_market(market):
    twin = Market(seed=7, today=TODAY, strikes_per_side=4)
    e = monthly(market, NIFTY)[-1]
    assert twin.option_contracts(NIFTY, e) == market.option_contracts(NIFTY, e)
    k = market.option_contracts(NIFTY, e)[4]["instrument_key"]
    assert twin.candles(k) == market.candles(k)
    other = Market(seed=8, today=TODAY, strikes_per_side=4)
    k2 = other.option_contracts(NIFTY, e)[4]["instrument_key"]
    assert other.candles(k2) != market.candles(k)


def test_expiries_cover_six_months_all_in_the_past(market):
    for key in market.underlying_keys():
        exps = market.expiries(key)
        assert exps == sorted(set(exps))
        assert all(e < TODAY for e in exps)
        assert exps[0] >= TODAY - timedelta(days=190)
        assert exps[-1] >= TODAY - timedelta(days=40)
        assert all(is_trading_day(e) for e in exps)
        assert len(monthly(market, key)) >= 5


def test_weekly_and_monthly_mix(market):
    assert len(weekly(market, NIFTY)) >= 15
    assert len(weekly(market, SENSEX)) >= 15
    assert weekly(market, "NSE_INDEX|Nifty Bank") == []
    # NIFTY's December 2024 monthly moved to Thursday 26th (25th is a holiday, 26th is last Thu)
    assert date(2024, 12, 26) in monthly(market, NIFTY)
    # April 2025: last Thursday (24th) is the monthly; the weekly of Thu 10 Apr (holiday) moved
    assert date(2025, 4, 24) in monthly(market, NIFTY)
    assert date(2025, 4, 9) in weekly(market, NIFTY)
    assert date(2025, 4, 10) not in market.expiries(NIFTY)


def test_expiry_weekday_switch_after_september_2025():
    m = Market(seed=7, today=date(2025, 12, 1), underlyings=(NIFTY,), strikes_per_side=1)
    after = [e for e in m.expiries(NIFTY) if e >= date(2025, 9, 1)]
    assert after and all(e.weekday() == 1 for e in after if is_trading_day(e + timedelta(1)))
    before = [e for e in m.expiries(NIFTY) if e < date(2025, 9, 1)]
    assert {e.weekday() for e in before} <= {2, 3}


def test_option_items_have_every_documented_field(market):
    e = monthly(market, NIFTY)[-1]
    items = market.option_contracts(NIFTY, e)
    assert len(items) == 2 * (2 * 4 + 1)
    for it in items:
        assert set(it) == {
            "name", "segment", "exchange", "expiry", "instrument_key", "exchange_token",
            "trading_symbol", "tick_size", "lot_size", "instrument_type", "freeze_quantity",
            "underlying_key", "underlying_type", "underlying_symbol", "strike_price",
            "minimum_lot", "weekly",
        }  # fmt: skip
        assert it["expiry"] == e.isoformat()
        assert it["instrument_key"] == f"NSE_FO|{it['exchange_token']}|{e:%d-%m-%Y}"
        assert it["weekly"] is False
        assert it["lot_size"] == it["minimum_lot"] == 75
        assert it["underlying_type"] == "INDEX" and it["underlying_symbol"] == "NIFTY"
        assert it["instrument_type"] in ("CE", "PE")
        strike = int(it["strike_price"])
        assert strike % 50 == 0
        mon = e.strftime("%b").upper()
        sym = f"NIFTY {strike} {it['instrument_type']} {e.day:02d} {mon} {e:%y}"
        assert it["trading_symbol"] == sym
    assert len({it["instrument_key"] for it in items}) == len(items)
    w = weekly(market, NIFTY)[-1]
    assert all(it["weekly"] is True for it in market.option_contracts(NIFTY, w))


def test_futures_only_on_monthly_expiries(market):
    m, w = monthly(market, NIFTY)[-1], weekly(market, NIFTY)[-1]
    assert market.future_contracts(NIFTY, w) == []
    (fut,) = market.future_contracts(NIFTY, m)
    assert fut["instrument_type"] == "FUT"
    assert "strike_price" not in fut and "weekly" not in fut
    assert fut["trading_symbol"] == f"NIFTY FUT {m.day:02d} {m.strftime('%b').upper()} {m:%y}"
    assert market.option_contracts(NIFTY, date(2025, 5, 30)) == []


def test_sensex_is_bse_and_stock_has_fractional_strikes():
    m = Market(seed=3, today=TODAY, underlyings=(SENSEX, VEDL), strikes_per_side=10)
    item = m.option_contracts(SENSEX, m.expiries(SENSEX)[-1])[0]
    assert item["segment"] == "BSE_FO" and item["exchange"] == "BSE"
    assert item["instrument_key"].startswith("BSE_FO|")
    fractional = [
        it
        for e in m.expiries(VEDL)
        for it in m.option_contracts(VEDL, e)
        if not float(it["strike_price"]).is_integer()
    ]
    assert fractional
    it = fractional[0]
    assert it["underlying_type"] == "EQUITY"
    assert f" {it['strike_price']} " in it["trading_symbol"]  # e.g. "VEDL 292.5 CE 24 APR 25"


def test_candles_are_on_trading_minutes_and_consistent(market):
    e = monthly(market, NIFTY)[-1]
    items = market.option_contracts(NIFTY, e) + market.future_contracts(NIFTY, e)
    for it in items[::3] + items[-1:]:
        rows = market.candles(it["instrument_key"])
        tick = it["tick_size"] / 100
        stamps = [r[0] for r in rows]
        assert stamps == sorted(stamps) and len(set(stamps)) == len(stamps)
        for ts, o, h, lo, c, v, oi in rows:
            assert TS_RE.match(ts)
            dt = datetime.fromisoformat(ts)
            assert is_trading_day(dt.date()) and dt.date() <= e
            assert (9, 15) <= (dt.hour, dt.minute) <= (15, 29)
            assert 0 < lo <= min(o, c) <= max(o, c) <= h
            for p in (o, h, lo, c):
                assert abs(p / tick - round(p / tick)) < 1e-6
            assert isinstance(v, int) and isinstance(oi, int) and v > 0 and oi >= 0
            assert v % it["lot_size"] == 0


def test_no_weekend_or_holiday_candles():
    m = Market(seed=11, today=date(2025, 5, 1), underlyings=(NIFTY,), strikes_per_side=1)
    e = [x for x in m.expiries(NIFTY) if not m.is_weekly(NIFTY, x)][-1]
    fut = m.future_contracts(NIFTY, e)[0]["instrument_key"]
    days = {r[0][:10] for r in m.candles(fut, "day")}
    assert "2025-03-14" not in days and "2025-03-31" not in days  # holidays
    assert "2025-03-15" not in days and "2025-03-16" not in days  # weekend
    assert "2025-03-13" in days and "2025-03-17" in days
    assert date(2025, 3, 14) in holidays(2025)
    minutes = [r for r in m.candles(fut) if r[0].startswith("2025-03-13")]
    assert minutes[0][0] == "2025-03-13T09:15:00+05:30"
    assert minutes[-1][0] == "2025-03-13T15:29:00+05:30"


def test_sparse_far_strikes_and_contracts_without_trades(market):
    e = monthly(market, NIFTY)[-1]
    items = market.option_contracts(NIFTY, e)
    counts = {it["trading_symbol"]: len(market.candles(it["instrument_key"])) for it in items}
    assert 0 in counts.values()  # some contracts never trade
    fut = market.future_contracts(NIFTY, e)[0]["instrument_key"]
    full = len(market.candles(fut))
    assert max(counts.values()) < full  # options skip minutes
    assert min(c for c in counts.values() if c) < 0.7 * full


def _aggregate(rows: list[list], minutes: int | None) -> list[list]:
    """Independent reference: bucket 1-minute candles by session-aligned start."""
    buckets: OrderedDict[str, list[list]] = OrderedDict()
    for r in rows:
        dt = datetime.fromisoformat(r[0])
        if minutes is None:
            start = dt.replace(hour=0, minute=0)
        else:
            since = (dt.hour * 60 + dt.minute) - (9 * 60 + 15)
            start = dt - timedelta(minutes=since % minutes)
        buckets.setdefault(start.isoformat(), []).append(r)
    return [
        [k, g[0][1], max(x[2] for x in g), min(x[3] for x in g), g[-1][4],
         sum(x[5] for x in g), g[-1][6]]
        for k, g in buckets.items()
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("interval", "minutes"),
    [("3minute", 3), ("5minute", 5), ("15minute", 15), ("30minute", 30), ("day", None)],
)
def test_higher_intervals_aggregate_exactly(market, interval, minutes):
    e = monthly(market, NIFTY)[-1]
    items = market.option_contracts(NIFTY, e)
    key = items[3]["instrument_key"]
    one = market.candles(key, "1minute")
    assert one
    assert market.candles(key, interval) == _aggregate(one, minutes)


def test_day_and_30minute_stamps(market):
    e = monthly(market, NIFTY)[-1]
    key = market.future_contracts(NIFTY, e)[0]["instrument_key"]
    assert all(r[0].endswith("T00:00:00+05:30") for r in market.candles(key, "day"))
    last_day = [r[0][11:16] for r in market.candles(key, "30minute") if r[0][:10] == str(e)]
    assert last_day[0] == "09:15" and last_day[-1] == "15:15" and len(last_day) == 13


def test_candle_rows_range_is_inclusive_and_newest_first(market):
    e = monthly(market, NIFTY)[-1]
    key = market.future_contracts(NIFTY, e)[0]["instrument_key"]
    d1, d2 = date(2025, 5, 20), date(2025, 5, 22)
    rows = market.candle_rows(key, "1minute", d1, d2)
    assert rows[0][0] == "2025-05-22T15:29:00+05:30"
    assert rows[-1][0] == "2025-05-20T09:15:00+05:30"
    assert len(rows) == 3 * 375
    assert market.candle_rows(key, "1minute", date(2025, 5, 24), date(2025, 5, 25)) == []
