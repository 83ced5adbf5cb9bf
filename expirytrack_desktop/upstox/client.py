"""Async Upstox client for the endpoints the product uses.

Every attempt (first try and each retry) passes the shared rate limiter first. Transient
faults (5xx, 429, timeouts, dropped connections, truncated or malformed JSON) are retried
with exponential backoff and full jitter up to ``max_attempts``; then the call raises a
typed error from ``errors.py`` so the caller fails that item and carries on.

Every attempt also has an overall deadline (``deadline``: headers and the whole body, not
just the per-read ``timeout``, which a server sending a few bytes a second never trips) and a
body cap (``max_body_bytes``, checked against Content-Length before reading and while
reading): a stalled or enormous answer fails that request with a clear message instead of
stalling a run or filling memory. A missed deadline is retried once; an answer over the cap
is not retried (the same request would bring the same answer).

Secrets: the access token is sent per request and never stored on the httpx client, and
every message this module produces is scrubbed of the token, client secret and login code.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from datetime import date, datetime
from typing import Any, TypeVar
from urllib.parse import quote, urlencode

import httpx

from ..timeutil import IST
from .candles import CandleBodyError, CandleRows, decode_candles
from .errors import (
    AuthError,
    BadInputError,
    InvalidDateRangeError,
    LoginError,
    PlanRequiredError,
    RateLimitedError,
    ServerError,
    UpstoxError,
)
from .limiter import RateLimiter
from .models import INTERVALS, Candle, Contract, Profile, TokenGrant

log = logging.getLogger(__name__)

_T = TypeVar("_T")
_TRANSIENT = (httpx.TimeoutException, httpx.NetworkError, httpx.ProtocolError)
# A month of 1-minute candles is about 0.6 MB and 90 days about 2 MB; 2 MB arrive in about a
# minute even at 256 kbit/s. So 120 s and 64 MB stop only answers that are broken, never a
# slow but working line. Both are settings (``request_deadline_s``, ``max_response_mb``).
DEFAULT_DEADLINE_S = 120.0
DEFAULT_MAX_BODY_BYTES = 64 * 1024 * 1024
# A missed deadline is retried once (a blip), not max_attempts times (minutes per window).
_MAX_DEADLINE_MISSES = 2
_LOGIN_CODES = {"UDAPI100016", "UDAPI100068"}


class _TooLarge(Exception):
    """Internal: the answer is (or declares itself) larger than the body cap."""

    def __init__(self, status: int, declared: int | None) -> None:
        super().__init__(status, declared)
        self.status = status
        self.declared = declared


class _Retry(Exception):
    """Internal: this attempt failed in a way worth another try."""

    def __init__(
        self,
        reason: str,
        *,
        status: int | None = None,
        code: str | None = None,
        deadline: bool = False,
    ):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.code = code
        self.deadline = deadline  # the whole-request deadline passed


def _q(value: str) -> str:
    """Percent-encode everything but unreserved characters: ``|`` -> %7C, space -> %20."""
    return quote(value, safe="")


def _query(params: dict[str, str]) -> str:
    return urlencode(params, quote_via=quote, safe="")


def _error_fields(body: Any) -> tuple[str | None, str]:
    """``errors[0]`` -> (code, message), reading ``error_code`` or the deprecated ``errorCode``."""
    if isinstance(body, dict):
        errors = body.get("errors")
        if isinstance(errors, list) and errors and isinstance(errors[0], dict):
            first = errors[0]
            code = first.get("error_code") or first.get("errorCode")
            message = first.get("message") or ""
            return (str(code) if code else None), str(message)
        if body.get("message"):
            return None, str(body["message"])
    return None, ""


def _as_date(value: Any) -> date:
    if isinstance(value, int | float):  # some Upstox payloads use epoch milliseconds
        return datetime.fromtimestamp(value / 1000, IST).date()
    return date.fromisoformat(str(value)[:10])


def _opt_float(value: Any) -> float | None:
    return None if value is None or value == "" else float(value)


def _opt_int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


def _contract(item: dict[str, Any], *, future: bool) -> Contract:
    weekly = item.get("weekly")
    return Contract(
        instrument_key=str(item["instrument_key"]),
        underlying_key=str(item.get("underlying_key", "")),
        underlying_symbol=str(item.get("underlying_symbol", "")),
        expiry=_as_date(item["expiry"]),
        instrument_type=str(item["instrument_type"]),
        strike_price=None if future else _opt_float(item.get("strike_price")),
        trading_symbol=str(item.get("trading_symbol", "")),
        exchange_token=str(item.get("exchange_token", "")),
        lot_size=int(item.get("lot_size") or 0),
        tick_size=float(item.get("tick_size") or 0),
        freeze_quantity=_opt_float(item.get("freeze_quantity")),
        minimum_lot=_opt_int(item.get("minimum_lot")),
        weekly=None if future or weekly is None else bool(weekly),
        name=str(item.get("name", "")),
        segment=str(item.get("segment", "")),
        exchange=str(item.get("exchange", "")),
        underlying_type=str(item.get("underlying_type", "")),
        raw=dict(item),
    )


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):g} MB"


class UpstoxClient:
    """One instance per base URL/token; share one ``RateLimiter`` between all of them."""

    def __init__(
        self,
        base_url: str,
        *,
        access_token: str | None = None,
        limiter: RateLimiter,
        transport: httpx.AsyncBaseTransport | None = None,
        timeout: float = 30.0,
        deadline: float = DEFAULT_DEADLINE_S,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        max_attempts: int = 5,
        backoff_base: float = 0.5,
        backoff_max: float = 20.0,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if not deadline > 0 or max_body_bytes < 1:
            raise ValueError("deadline and max_body_bytes must be positive")
        self.deadline = deadline
        self.max_body_bytes = max_body_bytes
        self.base_url = base_url.rstrip("/")
        self.limiter = limiter
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._token: str | None = access_token or None
        self._secrets: set[str] = set()
        self.requests_sent = 0
        self.retries = 0
        self._http = httpx.AsyncClient(
            base_url=self.base_url,
            transport=transport,
            timeout=timeout,
            headers={"Accept": "application/json"},
            follow_redirects=False,
        )

    # ---- lifecycle -------------------------------------------------------------------------

    async def __aenter__(self) -> UpstoxClient:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def set_access_token(self, token: str | None) -> None:
        self._token = token or None

    @property
    def has_token(self) -> bool:
        return self._token is not None

    @property
    def access_token(self) -> str | None:
        """The token in use (so a verification can put the previous one back)."""
        return self._token

    def __repr__(self) -> str:
        state = "set" if self._token else "none"
        return f"UpstoxClient({self.base_url!r}, token={state})"

    # ---- endpoints -------------------------------------------------------------------------

    async def get_expiries(self, instrument_key: str) -> list[date]:
        path = f"/v2/expired-instruments/expiries?{_query({'instrument_key': instrument_key})}"
        data = await self._call("GET", path)
        return self._decode(path, lambda: sorted(_as_date(d) for d in data))

    async def get_option_contracts(self, instrument_key: str, expiry: date) -> list[Contract]:
        return await self._contracts("option", instrument_key, expiry)

    async def get_future_contracts(self, instrument_key: str, expiry: date) -> list[Contract]:
        return await self._contracts("future", instrument_key, expiry)

    async def _contracts(self, kind: str, instrument_key: str, expiry: date) -> list[Contract]:
        params = {"instrument_key": instrument_key, "expiry_date": expiry.isoformat()}
        path = f"/v2/expired-instruments/{kind}/contract?{_query(params)}"
        data = await self._call("GET", path)
        future = kind == "future"
        return self._decode(path, lambda: [_contract(i, future=future) for i in data or []])

    @staticmethod
    def _candle_path(expired_key: str, interval: str, from_date: date, to_date: date) -> str:
        if interval not in INTERVALS:
            raise ValueError(f"unknown interval {interval!r}; expected one of {INTERVALS}")
        if to_date < from_date:
            raise ValueError(f"to_date {to_date} is before from_date {from_date}")
        # Upstox's order: to_date BEFORE from_date.
        return (
            f"/v2/expired-instruments/historical-candle/{_q(expired_key)}/{interval}"
            f"/{to_date.isoformat()}/{from_date.isoformat()}"
        )

    async def get_candles(
        self, expired_key: str, interval: str, from_date: date, to_date: date
    ) -> list[Candle]:
        """One request for [from_date, to_date] (inclusive); ascending, one candle per minute
        (the first of a repeated time), read as :meth:`get_candle_rows` reads it."""
        answer = await self.get_candle_rows(expired_key, interval, from_date, to_date)
        return answer.candles()

    async def get_candle_rows(
        self, expired_key: str, interval: str, from_date: date, to_date: date
    ) -> CandleRows:
        """Like :meth:`get_candles`, but the answer as :func:`decode_candles` reads it (API
        order, duplicates and other days kept), for ``Database.store_window_rows``: one typed
        decode in C, no Python object per value beyond the row itself.

        Same limiter, retries and error mapping: a truncated or malformed body is retried like
        a 5xx; a complete answer holding a candle that cannot be read raises ServerError.
        """
        path = self._candle_path(expired_key, interval, from_date, to_date)
        rows: CandleRows = await self._call("GET", path, raw_candles=True)
        return rows

    async def get_profile(self) -> Profile:
        data = await self._call("GET", "/v2/user/profile")
        return self._decode(
            "/v2/user/profile",
            lambda: Profile(
                user_id=str(data.get("user_id", "")),
                user_name=str(data.get("user_name", "")),
                email=str(data.get("email", "")),
                broker=str(data.get("broker", "")),
                exchanges=tuple(str(x) for x in data.get("exchanges") or ()),
            ),
        )

    async def exchange_code(
        self, code: str, client_id: str, client_secret: str, redirect_uri: str
    ) -> TokenGrant:
        """OAuth step 3: trade the single-use ``code`` for an access token (not wrapped)."""
        self._secrets.update(s for s in (code, client_secret) if s)
        form = {
            "code": code,
            "client_id": client_id,
            "client_secret": client_secret,
            "redirect_uri": redirect_uri,
            "grant_type": "authorization_code",
        }
        path = "/v2/login/authorization/token"
        body = await self._call("POST", path, form=form, auth=False, login=True, wrapped=False)

        def decode() -> TokenGrant:
            data = body
            if "access_token" not in data and isinstance(data.get("data"), dict):
                data = data["data"]
            token = data.get("access_token")
            if not token:
                raise LoginError("token exchange answered without an access token")
            return TokenGrant(
                access_token=str(token),
                user_id=str(data.get("user_id", "")),
                user_name=str(data.get("user_name", "")),
                email=str(data.get("email", "")),
                extended_token=data.get("extended_token") or None,
            )

        return self._decode(path, decode)

    async def logout(self) -> None:
        await self._call("DELETE", "/v2/logout")

    async def probe(self, timeout: float = 15.0) -> bool:
        """Is the API reachable? One request (``GET /v2/user/profile``, through the limiter,
        no retry): True when any HTTP answer arrives (a 401 too), False when none does within
        ``timeout`` seconds. A run waiting for the network asks this (``collect/waiting.py``)."""
        headers = {"Authorization": f"Bearer {self._token}"} if self._token else {}
        permit = await self.limiter.acquire()
        self.requests_sent += 1
        try:
            async with asyncio.timeout(min(timeout, self.deadline)):
                response = await self._http.get("/v2/user/profile", headers=headers)
            await response.aclose()
            return True
        except (*_TRANSIENT, TimeoutError) as exc:
            log.debug("probe: %s", self._scrub(type(exc).__name__))
            return False
        finally:
            permit.release()

    # ---- machinery -------------------------------------------------------------------------

    def _scrub(self, text: str) -> str:
        for secret in (self._token, *self._secrets):
            if secret and secret in text:
                text = text.replace(secret, "***")
        return text

    def _decode(self, path: str, fn: Callable[[], _T]) -> _T:
        try:
            return fn()
        except UpstoxError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
            raise ServerError(
                self._scrub(f"{path.split('?')[0]}: unexpected response shape ({exc!r})")
            ) from None

    async def _call(
        self,
        method: str,
        path: str,
        *,
        form: dict[str, str] | None = None,
        auth: bool = True,
        login: bool = False,
        wrapped: bool = True,
        raw_candles: bool = False,
    ) -> Any:
        if auth and not self._token:
            raise AuthError("no access token: log in first", code=None, status=None)
        last: _Retry | None = None
        deadlines_missed = 0
        attempts = 0
        for attempt in range(1, self.max_attempts + 1):
            if attempt > 1:
                self.retries += 1
                ceiling = min(self.backoff_max, self.backoff_base * 2 ** (attempt - 2))
                await self._sleep(self._rng.uniform(0, ceiling))
            permit = await self.limiter.acquire()
            attempts = attempt
            try:
                return await self._attempt(
                    method, path, form, auth, login, wrapped, attempt, raw_candles
                )
            except _Retry as retry:
                last = retry
                log.debug("%s %s attempt %d failed: %s", method, path, attempt, retry.reason)
                deadlines_missed += retry.deadline
            finally:
                permit.release()  # the answer (or failure) is in: the request has arrived
            if deadlines_missed >= _MAX_DEADLINE_MISSES:
                break  # a server that trickles once usually does again: give the item up
        assert last is not None
        what = f"{method} {path.split('?')[0]} failed after {attempts} attempts"
        if last.status == 429:
            raise RateLimitedError(
                self._scrub(f"{what}: rate limited (HTTP 429 {last.code or ''})".rstrip()),
                code=last.code,
                status=429,
            )
        raise ServerError(self._scrub(f"{what}: {last.reason}"), code=last.code, status=last.status)

    async def _fetch(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None,
        headers: dict[str, str],
        answered: list[int],
    ) -> tuple[int, bytes, str]:
        """(status, body, content type), reading the body in chunks up to the cap."""
        cap = self.max_body_bytes
        async with self._http.stream(method, path, data=form, headers=headers) as response:
            status = response.status_code
            answered.append(status)
            declared = response.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise _TooLarge(status, int(declared))
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > cap:
                    raise _TooLarge(status, None)
            return status, bytes(body), response.headers.get("content-type", "?")

    async def _attempt(
        self,
        method: str,
        path: str,
        form: dict[str, str] | None,
        auth: bool,
        login: bool,
        wrapped: bool,
        attempt: int,
        raw_candles: bool = False,
    ) -> Any:
        headers = {"Authorization": f"Bearer {self._token}"} if auth and self._token else {}
        self.requests_sent += 1
        started = time.perf_counter()
        where = path.split("?")[0]
        answered: list[int] = []  # the status, once the headers are in
        try:
            async with asyncio.timeout(self.deadline):
                status, content, kind = await self._fetch(method, path, form, headers, answered)
        except _TRANSIENT as exc:
            ms = (time.perf_counter() - started) * 1000
            reason = self._scrub(f"{type(exc).__name__}" + (f" ({exc})" if str(exc) else ""))
            log.debug("%s %s -> %s in %.1f ms (attempt %d)", method, path, reason, ms, attempt)
            raise _Retry(reason, status=answered[0] if answered else None) from None
        except TimeoutError:
            log.debug("%s %s -> deadline missed (attempt %d)", method, path, attempt)
            raise _Retry(
                f"no complete answer within the {self.deadline:g} s request deadline"
                " (setting request_deadline_s)",
                status=answered[0] if answered else None,
                deadline=True,
            ) from None
        except _TooLarge as big:
            size = f" (Content-Length {big.declared:,})" if big.declared is not None else ""
            raise ServerError(
                self._scrub(
                    f"{method} {where}: answer larger than the {_mb(self.max_body_bytes)} cap"
                    f"{size}, not read (setting max_response_mb)"
                ),
                status=big.status,
            ) from None
        ms = (time.perf_counter() - started) * 1000
        log.debug("%s %s -> %d in %.1f ms (attempt %d)", method, path, status, ms, attempt)

        if raw_candles and 200 <= status < 300:
            try:
                return decode_candles(content)
            except CandleBodyError as exc:
                if exc.complete:  # a whole success document with an unreadable candle
                    raise ServerError(
                        self._scrub(f"{path}: unexpected response shape ({exc})"), status=status
                    ) from None
            # Not a complete success document: classify it as the parsed path would.
            try:
                answer = json.loads(content)
            except ValueError:
                raise _Retry(
                    f"HTTP {status} with malformed JSON body ({kind})", status=status
                ) from None
            code, message = _error_fields(answer)
            detail = self._scrub(f"{code + ': ' if code else ''}{message}".strip() or "no detail")
            raise _Retry(f"HTTP {status} without status/data.candles ({detail})", status=status)

        try:
            body: Any = json.loads(content) if content else None
        except ValueError:
            body = None
            malformed = True
        else:
            malformed = False
        code, message = _error_fields(body)
        detail = self._scrub(f"{code + ': ' if code else ''}{message}".strip() or "no detail")

        if 200 <= status < 300:
            if malformed or not isinstance(body, dict):
                raise _Retry(
                    f"HTTP {status} with malformed JSON body ({kind})", status=status
                ) from None
            if not wrapped:
                return body
            if body.get("status") != "success" or "data" not in body:
                raise _Retry(f"HTTP {status} without status/data ({detail})", status=status)
            return body["data"]
        if status == 429:
            raise _Retry(f"HTTP 429 rate limited ({detail})", status=429, code=code)
        if status >= 500:
            raise _Retry(f"HTTP {status} ({detail})", status=status, code=code)

        text = f"{method} {where}: HTTP {status} {detail}"
        if code == "UDAPI1149":
            raise PlanRequiredError(
                "the expired-instrument APIs need an Upstox Plus subscription "
                f"({code}: {self._scrub(message) or 'plan required'})",
                code=code,
                status=status,
            )
        if login and (code in _LOGIN_CODES or 400 <= status < 500):
            raise LoginError(f"login failed: {text}", code=code, status=status)
        if status in (401, 403) or code == "UDAPI100050":
            raise AuthError(
                f"access token invalid or expired, log in again ({text})", code=code, status=status
            )
        if code == "UDAPI1148":
            raise InvalidDateRangeError(text, code=code, status=status)
        raise BadInputError(text, code=code, status=status)
