"""UpstoxClient against httpx.MockTransport handlers: URLs, decoding, errors, retries, secrets."""

from __future__ import annotations

import json
import logging
import random
from datetime import date

import httpx
import pytest

from expirytrack_desktop.timeutil import parse_ts
from expirytrack_desktop.upstox.client import UpstoxClient
from expirytrack_desktop.upstox.errors import (
    AuthError,
    BadInputError,
    InvalidDateRangeError,
    LoginError,
    PlanRequiredError,
    RateLimitedError,
    ServerError,
)
from expirytrack_desktop.upstox.factory import make_client
from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec

TOKEN = "eyJ0eXAiOiJKV1QiLCJrZXlfaWQiOiJza192MS4wIn0.SECRET-ACCESS-TOKEN-123"
BASE = "http://upstox.test"


class Recorder:
    """A MockTransport handler that answers from a script and keeps every request."""

    def __init__(self, *answers) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        if callable(answer):
            return answer(request)
        return answer


def ok(data) -> httpx.Response:
    return httpx.Response(200, json={"status": "success", "data": data})


def err(status: int, code: str, message: str = "nope", *, camel: bool = False) -> httpx.Response:
    field = {"errorCode": code} if camel else {"error_code": code}
    item = {"message": message, "property_path": None, "invalid_value": None, **field}
    return httpx.Response(status, json={"status": "error", "errors": [item]})


class NoSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def make(handler, *, token: str | None = TOKEN, attempts: int = 3):
    sleep = NoSleep()
    limiter = RateLimiter(RateLimitSpec.parse("1000/1"), sleep=sleep)
    client = UpstoxClient(
        BASE,
        access_token=token,
        limiter=limiter,
        transport=httpx.MockTransport(handler),
        max_attempts=attempts,
        sleep=sleep,
        rng=random.Random(7),
    )
    return client, sleep, limiter


# ---- URLs and decoding -----------------------------------------------------------------------


async def test_expiries_encodes_pipe_and_space_in_query():
    rec = Recorder(ok(["2024-10-10", "2024-10-03"]))
    client, _, _ = make(rec)
    async with client:
        got = await client.get_expiries("NSE_INDEX|Nifty 50")
    assert got == [date(2024, 10, 3), date(2024, 10, 10)]
    raw = rec.requests[0].url.raw_path.decode()
    assert raw == "/v2/expired-instruments/expiries?instrument_key=NSE_INDEX%7CNifty%2050"
    assert rec.requests[0].headers["authorization"] == f"Bearer {TOKEN}"
    assert rec.requests[0].headers["accept"] == "application/json"
    assert rec.requests[0].method == "GET"


OPTION = {
    "name": "VEDL",
    "segment": "NSE_FO",
    "exchange": "NSE",
    "expiry": "2025-04-24",
    "instrument_key": "NSE_FO|54452|24-04-2025",
    "exchange_token": "54452",
    "trading_symbol": "VEDL 292.5 CE 24 APR 25",
    "tick_size": 0.05,
    "lot_size": 1150,
    "instrument_type": "CE",
    "freeze_quantity": 30000,
    "underlying_key": "NSE_EQ|INE205A01025",
    "underlying_type": "EQUITY",
    "underlying_symbol": "VEDL",
    "strike_price": 292.5,
    "minimum_lot": 1150,
    "weekly": False,
}


async def test_option_contracts_keep_fractional_strike_and_raw():
    rec = Recorder(ok([OPTION]))
    client, _, _ = make(rec)
    async with client:
        (c,) = await client.get_option_contracts("NSE_EQ|INE205A01025", date(2025, 4, 24))
    raw = rec.requests[0].url.raw_path.decode()
    assert raw == (
        "/v2/expired-instruments/option/contract"
        "?instrument_key=NSE_EQ%7CINE205A01025&expiry_date=2025-04-24"
    )
    assert c.strike_price == 292.5
    assert c.instrument_key == "NSE_FO|54452|24-04-2025"
    assert c.expiry == date(2025, 4, 24)
    assert (c.instrument_type, c.lot_size, c.weekly, c.tick_size) == ("CE", 1150, False, 0.05)
    assert (c.underlying_symbol, c.minimum_lot, c.freeze_quantity) == ("VEDL", 1150, 30000.0)
    assert c.raw == OPTION


async def test_future_contracts_have_no_strike_or_weekly():
    item = {k: v for k, v in OPTION.items() if k not in ("strike_price", "weekly")}
    item |= {"instrument_type": "FUT", "trading_symbol": "VEDL FUT 24 APR 25"}
    rec = Recorder(ok([item]))
    client, _, _ = make(rec)
    async with client:
        (c,) = await client.get_future_contracts("NSE_EQ|INE205A01025", date(2025, 4, 24))
    assert "/v2/expired-instruments/future/contract?" in rec.requests[0].url.raw_path.decode()
    assert (c.instrument_type, c.strike_price, c.weekly) == ("FUT", None, None)


async def test_candles_url_puts_to_date_first_and_encodes_key():
    rows = [
        ["2025-04-17T09:17:00+05:30", 10, 12, 9, 11, 100, 5],
        ["2025-04-17T09:15:00+05:30", 1, 2, 0.5, 1.5, 10, 3],
        ["2025-04-17T09:16:00+05:30", 5, 6, 4, 5.5, 20.0, 4],
        ["2025-04-17T09:15:00+05:30", 1, 2, 0.5, 1.5, 10, 3],  # duplicate
    ]
    rec = Recorder(ok({"candles": rows}))
    client, _, _ = make(rec)
    async with client:
        got = await client.get_candles(
            "NSE_FO|47983|17-04-2025", "1minute", date(2025, 3, 1), date(2025, 4, 17)
        )
    raw = rec.requests[0].url.raw_path.decode()
    assert raw == (
        "/v2/expired-instruments/historical-candle/NSE_FO%7C47983%7C17-04-2025"
        "/1minute/2025-04-17/2025-03-01"
    )
    assert [c[0] for c in got] == [
        parse_ts("2025-04-17T09:15:00+05:30"),
        parse_ts("2025-04-17T09:16:00+05:30"),
        parse_ts("2025-04-17T09:17:00+05:30"),
    ]
    assert got[0] == (parse_ts("2025-04-17T09:15:00+05:30"), 1.0, 2.0, 0.5, 1.5, 10, 3)
    assert got[1][5] == 20 and isinstance(got[1][5], int)


async def test_candles_empty_and_argument_checks():
    rec = Recorder(ok({"candles": []}))
    client, _, _ = make(rec)
    async with client:
        assert (
            await client.get_candles("K|1|01-01-2025", "day", date(2025, 1, 1), date(2025, 1, 1))
            == []
        )
        with pytest.raises(ValueError):
            await client.get_candles("K", "2minute", date(2025, 1, 1), date(2025, 1, 2))
        with pytest.raises(ValueError):
            await client.get_candles("K", "day", date(2025, 1, 2), date(2025, 1, 1))
    assert len(rec.requests) == 1


async def test_profile_logout_and_token_exchange():
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v2/user/profile":
            return ok(
                {
                    "email": "a@b.c",
                    "user_id": "AB1234",
                    "user_name": "Asha",
                    "broker": "UPSTOX",
                    "exchanges": ["NSE", "BSE"],
                }
            )
        if request.url.path == "/v2/logout":
            assert request.method == "DELETE"
            return ok(True)
        assert request.url.path == "/v2/login/authorization/token"
        assert request.method == "POST"
        assert "authorization" not in request.headers
        assert request.headers["content-type"] == "application/x-www-form-urlencoded"
        form = dict(httpx.QueryParams(request.content.decode()))
        assert form == {
            "code": "c0de",
            "client_id": "cid",
            "client_secret": "s3cret",
            "redirect_uri": "http://127.0.0.1:8765/callback",
            "grant_type": "authorization_code",
        }
        return httpx.Response(
            200,
            json={
                "email": "a@b.c",
                "user_id": "AB1234",
                "user_name": "Asha",
                "access_token": "NEWTOKEN",
                "extended_token": None,
                "broker": "UPSTOX",
            },
        )

    client, _, _ = make(handler, token=None)
    async with client:
        with pytest.raises(AuthError, match="log in"):
            await client.get_profile()
        grant = await client.exchange_code(
            "c0de", "cid", "s3cret", "http://127.0.0.1:8765/callback"
        )
        assert grant.access_token == "NEWTOKEN" and grant.user_id == "AB1234"
        assert "NEWTOKEN" not in repr(grant)
        client.set_access_token(grant.access_token)
        profile = await client.get_profile()
        assert profile.user_id == "AB1234" and profile.exchanges == ("NSE", "BSE")
        assert await client.logout() is None
    assert client.requests_sent == 3


# ---- error mapping ---------------------------------------------------------------------------


@pytest.mark.parametrize("camel", [False, True])
@pytest.mark.parametrize(
    ("response", "cls", "code"),
    [
        ((401, "UDAPI100050"), AuthError, "UDAPI100050"),
        ((403, "UDAPI1149"), PlanRequiredError, "UDAPI1149"),
        ((401, "UDAPI1149"), PlanRequiredError, "UDAPI1149"),
        ((400, "UDAPI1148"), InvalidDateRangeError, "UDAPI1148"),
        ((400, "UDAPI100011"), BadInputError, "UDAPI100011"),
        ((400, "UDAPI1020"), BadInputError, "UDAPI1020"),
    ],
)
async def test_error_classes_from_either_field_spelling(response, cls, code, camel):
    rec = Recorder(err(*response, message="Server says why", camel=camel))
    client, _, _ = make(rec)
    async with client:
        with pytest.raises(cls) as info:
            await client.get_candles(
                "NSE_FO|1|01-01-2025", "1minute", date(2025, 1, 1), date(2025, 1, 2)
            )
    assert info.value.code == code
    assert info.value.status == response[0]
    assert len(rec.requests) == 1  # not retried
    if cls is PlanRequiredError:
        assert "Upstox Plus" in str(info.value)
    else:
        assert "Server says why" in str(info.value)


@pytest.mark.parametrize("code", ["UDAPI100016", "UDAPI100068"])
@pytest.mark.parametrize("camel", [False, True])
async def test_login_errors(code, camel):
    rec = Recorder(
        err(401 if code == "UDAPI100016" else 400, code, "Invalid Credentials", camel=camel)
    )
    client, _, _ = make(rec, token=None)
    async with client:
        with pytest.raises(LoginError) as info:
            await client.exchange_code("c", "id", "secret", "http://127.0.0.1:1/cb")
    assert info.value.code == code
    assert len(rec.requests) == 1


async def test_401_without_body_is_auth_error():
    client, _, _ = make(Recorder(httpx.Response(401, text="Unauthorized")))
    async with client:
        with pytest.raises(AuthError):
            await client.get_profile()


async def test_429_is_retried_then_rate_limited_error():
    rec = Recorder(err(429, "UDAPI10005", "Too Many Request Sent"))
    client, _sleep, limiter = make(rec, attempts=4)
    async with client:
        with pytest.raises(RateLimitedError) as info:
            await client.get_profile()
    assert info.value.status == 429
    assert len(rec.requests) == 4
    assert limiter.acquired == 4  # every retry went through the limiter
    assert not limiter.ledger._inflight  # every attempt's permit was released
    assert client.retries == 3 and client.requests_sent == 4


async def test_429_then_success():
    rec = Recorder(err(429, "UDAPI10005"), ok({"user_id": "X"}))
    client, _, _ = make(rec)
    async with client:
        assert (await client.get_profile()).user_id == "X"
    assert client.retries == 1


# ---- transient faults ------------------------------------------------------------------------

FAULTS = {
    "500": lambda: err(500, "UDAPI100500", "Something went wrong"),
    "503": lambda: httpx.Response(503, text="Service Unavailable"),
    "timeout": lambda: httpx.ReadTimeout("timed out"),
    "connect-timeout": lambda: httpx.ConnectTimeout("connect timed out"),
    "reset": lambda: httpx.ReadError("[Errno 104] Connection reset by peer"),
    "refused": lambda: httpx.ConnectError("[Errno 111] Connection refused"),
    "protocol": lambda: httpx.RemoteProtocolError("peer closed connection without response"),
    "truncated": lambda: httpx.Response(
        200,
        content=b'{"status":"success","data":{"candles":[["2025-',
        headers={"content-type": "application/json"},
    ),
    "html": lambda: httpx.Response(
        200, text="<html><body>Gateway</body></html>", headers={"content-type": "text/html"}
    ),
    "html-502": lambda: httpx.Response(502, text="<html>Bad Gateway</html>"),
    "no-data": lambda: httpx.Response(200, json={"status": "success"}),
}


@pytest.mark.parametrize("kind", sorted(FAULTS))
async def test_fault_retried_then_clean_server_error(kind):
    make_fault = FAULTS[kind]
    rec = Recorder(lambda request: _raise_or_return(make_fault()))
    client, sleep, limiter = make(rec, attempts=3)
    async with client:
        with pytest.raises(ServerError) as info:
            await client.get_candles(
                "NSE_FO|1|01-01-2025", "1minute", date(2025, 1, 1), date(2025, 1, 1)
            )
    message = str(info.value)
    assert "failed after 3 attempts" in message
    assert "/v2/expired-instruments/historical-candle/" in message
    assert "\n" not in message
    assert len(rec.requests) == 3 and limiter.acquired == 3
    assert client.retries == 2
    assert len(sleep.delays) == 2


@pytest.mark.parametrize("kind", sorted(FAULTS))
async def test_fault_then_recovery(kind):
    make_fault = FAULTS[kind]
    good = ok({"candles": [["2025-01-01T09:15:00+05:30", 1, 1, 1, 1, 1, 0]]})
    rec = Recorder(lambda request: _raise_or_return(make_fault()), good)
    client, _, _ = make(rec)
    async with client:
        got = await client.get_candles(
            "NSE_FO|1|01-01-2025", "1minute", date(2025, 1, 1), date(2025, 1, 1)
        )
    assert len(got) == 1 and client.retries == 1


def _raise_or_return(value):
    if isinstance(value, Exception):
        raise value
    return value


async def test_backoff_is_exponential_with_full_jitter_and_capped():
    sleep = NoSleep()
    limiter = RateLimiter(RateLimitSpec.parse("1000/1"), sleep=sleep)
    client = UpstoxClient(
        BASE,
        access_token=TOKEN,
        limiter=limiter,
        transport=httpx.MockTransport(Recorder(httpx.Response(503))),
        max_attempts=8,
        backoff_base=0.5,
        backoff_max=4.0,
        sleep=sleep,
        rng=random.Random(1),
    )
    async with client:
        with pytest.raises(ServerError):
            await client.get_profile()
    ceilings = [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0]
    assert len(sleep.delays) == 7
    assert all(0 <= d <= c for d, c in zip(sleep.delays, ceilings, strict=True))
    assert len(set(sleep.delays)) == 7  # jittered, not constant


async def test_malformed_items_are_a_server_error_not_a_crash():
    client, _, _ = make(Recorder(ok({"candles": [["not a time", 1, 2]]})))
    async with client:
        with pytest.raises(ServerError, match="unexpected response shape"):
            await client.get_candles("K|1|01-01-2025", "day", date(2025, 1, 1), date(2025, 1, 1))


# ---- secrets ---------------------------------------------------------------------------------


async def test_token_secret_and_code_never_logged_repr_or_in_messages(caplog):
    echo = f"token {TOKEN} code c0de-123 secret s3cret-xyz rejected"

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.startswith("/v2/login"):
            return err(400, "UDAPI100016", echo)
        if request.url.path == "/v2/user/profile":
            return err(401, "UDAPI100050", echo)
        raise httpx.ReadError(echo)

    caplog.set_level(logging.DEBUG)
    client, _, _ = make(handler)
    messages = []
    async with client:
        for call in (
            client.exchange_code("c0de-123", "cid", "s3cret-xyz", "http://127.0.0.1:1/cb"),
            client.get_profile(),
            client.get_expiries("NSE_INDEX|Nifty 50"),
        ):
            with pytest.raises(Exception) as info:
                await call
            messages += [str(info.value), repr(info.value), info.value.message]
    text = "\n".join([*messages, caplog.text, repr(client)])
    assert caplog.records, "expected DEBUG request lines"
    assert any("/v2/user/profile" in r.getMessage() for r in caplog.records)
    for secret in (TOKEN, "c0de-123", "s3cret-xyz", "Bearer"):
        assert secret not in text
    assert "***" in text


async def test_make_client_uses_given_limiter_and_base():
    limiter = RateLimiter(RateLimitSpec.parse("10/1"))
    rec = Recorder(ok({"user_id": "U"}))
    client = make_client(
        "http://127.0.0.1:9/", TOKEN, limiter=limiter, transport=httpx.MockTransport(rec)
    )
    async with client:
        await client.get_profile()
    assert str(rec.requests[0].url) == "http://127.0.0.1:9/v2/user/profile"
    assert limiter.acquired == 1
    assert TOKEN not in repr(client)


def test_error_body_parsing_variants():
    # camelCase only, and both present (snake_case preferred)
    body = {"errors": [{"errorCode": "A", "message": "m"}]}
    from expirytrack_desktop.upstox.client import _error_fields

    assert _error_fields(body) == ("A", "m")
    assert _error_fields({"errors": [{"error_code": "B", "errorCode": "A"}]}) == ("B", "")
    assert _error_fields(json.loads("[]")) == (None, "")


# ---- against the built-in simulator (in-process transport) ----------------------------------


async def test_simulator_endpoints_and_errors():
    sandbox = pytest.importorskip("expirytrack_desktop.sandbox")
    market = sandbox.Market(seed=3)
    app = sandbox.SimulatorApp(market, rate_limit=None)
    limiter = RateLimiter(RateLimitSpec.parse("1000/1"))
    client = UpstoxClient(
        "http://sim",
        access_token=sandbox.DEMO_ACCESS_TOKEN,
        limiter=limiter,
        transport=app.transport(),
    )
    ukey = market.underlying_keys()[0]
    async with client:
        expiries = await client.get_expiries(ukey)
        assert expiries == market.expiries(ukey)
        options = await client.get_option_contracts(ukey, expiries[-1])
        assert options and all(c.strike_price is not None for c in options)
        assert {c.instrument_type for c in options} == {"CE", "PE"}
        profile = await client.get_profile()
        assert profile.user_id == sandbox.DEMO_USER_ID
        with pytest.raises(BadInputError) as info:
            await client.get_candles(
                "NSE_FO|1|01-01-2020", "day", date(2020, 1, 1), date(2020, 1, 2)
            )
        assert info.value.code == "UDAPI100011"
        plain = app.issue_token(plus=False)
        client.set_access_token(plain)
        with pytest.raises(PlanRequiredError):
            await client.get_expiries(ukey)
        app.expire_all_tokens()
        with pytest.raises(AuthError):
            await client.get_profile()
        demo = sandbox.demo_client_credentials()
        with pytest.raises(LoginError):
            await client.exchange_code(
                "bad-code", demo.client_id, demo.client_secret, demo.redirect_uri
            )


# ---- get_candle_rows: decoded answers for the store's fast path -------------------------------

RAW_FAULTS = {
    **FAULTS,
    "cut-before-last-brace": lambda: httpx.Response(
        200, content=b'{"status":"success","data":{"candles":[]}'
    ),
    "trailing-garbage": lambda: httpx.Response(
        200, content=b'{"status":"success","data":{"candles":[]}} x'
    ),
    "no-candles": lambda: httpx.Response(200, json={"status": "success", "data": {}}),
    "candles-not-a-list": lambda: httpx.Response(
        200, json={"status": "success", "data": {"candles": {}}}
    ),
    "status-error": lambda: httpx.Response(200, json={"status": "error", "data": {"candles": []}}),
    "not-utf8": lambda: httpx.Response(200, content=b'{"status":"success\xff"}'),
}


@pytest.mark.parametrize("kind", sorted(RAW_FAULTS))
async def test_candle_rows_retries_incomplete_bodies_then_recovers(kind):
    make_fault = RAW_FAULTS[kind]
    body = json.dumps(
        {
            "data": {"candles": [["2025-01-01T09:15:00+05:30", 1, 1, 1, 1, 1, 0]]},
            "status": "success",
        },
        indent=1,
    ).encode()
    rec = Recorder(
        lambda request: _raise_or_return(make_fault()), httpx.Response(200, content=body)
    )
    client, _, limiter = make(rec)
    async with client:
        got = await client.get_candle_rows(
            "NSE_FO|1|01-01-2025", "1minute", date(2025, 1, 1), date(2025, 1, 2)
        )
    # any key order and whitespace; the time kept as sent (the store converts it)
    assert got.iso and got.rows == [("2025-01-01T09:15:00+05:30", 1.0, 1.0, 1.0, 1.0, 1, 0)]
    assert client.retries == 1 and limiter.acquired == 2
    assert rec.requests[1].url.raw_path.decode() == (
        "/v2/expired-instruments/historical-candle/NSE_FO%7C1%7C01-01-2025/1minute"
        "/2025-01-02/2025-01-01"
    )


@pytest.mark.parametrize("kind", ["truncated", "no-candles", "status-error"])
async def test_candle_rows_gives_up_like_get_candles(kind):
    rec = Recorder(lambda request: RAW_FAULTS[kind]())
    client, _, _ = make(rec, attempts=3)
    async with client:
        with pytest.raises(ServerError, match="failed after 3 attempts"):
            await client.get_candle_rows(
                "K|1|01-01-2025", "1minute", date(2025, 1, 1), date(2025, 1, 1)
            )
    assert len(rec.requests) == 3


@pytest.mark.parametrize(
    "response, cls",
    [
        (err(400, "UDAPI1148", "Invalid date range"), InvalidDateRangeError),
        (err(401, "UDAPI100050", "Invalid token used to access API"), AuthError),
        (err(400, "UDAPI100011", "Invalid Instrument key"), BadInputError),
        (err(403, "UDAPI1149", "plan"), PlanRequiredError),
    ],
)
async def test_candle_rows_maps_errors_like_get_candles(response, cls):
    rec = Recorder(response)
    client, _, _ = make(rec)
    async with client:
        with pytest.raises(cls):
            await client.get_candle_rows(
                "K|1|01-01-2025", "1minute", date(2025, 1, 1), date(2025, 3, 1)
            )
        with pytest.raises(ValueError):
            await client.get_candle_rows("K", "2minute", date(2025, 1, 1), date(2025, 1, 2))
    assert len(rec.requests) == 1


async def test_candle_rows_read_loose_answers_and_refuse_unreadable_ones_at_once():
    """A missing open interest is read as 0 (the checked path); a candle that cannot be read
    is not transient: ServerError at the first answer, naming the candle."""
    loose = {
        "status": "success",
        "data": {"candles": [["2025-01-01T09:15:00+05:30", 1, 2, 0.5, 1, 7]]},
    }
    rec = Recorder(httpx.Response(200, json=loose))
    client, _, _ = make(rec)
    async with client:
        got = await client.get_candle_rows("K|1", "1minute", date(2025, 1, 1), date(2025, 1, 1))
    assert not got.iso and got.rows == [(1735703100, 1.0, 2.0, 0.5, 1.0, 7, 0)]
    bad = {"status": "success", "data": {"candles": [["2025-01-01T09:15:00", 1, 1, 1, 1, 1, 0]]}}
    rec = Recorder(httpx.Response(200, json=bad))
    client, _, _ = make(rec)
    async with client:
        with pytest.raises(ServerError, match=r"candle 0 .*without a UTC offset"):
            await client.get_candle_rows("K|1", "1minute", date(2025, 1, 1), date(2025, 1, 1))
    assert len(rec.requests) == 1
