"""Fidelity: the official upstox-python-sdk, pointed at the simulator's port, parses every
endpoint's response into its own models with the values the market holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

upstox_client = pytest.importorskip("upstox_client")
from upstox_client.rest import ApiException  # noqa: E402

from expirytrack_desktop.sandbox import (  # noqa: E402
    FaultConfig,
    Market,
    SimulatorApp,
    demo_client_credentials,
    serve,
)

NIFTY = "NSE_INDEX|Nifty 50"
VEDL = "NSE_EQ|INE205A01025"
API_VERSION = "2.0"


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(seed=7, today=date(2025, 6, 1), strikes_per_side=10)


@pytest.fixture
def sim(market) -> Iterator[tuple[SimulatorApp, str, str]]:
    app = SimulatorApp(market, rate_limit=None)
    token = app.issue_token("SDK001")
    with serve(app, log_level="critical") as url:
        yield app, url, token


@pytest.fixture
def api_client(sim):
    _, url, token = sim
    cfg = upstox_client.Configuration()
    cfg.host = url
    cfg.access_token = token
    client = upstox_client.ApiClient(cfg)
    yield client
    client.pool.close()
    client.pool.join()


def monthly(m: Market, key: str) -> date:
    return [e for e in m.expiries(key) if not m.is_weekly(key, e)][-1]


def test_expiries(api_client, market):
    api = upstox_client.ExpiredInstrumentApi(api_client)
    resp = api.get_expiries(NIFTY)
    assert resp.status == "success"
    assert resp.data == [d.isoformat() for d in market.expiries(NIFTY)]


def test_option_contracts(api_client, market):
    api = upstox_client.ExpiredInstrumentApi(api_client)
    for key in (NIFTY, VEDL):
        e = monthly(market, key)
        resp = api.get_expired_option_contracts(key, e.isoformat())
        expected = market.option_contracts(key, e)
        assert resp.status == "success" and len(resp.data) == len(expected) > 0
        for got, want in zip(resp.data, expected, strict=True):
            assert isinstance(got, upstox_client.InstrumentData)
            assert got.instrument_key == want["instrument_key"]
            assert got.trading_symbol == want["trading_symbol"]
            assert got.exchange_token == want["exchange_token"]
            assert got.strike_price == want["strike_price"]
            assert got.instrument_type == want["instrument_type"]
            assert got.lot_size == want["lot_size"] and got.minimum_lot == want["minimum_lot"]
            assert got.tick_size == want["tick_size"]
            assert got.freeze_quantity == want["freeze_quantity"]
            assert got.weekly is False
            assert got.underlying_key == key
            assert got.underlying_symbol == want["underlying_symbol"]
            assert got.expiry.date() == e  # the SDK parses expiry as a datetime
    weekly = [x for x in market.expiries(NIFTY) if market.is_weekly(NIFTY, x)][-1]
    resp = api.get_expired_option_contracts(NIFTY, weekly.isoformat())
    assert resp.data and all(item.weekly is True for item in resp.data)


def test_future_contracts(api_client, market):
    api = upstox_client.ExpiredInstrumentApi(api_client)
    e = monthly(market, NIFTY)
    resp = api.get_expired_future_contracts(NIFTY, e.isoformat())
    (want,) = market.future_contracts(NIFTY, e)
    (got,) = resp.data
    assert isinstance(got, upstox_client.ExpiredFutureData)
    assert got.to_dict() == want
    weekly = [x for x in market.expiries(NIFTY) if market.is_weekly(NIFTY, x)][-1]
    assert api.get_expired_future_contracts(NIFTY, weekly.isoformat()).data == []


@pytest.mark.parametrize(
    "interval", ["1minute", "3minute", "5minute", "15minute", "30minute", "day"]
)
def test_historical_candles(api_client, market, interval):
    api = upstox_client.ExpiredInstrumentApi(api_client)
    e = monthly(market, NIFTY)
    key = market.option_contracts(NIFTY, e)[20]["instrument_key"]
    resp = api.get_expired_historical_candle_data(key, interval, e.isoformat(), "2025-05-20")
    assert resp.status == "success"
    assert resp.data.candles == market.candle_rows(key, interval, date(2025, 5, 20), e)
    assert resp.data.candles


def test_profile(api_client):
    resp = upstox_client.UserApi(api_client).get_profile(API_VERSION)
    assert resp.status == "success"
    assert resp.data.user_id == "SDK001"
    assert resp.data.broker == "UPSTOX"
    assert resp.data.is_active is True and resp.data.poa is False
    assert "NFO" in resp.data.exchanges


def test_errors_reach_the_sdk_as_api_exceptions(api_client, sim):
    app = sim[0]
    api = upstox_client.ExpiredInstrumentApi(api_client)
    with pytest.raises(ApiException) as bad:
        api.get_expired_historical_candle_data(
            "NSE_FO|1|24-04-2025", "day", "2025-04-01", "2025-04-24"
        )
    assert bad.value.status == 400 and b"UDAPI1015" in bad.value.body
    app.faults = FaultConfig(http_503=1.0)
    with pytest.raises(ApiException) as down:
        api.get_expiries(NIFTY)
    assert down.value.status == 503


def test_token_exchange_and_logout(sim):
    _, url, _ = sim
    demo = demo_client_credentials()
    r = httpx.get(
        f"{url}/v2/login/authorization/dialog",
        params={"response_type": "code", "client_id": demo.client_id,
                "redirect_uri": demo.redirect_uri, "state": "abc"},
    )  # fmt: skip
    code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
    cfg = upstox_client.Configuration()
    cfg.host = url
    client = upstox_client.ApiClient(cfg)
    try:
        grant = upstox_client.LoginApi(client).token(
            API_VERSION,
            code=code,
            client_id=demo.client_id,
            client_secret=demo.client_secret,
            redirect_uri=demo.redirect_uri,
            grant_type="authorization_code",
        )
        assert isinstance(grant, upstox_client.TokenResponse)
        assert grant.user_id == "DEMO01" and grant.broker == "UPSTOX"
        assert grant.access_token and grant.extended_token
        assert grant.is_active is True
        cfg.access_token = grant.access_token
        authed = upstox_client.ApiClient(cfg)
        try:
            out = upstox_client.LoginApi(authed).logout(API_VERSION)
            assert out.status == "success" and out.data is True
            with pytest.raises(ApiException) as gone:
                upstox_client.UserApi(authed).get_profile(API_VERSION)
            assert gone.value.status == 401 and b"UDAPI100050" in gone.value.body
        finally:
            authed.pool.close()
            authed.pool.join()
    finally:
        client.pool.close()
        client.pool.join()
