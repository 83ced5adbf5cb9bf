"""The simulator on a real loopback port: same answers, faults as a client sees them."""

from __future__ import annotations

import json
from datetime import date
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from expirytrack_desktop.sandbox import (
    DEMO_ACCESS_TOKEN,
    FaultConfig,
    Market,
    SimulatorApp,
    demo_client_credentials,
    serve,
)

NIFTY = "NSE_INDEX|Nifty 50"
AUTH = {"Authorization": f"Bearer {DEMO_ACCESS_TOKEN}", "Accept": "application/json"}


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(seed=7, today=date(2025, 6, 1), strikes_per_side=2)


@pytest.fixture
def app(market) -> SimulatorApp:
    return SimulatorApp(market, rate_limit=None)


async def test_wire_and_in_process_give_identical_bytes(app, market):
    e = [x for x in market.expiries(NIFTY) if not market.is_weekly(NIFTY, x)][-1]
    key = market.future_contracts(NIFTY, e)[0]["instrument_key"]
    enc = key.replace("|", "%7C")
    candles = "/v2/expired-instruments/historical-candle"
    paths = [
        "/v2/expired-instruments/expiries?instrument_key=NSE_INDEX%7CNifty+50",
        f"/v2/expired-instruments/option/contract?instrument_key=NSE_INDEX%7CNifty%2050&expiry_date={e}",
        f"{candles}/{enc}/5minute/2025-05-29/2025-05-27",
        f"{candles}/NSE_FO%7C1%7C01-01-2025/day/2025-01-01/2025-01-01",
        "/v2/user/profile",
    ]  # fmt: skip
    with serve(app) as url:
        assert url.startswith("http://127.0.0.1:")
        async with httpx.AsyncClient(base_url=url, headers=AUTH) as wire:
            on_wire = [await wire.get(p) for p in paths]
    async with httpx.AsyncClient(
        transport=app.transport(), base_url="http://sim", headers=AUTH
    ) as local:
        in_proc = [await local.get(p) for p in paths]
    for a, b in zip(on_wire, in_proc, strict=True):
        assert a.status_code == b.status_code
        assert a.content == b.content
    assert on_wire[3].status_code == 400


async def test_faults_on_the_wire(app):
    with serve(app, log_level="critical") as url:
        async with httpx.AsyncClient(base_url=url, headers=AUTH) as c:
            app.faults = FaultConfig(drop_connection=1.0)
            with pytest.raises((httpx.RemoteProtocolError, httpx.ReadError)):
                await c.get("/v2/user/profile")
            app.faults = FaultConfig(truncated_json=1.0)
            r = await c.get("/v2/user/profile")
            assert r.status_code == 200
            assert int(r.headers["content-length"]) == len(r.content)
            with pytest.raises(json.JSONDecodeError):
                json.loads(r.content)
            app.faults = FaultConfig(http_500=1.0)
            assert (await c.get("/v2/user/profile")).status_code == 500
            app.faults = FaultConfig(http_503=1.0)
            assert (await c.get("/v2/user/profile")).status_code == 503
            app.faults = FaultConfig(latency_ms=(5, 10))
            assert (await c.get("/v2/user/profile")).status_code == 200
            app.faults = FaultConfig()
            assert (await c.get("/v2/user/profile")).status_code == 200
    assert app.stats.faults == {"drop": 1, "truncate": 1, "500": 1, "503": 1}


async def test_rate_limit_on_the_wire(market):
    now = [0.0]
    app = SimulatorApp(market, rate_limit="2/1", clock=lambda: now[0])
    with serve(app) as url:
        async with httpx.AsyncClient(base_url=url, headers=AUTH) as c:
            codes = [(await c.get("/v2/user/profile")).status_code for _ in range(3)]
    assert codes == [200, 200, 429]


def test_oauth_redirect_on_the_wire(app):
    demo = demo_client_credentials()
    with serve(app) as url:
        r = httpx.get(
            f"{url}/v2/login/authorization/dialog",
            params={
                "response_type": "code",
                "client_id": demo.client_id,
                "redirect_uri": demo.redirect_uri,
                "state": "s1",
            },
        )
        assert r.status_code == 302
        q = parse_qs(urlsplit(r.headers["location"]).query)
        t = httpx.post(
            f"{url}/v2/login/authorization/token",
            data={
                "code": q["code"][0],
                "client_id": demo.client_id,
                "client_secret": demo.client_secret,
                "redirect_uri": demo.redirect_uri,
                "grant_type": "authorization_code",
            },
        )
    assert q["state"] == ["s1"]
    assert t.status_code == 200 and t.json()["access_token"]


def test_serve_binds_loopback_only(app):
    with pytest.raises(ValueError), serve(app, host="0.0.0.0"):
        pass


def test_serve_shuts_down(app):
    with serve(app) as url:
        assert httpx.get(f"{url}/v2/user/profile", headers=AUTH).status_code == 200
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/v2/user/profile", headers=AUTH)


def test_demo_server_command_is_registered():
    from expirytrack_desktop.cli.main import build_parser
    from expirytrack_desktop.sandbox.cli import app_from_args

    args = build_parser().parse_args(
        ["demo-server", "--port", "0", "--seed", "3", "--span-cap", "30", "--fault-500", "0.05",
         "--latency-ms", "1,2", "--rate-limit", "10/1"]
    )  # fmt: skip
    app = app_from_args(args)
    assert app.market.seed == 3
    assert app.span_cap_days["1minute"] == 30 and "day" not in app.span_cap_days
    assert app.faults.http_500 == 0.05 and app.faults.latency_ms == (1, 2)
    assert app.rate_limit == "10/1"
    args = build_parser().parse_args(["demo-server", "--no-rate-limit"])
    assert app_from_args(args).rate_limit is None
