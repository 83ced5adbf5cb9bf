"""The simulated API in-process: shapes, every error code, limits, faults, tokens, OAuth."""

from __future__ import annotations

import json
import time
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
)

TODAY = date(2025, 6, 1)
NIFTY = "NSE_INDEX|Nifty 50"
BASE = "https://api.upstox.com"
CANDLES = "/v2/expired-instruments/historical-candle"


@pytest.fixture(scope="module")
def market() -> Market:
    return Market(seed=7, today=TODAY, strikes_per_side=3)


@pytest.fixture
def app(market) -> SimulatorApp:
    return SimulatorApp(market, rate_limit=None)


def client(app: SimulatorApp, token: str | None = DEMO_ACCESS_TOKEN) -> httpx.AsyncClient:
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return httpx.AsyncClient(transport=app.transport(), base_url=BASE, headers=headers)


def monthly(m: Market) -> date:
    return [e for e in m.expiries(NIFTY) if not m.is_weekly(NIFTY, e)][-1]


def fut_key(m: Market) -> str:
    return m.future_contracts(NIFTY, monthly(m))[0]["instrument_key"]


def error_of(r: httpx.Response) -> dict:
    body = r.json()
    assert body["status"] == "error"
    (err,) = body["errors"]
    assert err["errorCode"] == err["error_code"]
    assert err["propertyPath"] == err["property_path"]
    assert err["invalidValue"] == err["invalid_value"]
    assert err["message"]
    return err


# ---------------------------------------------------------------- shapes
async def test_expiries_shape_and_key_encodings(app, market):
    expected = [d.isoformat() for d in market.expiries(NIFTY)]
    async with client(app) as c:
        r1 = await c.get("/v2/expired-instruments/expiries", params={"instrument_key": NIFTY})
        r2 = await c.get("/v2/expired-instruments/expiries?instrument_key=NSE_INDEX%7CNifty%2050")
        r3 = await c.get("/v2/expired-instruments/expiries?instrument_key=NSE_INDEX%7CNifty+50")
    for r in (r1, r2, r3):
        assert r.status_code == 200
        assert r.headers["content-type"] == "application/json"
        assert r.json() == {"status": "success", "data": expected}
    assert r1.content == r2.content == r3.content


async def test_contracts_shape(app, market):
    e = monthly(market)
    weekly = [x for x in market.expiries(NIFTY) if market.is_weekly(NIFTY, x)][-1]
    async with client(app) as c:
        opt = await c.get(
            "/v2/expired-instruments/option/contract",
            params={"instrument_key": NIFTY, "expiry_date": e.isoformat()},
        )
        fut = await c.get(
            "/v2/expired-instruments/future/contract",
            params={"instrument_key": NIFTY, "expiry_date": e.isoformat()},
        )
        fut_weekly = await c.get(
            "/v2/expired-instruments/future/contract",
            params={"instrument_key": NIFTY, "expiry_date": weekly.isoformat()},
        )
        not_expiry = await c.get(
            "/v2/expired-instruments/option/contract",
            params={"instrument_key": NIFTY, "expiry_date": "2025-05-30"},
        )
    assert opt.json() == {"status": "success", "data": market.option_contracts(NIFTY, e)}
    assert len(opt.json()["data"]) == 14
    assert fut.json() == {"status": "success", "data": market.future_contracts(NIFTY, e)}
    assert fut.json()["data"][0]["instrument_type"] == "FUT"
    assert fut_weekly.json() == {"status": "success", "data": []}
    assert not_expiry.json() == {"status": "success", "data": []}


async def test_candles_to_before_from_inclusive_newest_first(app, market):
    key = fut_key(market)
    async with client(app) as c:
        r = await c.get(f"{CANDLES}/{key}/1minute/2025-05-22/2025-05-20")
        enc = await c.get(f"{CANDLES}/{key.replace('|', '%7C')}/1minute/2025-05-22/2025-05-20")
        one_day = await c.get(f"{CANDLES}/{key}/day/2025-05-22/2025-05-22")
    body = r.json()
    assert set(body) == {"status", "data"} and set(body["data"]) == {"candles"}
    rows = body["data"]["candles"]
    assert rows == market.candle_rows(key, "1minute", date(2025, 5, 20), date(2025, 5, 22))
    assert rows[0][0] == "2025-05-22T15:29:00+05:30"  # newest first, to_date inclusive
    assert rows[-1][0] == "2025-05-20T09:15:00+05:30"  # from_date inclusive
    assert enc.content == r.content
    assert [x[0] for x in one_day.json()["data"]["candles"]] == ["2025-05-22T00:00:00+05:30"]


@pytest.mark.parametrize(
    "interval", ["1minute", "3minute", "5minute", "15minute", "30minute", "day"]
)
async def test_every_interval_matches_ground_truth(app, market, interval):
    item = market.option_contracts(NIFTY, monthly(market))[5]
    key = item["instrument_key"]
    async with client(app) as c:
        r = await c.get(f"{CANDLES}/{key}/{interval}/2025-06-30/2025-01-01")
    rows = r.json()["data"]["candles"]
    assert rows and rows == list(reversed(market.candles(key, interval)))


async def test_no_trades_is_an_empty_list(app, market):
    e = monthly(market)
    dead = [
        it["instrument_key"]
        for it in market.option_contracts(NIFTY, e)
        if not market.candles(it["instrument_key"])
    ]
    assert dead
    async with client(app) as c:
        r = await c.get(f"{CANDLES}/{dead[0]}/1minute/2025-05-29/2025-05-01")
        weekend = await c.get(f"{CANDLES}/{fut_key(market)}/1minute/2025-05-25/2025-05-24")
    assert r.json() == {"status": "success", "data": {"candles": []}}
    assert weekend.json() == {"status": "success", "data": {"candles": []}}


async def test_profile_and_logout(app):
    token = app.issue_token("AB1234")
    async with client(app, token) as c:
        prof = await c.get("/v2/user/profile")
        out = await c.delete("/v2/logout")
        after = await c.get("/v2/user/profile")
    data = prof.json()["data"]
    assert prof.json()["status"] == "success"
    assert data["user_id"] == "AB1234" and data["broker"] == "UPSTOX"
    assert {"email", "user_name", "exchanges", "products", "order_types"} <= set(data)
    assert out.json() == {"status": "success", "data": True}
    assert after.status_code == 401 and error_of(after)["error_code"] == "UDAPI100050"


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("path", "params", "code"),
    [
        ("/v2/expired-instruments/expiries", {}, "UDAPI1009"),
        ("/v2/expired-instruments/expiries", {"instrument_key": "Nifty 50"}, "UDAPI1011"),
        ("/v2/expired-instruments/expiries", {"instrument_key": "NSE_INDEX|Nope"}, "UDAPI100011"),
        ("/v2/expired-instruments/option/contract", {"expiry_date": "2025-05-29"}, "UDAPI1009"),
        (
            "/v2/expired-instruments/option/contract",
            {"instrument_key": "XYZ|Nifty 50", "expiry_date": "2025-05-29"},
            "UDAPI1011",
        ),
        (
            "/v2/expired-instruments/future/contract",
            {"instrument_key": "NSE_EQ|INE000000000", "expiry_date": "2025-05-29"},
            "UDAPI100011",
        ),
        (
            "/v2/expired-instruments/future/contract",
            {"instrument_key": NIFTY, "expiry_date": "29-05-2025"},
            "UDAPI1015",
        ),
    ],
)
async def test_reference_errors(app, path, params, code):
    async with client(app) as c:
        r = await c.get(path, params=params)
    assert r.status_code == 400
    assert error_of(r)["error_code"] == code


@pytest.mark.parametrize(
    ("tail", "code"),
    [
        ("NSE_FO|1|24-04-2025/1minute/2025-04-24/2025-04-01", "UDAPI100011"),
        ("NSE_FO|1|2025-04-24/1minute/2025-04-24/2025-04-01", "UDAPI1021"),
        ("54452/1minute/2025-04-24/2025-04-01", "UDAPI1021"),
        ("{key}/2minute/2025-04-24/2025-04-01", "UDAPI1020"),
        ("{key}/minute/2025-04-24/2025-04-01", "UDAPI1020"),
        ("{key}/1minute", "UDAPI1022"),
        ("{key}/1minute/2025-04-01/2025-04-24", "UDAPI1015"),
        ("{key}/1minute/2025-02-30/2025-02-01", "UDAPI1015"),
        ("{key}/1minute/24-04-2025/2025-04-01", "UDAPI1015"),
    ],
)
async def test_candle_errors(app, market, tail, code):
    async with client(app) as c:
        r = await c.get(f"{CANDLES}/{tail.format(key=fut_key(market))}")
    assert r.status_code == 400
    assert error_of(r)["error_code"] == code


async def test_span_cap_inclusive_days_and_runtime_change(app, market):
    key = fut_key(market)
    app.span_cap_days = {"1minute": 30}
    async with client(app) as c:
        ok = await c.get(f"{CANDLES}/{key}/1minute/2025-04-30/2025-04-01")  # 30 days
        too_wide = await c.get(f"{CANDLES}/{key}/1minute/2025-05-01/2025-04-01")  # 31 days
        other = await c.get(f"{CANDLES}/{key}/day/2025-05-29/2025-01-01")
        app.span_cap_days = {}
        now_ok = await c.get(f"{CANDLES}/{key}/1minute/2025-05-01/2025-04-01")
    assert ok.status_code == 200 and ok.json()["data"]["candles"]
    assert too_wide.status_code == 400 and error_of(too_wide)["error_code"] == "UDAPI1148"
    assert other.status_code == 200
    assert now_ok.status_code == 200


async def test_auth_required_and_plan_missing(app):
    async with client(app, None) as c:
        none = await c.get("/v2/expired-instruments/expiries", params={"instrument_key": NIFTY})
        basic = await c.get("/v2/user/profile", headers={"Authorization": "Basic abc"})
    async with client(app, "not-a-token") as c:
        bad = await c.get(f"{CANDLES}/NSE_FO|1|24-04-2025/day/2025-04-24/2025-04-01")
    for r in (none, basic, bad):
        assert r.status_code == 401 and error_of(r)["error_code"] == "UDAPI100050"
    basic_user = app.issue_token("NOPLUS", plus=False)
    async with client(app, basic_user) as c:
        r = await c.get("/v2/expired-instruments/expiries", params={"instrument_key": NIFTY})
        prof = await c.get("/v2/user/profile")
        app.set_plus(basic_user, True)
        again = await c.get("/v2/expired-instruments/expiries", params={"instrument_key": NIFTY})
    assert r.status_code == 403 and error_of(r)["error_code"] == "UDAPI1149"
    assert prof.status_code == 200  # the profile is not a Plus API
    assert again.status_code == 200


async def test_token_expiry_on_demand(app):
    token = app.issue_token()
    async with client(app, token) as c:
        app.expire_tokens_after(2)
        codes = [(await c.get("/v2/user/profile")).status_code for _ in range(4)]
    assert codes == [200, 200, 401, 401]
    fresh = app.issue_token()
    async with client(app, fresh) as c:
        assert (await c.get("/v2/user/profile")).status_code == 200
        app.expire_all_tokens()
        r = await c.get("/v2/user/profile")
    assert r.status_code == 401 and error_of(r)["error_code"] == "UDAPI100050"
    async with client(app) as c:
        assert (await c.get("/v2/user/profile")).status_code == 401  # demo token expired too


async def test_unknown_path_and_method(app):
    async with client(app) as c:
        nf = await c.get("/v2/nope")
        na = await c.post("/v2/user/profile")
    assert nf.status_code == 404 and error_of(nf)
    assert na.status_code == 405 and error_of(na)


# ---------------------------------------------------------------- rate limits
async def test_rate_limit_sliding_windows_per_user(market):
    now = [1000.0]
    app = SimulatorApp(market, rate_limit="3/1,5/60", clock=lambda: now[0])
    other = app.issue_token("OTHER1")
    async with client(app) as c, client(app, other) as c2:
        first = [(await c.get("/v2/user/profile")).status_code for _ in range(4)]
        other_user = (await c2.get("/v2/user/profile")).status_code
        now[0] += 1.0  # the 1-second window slides past the first three
        second = [(await c.get("/v2/user/profile")).status_code for _ in range(3)]
        now[0] += 58.5
        still = (await c.get("/v2/user/profile")).status_code
        now[0] += 0.6  # 60 s after the first burst
        later = [(await c.get("/v2/user/profile")).status_code for _ in range(3)]
        r429 = await c.get("/v2/user/profile")  # 3 in the last second, 5 in the last minute
    assert first == [200, 200, 200, 429]
    assert other_user == 200
    assert second == [200, 200, 429]  # the minute window holds 5
    assert still == 429
    assert later == [200, 200, 200]
    assert r429.status_code == 429 and "retry-after" not in r429.headers
    assert error_of(r429)["error_code"] == "UDAPI10005"
    assert app.stats.rate_limited == 4
    assert app.stats.by_status[200] == 9
    app.rate_limit = None
    async with client(app) as c:
        assert all([(await c.get("/v2/user/profile")).status_code == 200 for _ in range(10)])


def test_default_rate_limit(market):
    app = SimulatorApp(market)
    assert app.rate_limit == "50/1,500/60,2000/1800"


# ---------------------------------------------------------------- faults
async def test_fault_5xx(app):
    app.faults = FaultConfig(http_500=1.0)
    async with client(app) as c:
        r500 = await c.get("/v2/user/profile")
        app.faults = FaultConfig(http_503=1.0)
        r503 = await c.get("/v2/user/profile")
        app.faults = FaultConfig()
        ok = await c.get("/v2/user/profile")
    assert r500.status_code == 500 and error_of(r500)["error_code"] == "UDAPI100500"
    assert r503.status_code == 503 and error_of(r503)["error_code"] == "UDAPI100500"
    assert ok.status_code == 200
    assert app.stats.faults == {"500": 1, "503": 1}


async def test_fault_truncated_json(app, market):
    app.faults = FaultConfig(truncated_json=1.0)
    async with client(app) as c:
        r = await c.get(f"{CANDLES}/{fut_key(market)}/day/2025-05-29/2025-05-01")
    assert r.status_code == 200
    assert int(r.headers["content-length"]) == len(r.content)
    with pytest.raises(json.JSONDecodeError):
        json.loads(r.content)
    assert app.stats.faults["truncate"] == 1


async def test_fault_dropped_connection(app):
    app.faults = FaultConfig(drop_connection=1.0)
    async with client(app) as c:
        with pytest.raises(httpx.RemoteProtocolError):
            await c.get("/v2/user/profile")
    assert app.stats.faults["drop"] == 1


async def test_fault_latency(app):
    app.faults = FaultConfig(latency_ms=(20, 30))
    t0 = time.perf_counter()
    async with client(app) as c:
        r = await c.get("/v2/user/profile")
    assert r.status_code == 200
    assert time.perf_counter() - t0 >= 0.019  # a lower bound only: latency was injected


async def test_latency_beyond_read_timeout_is_a_read_timeout(app):
    app.faults = FaultConfig(latency_ms=(200, 200))
    async with httpx.AsyncClient(
        transport=app.transport(),
        base_url=BASE,
        headers={"Authorization": f"Bearer {DEMO_ACCESS_TOKEN}"},
        timeout=httpx.Timeout(5, read=0.01),
    ) as c:
        with pytest.raises(httpx.ReadTimeout):
            await c.get("/v2/user/profile")


async def test_faults_are_deterministic_from_seed(market):
    async def run() -> list[int]:
        app = SimulatorApp(
            market, rate_limit=None, faults=FaultConfig(http_500=0.3, http_503=0.2, seed=5)
        )
        async with client(app) as c:
            return [(await c.get("/v2/user/profile")).status_code for _ in range(40)]

    a, b = await run(), await run()
    assert a == b
    assert {200, 500, 503} == set(a)


def test_fault_config_validation():
    with pytest.raises(ValueError):
        FaultConfig(http_500=1.5)
    with pytest.raises(ValueError):
        FaultConfig(latency_ms=(10, 5))


async def test_stats_count_requests(app):
    async with client(app) as c:
        await c.get("/v2/user/profile")
        await c.get("/v2/expired-instruments/expiries", params={"instrument_key": NIFTY})
        await c.get("/v2/expired-instruments/expiries")
    assert app.stats.requests == 3
    assert app.stats.by_endpoint == {"profile": 1, "expiries": 2}
    assert app.stats.by_status == {200: 2, 400: 1}


# ---------------------------------------------------------------- OAuth
def dialog_params(client_id: str, redirect_uri: str, state: str = "xyz 1") -> dict:
    return {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": state,
    }


async def test_oauth_dialog_code_token_single_use(app):
    demo = demo_client_credentials()
    async with client(app, None) as c:
        r = await c.get(
            "/v2/login/authorization/dialog",
            params=dialog_params(demo.client_id, demo.redirect_uri),
        )
        assert r.status_code == 302
        loc = urlsplit(r.headers["location"])
        assert f"{loc.scheme}://{loc.netloc}{loc.path}" == demo.redirect_uri
        q = parse_qs(loc.query)
        assert q["state"] == ["xyz 1"]
        form = {
            "code": q["code"][0],
            "client_id": demo.client_id,
            "client_secret": demo.client_secret,
            "redirect_uri": demo.redirect_uri,
            "grant_type": "authorization_code",
        }
        tok = await c.post("/v2/login/authorization/token", data=form)
        reuse = await c.post("/v2/login/authorization/token", data=form)
    assert tok.status_code == 200
    grant = tok.json()
    assert "status" not in grant and "expires_in" not in grant
    assert set(grant) == {
        "email", "exchanges", "products", "broker", "user_id", "user_name", "order_types",
        "user_type", "poa", "is_active", "access_token", "extended_token",
    }  # fmt: skip
    assert reuse.status_code == 400 and error_of(reuse)["error_code"] == "UDAPI100057"
    async with client(app, grant["access_token"]) as c:
        prof = await c.get("/v2/user/profile")
    assert prof.json()["data"]["user_id"] == grant["user_id"]


async def test_oauth_errors(app):
    app.register_client("my-key", "my-secret", "http://127.0.0.1:9999/cb")
    async with client(app, None) as c:
        wrong_client = await c.get(
            "/v2/login/authorization/dialog",
            params=dialog_params("nope", "http://127.0.0.1:9999/cb"),
        )
        wrong_redirect = await c.get(
            "/v2/login/authorization/dialog", params=dialog_params("my-key", "http://evil/cb")
        )
        r = await c.get(
            "/v2/login/authorization/dialog",
            params=dialog_params("my-key", "http://127.0.0.1:9999/cb"),
        )
        code = parse_qs(urlsplit(r.headers["location"]).query)["code"][0]
        form = {
            "code": code,
            "client_id": "my-key",
            "client_secret": "wrong",
            "redirect_uri": "http://127.0.0.1:9999/cb",
            "grant_type": "authorization_code",
        }
        bad_secret = await c.post("/v2/login/authorization/token", data=form)
        bad_redirect = await c.post(
            "/v2/login/authorization/token",
            data={**form, "client_secret": "my-secret", "redirect_uri": "http://x/cb"},
        )
        ok = await c.post(
            "/v2/login/authorization/token", data={**form, "client_secret": "my-secret"}
        )
    for r in (wrong_client, wrong_redirect, bad_redirect):
        assert r.status_code == 400 and error_of(r)["error_code"] == "UDAPI100068"
    assert bad_secret.status_code == 401 and error_of(bad_secret)["error_code"] == "UDAPI100016"
    assert ok.status_code == 200 and ok.json()["access_token"]


async def test_same_seed_and_today_give_byte_identical_responses():
    async def fetch(seed: int) -> list[bytes]:
        m = Market(seed=seed, today=TODAY, strikes_per_side=2)
        app = SimulatorApp(m, rate_limit=None)
        e = [x for x in m.expiries("BSE_INDEX|SENSEX") if not m.is_weekly("BSE_INDEX|SENSEX", x)]
        key = m.option_contracts("BSE_INDEX|SENSEX", e[-1])[2]["instrument_key"]
        async with client(app) as c:
            rs = [
                await c.get(
                    "/v2/expired-instruments/expiries",
                    params={"instrument_key": "BSE_INDEX|SENSEX"},
                ),
                await c.get(
                    "/v2/expired-instruments/option/contract",
                    params={"instrument_key": "BSE_INDEX|SENSEX", "expiry_date": str(e[-1])},
                ),
                await c.get(f"{CANDLES}/{key}/1minute/{e[-1]}/{e[-2]}"),
            ]
        assert all(r.status_code == 200 for r in rs)
        return [r.content for r in rs]

    a, b, other = await fetch(4), await fetch(4), await fetch(5)
    assert a == b
    assert a[2] != other[2]
