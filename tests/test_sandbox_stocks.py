"""The simulator's stock universe: monthly expiries on the exchange's rule, realistic strikes,
thin trading, served by the expired-instrument endpoints, and the index market unchanged."""

from __future__ import annotations

import statistics
from datetime import date, timedelta

import httpx
import pytest

from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN, SimulatorApp, tradingcal
from expirytrack_desktop.sandbox.market import Market, Underlying
from expirytrack_desktop.sandbox.stocks import stock_specs

TODAY = date(2025, 11, 20)  # its six months span the Thursday -> Tuesday change of 2025-09
NIFTY = "NSE_INDEX|Nifty 50"
AUTH = {"Authorization": f"Bearer {DEMO_ACCESS_TOKEN}"}


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(seed=7, today=TODAY, stocks=True, strikes_per_side=4)


def _by_symbol(market: Market, symbol: str):
    return next(u for u in market.underlyings() if u.symbol == symbol)


def test_over_200_stocks_with_awkward_names():
    stocks = [Underlying(**spec) for spec in stock_specs()]
    symbols = [u.symbol for u in stocks]
    assert len(set(symbols)) == len(symbols) >= 200
    assert len({u.key for u in stocks}) == len(stocks)
    assert {"M&M", "BAJAJ-AUTO", "NAM-INDIA", "M&MFIN"} <= set(symbols)
    assert any("&" in u.name for u in stocks)
    assert {u.strike_step for u in stocks} >= {0.5, 2.5, 5.0, 50.0, 100.0}
    assert all(u.key.startswith("NSE_EQ|INE") and len(u.key) == 19 for u in stocks)


def test_monthly_expiries_last_thursday_then_last_tuesday(market):
    for symbol in ("RELIANCE", "M&M", "BAJAJ-AUTO"):
        key = _by_symbol(market, symbol).key
        exps = market.expiries(key)
        assert len(exps) == 6 and all(not market.is_weekly(key, e) for e in exps)
        assert len({(e.year, e.month) for e in exps}) == len(exps)  # one per month
        for e in exps:
            weekday = 3 if e < date(2025, 9, 1) else 1
            nominal = tradingcal.monthly_expiry("NSE", e.year, e.month)
            assert e == nominal
            assert e.weekday() == weekday or not tradingcal.is_trading_day(
                _last_weekday(e.year, e.month, weekday)
            )
    # 2025-10-28 (Tue) and 2025-08-28 (Thu): real dates on both sides of the change
    assert date(2025, 8, 28) in market.expiries(_by_symbol(market, "M&M").key)
    assert date(2025, 10, 28) in market.expiries(_by_symbol(market, "M&M").key)


def _last_weekday(year: int, month: int, weekday: int) -> date:
    d = date(year + (month == 12), month % 12 + 1, 1)
    d -= timedelta(days=1)
    while d.weekday() != weekday:
        d -= timedelta(days=1)
    return d


def test_holiday_moves_the_expiry_to_the_previous_trading_day():
    # 2026-11-24 (the last Tuesday) is a holiday in the simulated calendar: Monday the 23rd
    m = Market(seed=7, today=date(2026, 12, 7), stocks=True, underlyings=("M&M",))
    assert date(2026, 11, 23) in m.expiries(m.underlyings()[0].key)


async def test_endpoints_serve_stock_contracts_with_fractional_strikes(market):
    stock = next(
        u for u in market.underlyings() if u.strike_step == 2.5 and u.underlying_type == "EQUITY"
    )
    app = SimulatorApp(market, rate_limit=None)
    async with httpx.AsyncClient(
        transport=app.transport(), base_url="http://sim", headers=AUTH
    ) as http:
        r = await http.get("/v2/expired-instruments/expiries", params={"instrument_key": stock.key})
        exp = r.json()["data"][-1]
        params = {"instrument_key": stock.key, "expiry_date": exp}
        opts = (await http.get("/v2/expired-instruments/option/contract", params=params)).json()
        futs = (await http.get("/v2/expired-instruments/future/contract", params=params)).json()
        strikes = {i["strike_price"] for i in opts["data"]}
        assert any(not float(k).is_integer() for k in strikes)
        item = opts["data"][0]
        assert item["underlying_symbol"] == stock.symbol
        assert item["underlying_type"] == "EQUITY" and item["weekly"] is False
        assert item["lot_size"] == stock.lot_size
        assert len(futs["data"]) == 1 and futs["data"][0]["instrument_type"] == "FUT"
        key = futs["data"][0]["instrument_key"]
        d = date.fromisoformat(exp)
        path = f"/v2/expired-instruments/historical-candle/{key}/day/{d}/{date(d.year, 1, 1)}"
        candles = (await http.get(path)).json()["data"]["candles"]
        assert candles
        bogus = key.replace(key.split("|")[1], str(int(key.split("|")[1]) + 150))
        r = await http.get(f"/v2/expired-instruments/historical-candle/{bogus}/day/{d}/{d}")
        assert r.status_code == 400


def test_stock_options_trade_thinly(market):
    """Most stock option contracts have a few candles a day (see bench/RESULTS.md)."""
    per_day = []
    for u in [u for u in market.underlyings() if u.underlying_type == "EQUITY"][::20]:
        e = market.expiries(u.key)[-2]
        for item in market.option_contracts(u.key, e):
            rows = market.candles(item["instrument_key"])
            days = (
                len(tradingcal.trading_days(date.fromisoformat(rows[0][0][:10]), e)) if rows else 1
            )
            per_day.append(len(rows) / days)
    assert statistics.median(per_day) < 25  # a liquid index option has ~200-350 a day
    assert max(per_day) > statistics.median(per_day)


def test_index_market_is_unchanged_by_the_stocks():
    plain = Market(seed=7, today=TODAY, strikes_per_side=2)
    both = Market(seed=7, today=TODAY, strikes_per_side=2, stocks=True)
    for key in plain.underlying_keys():
        assert plain.expiries(key) == both.expiries(key)
        e = plain.expiries(key)[-1]
        a, b = plain.option_contracts(key, e), both.option_contracts(key, e)
        assert a == b
        ck = a[len(a) // 2]["instrument_key"]
        assert plain.candles(ck) == both.candles(ck)


def test_official_sdk_parses_stock_contracts_and_candles(market):
    """The official SDK, pointed at the simulator on 127.0.0.1, reads a stock's contracts
    (fractional strikes, '&' in the symbol) and a thin contract's candles."""
    upstox_client = pytest.importorskip("upstox_client")
    from expirytrack_desktop.sandbox import serve

    app = SimulatorApp(market, rate_limit=None)
    mm = _by_symbol(market, "M&M")
    frac = next(
        u for u in market.underlyings() if u.strike_step == 2.5 and u.underlying_type == "EQUITY"
    )
    with serve(app, log_level="critical") as url:
        cfg = upstox_client.Configuration()
        cfg.host = url
        cfg.access_token = DEMO_ACCESS_TOKEN
        client = upstox_client.ApiClient(cfg)
        try:
            api = upstox_client.ExpiredInstrumentApi(client)
            assert api.get_expiries(mm.key).data == [d.isoformat() for d in market.expiries(mm.key)]
            for u in (mm, frac):
                e = market.expiries(u.key)[-1]
                got = api.get_expired_option_contracts(u.key, e.isoformat()).data
                want = market.option_contracts(u.key, e)
                assert [g.strike_price for g in got] == [w["strike_price"] for w in want]
                assert {g.underlying_symbol for g in got} == {u.symbol}
            key = want[len(want) // 2]["instrument_key"]
            e = market.expiries(frac.key)[-1]
            resp = api.get_expired_historical_candle_data(
                key, "1minute", e.isoformat(), (e - timedelta(days=10)).isoformat()
            )
            rows = market.candle_rows(key, "1minute", e - timedelta(days=10), e)
            assert len(resp.data.candles) == len(rows) > 0
        finally:
            client.pool.close()
            client.pool.join()
