"""The simulated Upstox API: one request handler, served as plain ASGI or in-process.

All behaviour lives in :meth:`SimulatorApp.handle`; the ASGI entry point and the httpx
transport only translate, so the in-process and the on-the-wire simulator agree, faults
included. Error bodies carry both the snake_case and the deprecated camelCase fields.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlencode

from expirytrack_desktop.sandbox.faults import FaultConfig, FaultPlan
from expirytrack_desktop.sandbox.market import INTERVALS, Market
from expirytrack_desktop.sandbox.ratelimit import Limits, SlidingWindows, parse_rate_limit
from expirytrack_desktop.sandbox.wire import SimResponse
from expirytrack_desktop.settings import DEFAULT_RATE_LIMIT, INSTRUMENT_MASTER_PATH

if TYPE_CHECKING:
    from expirytrack_desktop.sandbox.transport import SimulatorTransport


DEMO_ACCESS_TOKEN = "demo-access-token-expirytrack-sandbox"
DEMO_USER_ID = "DEMO01"
DEMO_USER_NAME = "Demo Trader"


@dataclass(frozen=True, slots=True)
class DemoCredentials:
    """The demo login's client registration (public values: the demo market is not secret)."""

    client_id: str
    client_secret: str = field(repr=False)
    redirect_uri: str


def demo_client_credentials() -> DemoCredentials:
    """Fixed client id/secret/redirect that every :class:`SimulatorApp` accepts."""
    return DemoCredentials(
        client_id="expirytrack-demo-client",
        client_secret="expirytrack-demo-secret",
        redirect_uri="http://127.0.0.1:8765/callback",
    )


_SEGMENTS = "NSE_EQ|NSE_FO|NCD_FO|BSE_EQ|BSE_FO|BCD_FO|MCX_FO|NSE_INDEX|BSE_INDEX|MCX_INDEX|NSE_COM"
_EXPIRED_KEY_RE = re.compile(rf"^({_SEGMENTS})\|[\w\-]+\|\d{{2}}-\d{{2}}-\d{{4}}$")
_UNDERLYING_KEY_RE = re.compile(rf"^({_SEGMENTS})\|[^|]+$")
_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_CANDLE_PREFIX = "/v2/expired-instruments/historical-candle/"
_EXPIRED_ENDPOINTS = ("expiries", "option_contracts", "future_contracts", "historical_candle")


@dataclass
class Stats:
    """Counters a test or benchmark reads after a run."""

    requests: int = 0
    by_endpoint: Counter[str] = field(default_factory=Counter)
    by_status: Counter[int] = field(default_factory=Counter)
    rate_limited: int = 0
    faults: Counter[str] = field(default_factory=Counter)

    @property
    def faults_injected(self) -> int:
        return sum(self.faults.values())


@dataclass(slots=True)
class _Token:
    user_id: str
    plus: bool = True
    valid: bool = True


class _ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, prop: str | None = None,
                 value: Any = None) -> None:  # fmt: skip
        super().__init__(code)
        self.status, self.code, self.message, self.prop, self.value = (
            status, code, message, prop, value)  # fmt: skip


def error_body(code: str, message: str, prop: str | None = None, value: Any = None) -> dict:
    """The documented error envelope, with both spellings of the field names."""
    return {
        "status": "error",
        "errors": [
            {
                "error_code": code,
                "message": message,
                "property_path": prop,
                "invalid_value": value,
                "errorCode": code,
                "propertyPath": prop,
                "invalidValue": value,
            }
        ],
    }


def _json(status: int, obj: Any, extra: list[tuple[str, str]] | None = None) -> SimResponse:
    body = json.dumps(obj, separators=(",", ":")).encode()
    headers = [("content-type", "application/json"), ("content-length", str(len(body)))]
    return SimResponse(status, headers + (extra or []), body)


def _parse_date(text: str, prop: str, code: str = "UDAPI1015") -> date:
    if not _DATE_RE.match(text or ""):
        raise _ApiError(400, code, f"Invalid date format for {prop}, expected YYYY-MM-DD",
                        prop, text)  # fmt: skip
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise _ApiError(400, code, f"Invalid date for {prop}", prop, text) from None


class SimulatorApp:
    """ASGI application faithful to the Upstox endpoints described in ``docs/upstox-api.md``.

    ``faults``, ``span_cap_days`` and ``rate_limit`` may be changed while it runs.
    """

    def __init__(
        self,
        market: Market,
        *,
        rate_limit: str | None = DEFAULT_RATE_LIMIT,
        span_cap_days: dict[str, int] | None = None,
        faults: FaultConfig | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.market = market
        self.clock = clock
        self.span_cap_days: dict[str, int] = dict(span_cap_days or {})
        self.stats = Stats()
        self._lock = threading.RLock()
        self._limits: Limits | None = None
        self._windows: dict[str, SlidingWindows] = {}
        self.rate_limit = rate_limit
        self.faults = faults or FaultConfig()
        self._clients: dict[str, tuple[str, str]] = {}
        self._codes: dict[str, tuple[str, str, str]] = {}  # code -> client, redirect, user
        self._tokens: dict[str, _Token] = {DEMO_ACCESS_TOKEN: _Token(DEMO_USER_ID)}
        self._serial = 0
        self._expire_countdown: int | None = None
        self._master_gz: bytes | None = None
        demo = demo_client_credentials()
        self.register_client(demo.client_id, demo.client_secret, demo.redirect_uri)

    # ------------------------------------------------------------------ run-time knobs
    @property
    def rate_limit(self) -> str | None:
        if self._limits is None:
            return None
        return ",".join(f"{c}/{s:g}" for c, s in self._limits)

    @rate_limit.setter
    def rate_limit(self, spec: str | None) -> None:
        with self._lock:
            self._limits = parse_rate_limit(spec) if spec else None
            self._windows.clear()

    @property
    def faults(self) -> FaultConfig:
        return self._fault_plan.config

    @faults.setter
    def faults(self, config: FaultConfig) -> None:
        with self._lock:
            self._fault_plan = FaultPlan(config)

    # ------------------------------------------------------------------ helpers for tests
    def register_client(self, client_id: str, client_secret: str, redirect_uri: str) -> None:
        with self._lock:
            self._clients[client_id] = (client_secret, redirect_uri)

    def _new_secret(self, kind: str) -> str:
        self._serial += 1
        digest = hashlib.sha256(f"{kind}:{self.market.seed}:{self._serial}".encode()).hexdigest()
        return f"sim-{kind}-{digest[:40]}"

    def issue_token(self, user_id: str = DEMO_USER_ID, *, plus: bool = True) -> str:
        """A fresh valid access token; ``plus=False`` simulates a user without Upstox Plus."""
        with self._lock:
            token = self._new_secret("token")
            self._tokens[token] = _Token(user_id, plus)
            return token

    def set_plus(self, token: str, plus: bool) -> None:
        with self._lock:
            self._tokens[token].plus = plus

    def expire_all_tokens(self) -> None:
        """Every token issued so far (the demo token too) answers 401 from now on."""
        with self._lock:
            for t in self._tokens.values():
                t.valid = False
            self._expire_countdown = None

    def expire_tokens_after(self, n_requests: int) -> None:
        """The next ``n_requests`` authenticated requests pass, then all tokens expire."""
        with self._lock:
            self._expire_countdown = int(n_requests)
            if n_requests <= 0:
                self.expire_all_tokens()

    def transport(self) -> SimulatorTransport:
        """An ``httpx.AsyncBaseTransport`` that calls this app in-process."""
        from expirytrack_desktop.sandbox.transport import SimulatorTransport

        return SimulatorTransport(self)

    # ------------------------------------------------------------------ ASGI
    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        if scope["type"] == "lifespan":
            while True:
                msg = await receive()
                if msg["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif msg["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            chunks.append(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        resp = await self.handle(
            scope["method"], scope["path"], scope.get("query_string", b""), headers,
            b"".join(chunks),
        )  # fmt: skip
        raw_headers = [(k.encode(), v.encode()) for k, v in resp.headers]
        await send({"type": "http.response.start", "status": resp.status, "headers": raw_headers})
        if resp.drop:
            # Promise a body, send part of it and return: the server closes the connection.
            await send({"type": "http.response.body", "body": resp.body, "more_body": True})
            return
        await send({"type": "http.response.body", "body": resp.body})

    # ------------------------------------------------------------------ the handler
    async def handle(
        self, method: str, path: str, query: bytes | str, headers: dict[str, str], body: bytes
    ) -> SimResponse:
        """Answer one request; ``path`` is percent-decoded, ``query`` raw, headers lowercased."""
        endpoint, route = self._route(method, path)
        with self._lock:
            self.stats.requests += 1
            self.stats.by_endpoint[endpoint] += 1
            draw = self._fault_plan.draw() if endpoint != "authorize" else None
        if draw and draw.latency_s:
            await asyncio.sleep(draw.latency_s)
        if draw and draw.kind in ("drop", "500", "503"):
            with self._lock:
                self.stats.faults[draw.kind] += 1
            if draw.kind == "drop":
                partial = b'{"status":"success","data":'
                headers_out = [("content-type", "application/json"), ("content-length", "4096")]
                return SimResponse(200, headers_out, partial, drop=True)
            status = int(draw.kind)
            msg = "Something went wrong" if status == 500 else "Service Unavailable"
            return self._count(_json(status, error_body("UDAPI100500", msg)))
        q = parse_qs(query.decode("latin-1") if isinstance(query, bytes) else query,
                     keep_blank_values=True)  # fmt: skip
        params = {k: v[0] for k, v in q.items()}
        try:
            with self._lock:
                resp = route(params, headers, body)
        except _ApiError as e:
            resp = _json(e.status, error_body(e.code, e.message, e.prop, e.value))
        if draw and draw.kind == "truncate" and resp.status == 200 and resp.body:
            with self._lock:
                self.stats.faults["truncate"] += 1
            cut = resp.body[: max(1, int(len(resp.body) * draw.cut_fraction))]
            if cut == resp.body:
                cut = resp.body[:-1]
            resp = SimResponse(
                200, [("content-type", "application/json"), ("content-length", str(len(cut)))],
                cut,
            )  # fmt: skip
        return self._count(resp)

    def _count(self, resp: SimResponse) -> SimResponse:
        with self._lock:
            self.stats.by_status[resp.status] += 1
            if resp.status == 429:
                self.stats.rate_limited += 1
        return resp

    def _route(self, method: str, path: str) -> tuple[str, Callable[..., SimResponse]]:
        table = {
            ("GET", "/v2/expired-instruments/expiries"): ("expiries", self._expiries),
            ("GET", "/v2/expired-instruments/option/contract"): (
                "option_contracts", self._option_contracts),
            ("GET", "/v2/expired-instruments/future/contract"): (
                "future_contracts", self._future_contracts),
            ("GET", "/v2/user/profile"): ("profile", self._profile),
            ("GET", "/v2/login/authorization/dialog"): ("authorize", self._authorize),
            ("POST", "/v2/login/authorization/token"): ("token", self._token),
            ("DELETE", "/v2/logout"): ("logout", self._logout),
            ("GET", INSTRUMENT_MASTER_PATH): ("instrument_master", self._instrument_master),
        }  # fmt: skip
        path = path.rstrip("/") or "/"
        if (method, path) in table:
            return table[(method, path)]
        if method == "GET" and path.startswith(_CANDLE_PREFIX):
            tail = path[len(_CANDLE_PREFIX) :]
            return "historical_candle", lambda p, h, b: self._candles(tail, h)
        known_paths = {p for _, p in table} | ({path} if path.startswith(_CANDLE_PREFIX) else set())
        if path in known_paths:
            return "method_not_allowed", self._not_allowed
        return "not_found", self._not_found

    # ------------------------------------------------------------------ auth, limits
    def _authenticate(self, headers: dict[str, str], expired_api: bool) -> _Token:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        info = self._tokens.get(token.strip()) if scheme.lower() == "bearer" else None
        if info is None or not info.valid:
            raise _ApiError(401, "UDAPI100050", "Invalid token used to access API")
        if self._expire_countdown is not None:
            self._expire_countdown -= 1
            if self._expire_countdown < 0:
                self.expire_all_tokens()
                raise _ApiError(401, "UDAPI100050", "Invalid token used to access API")
        if self._limits is not None:
            windows = self._windows.get(info.user_id)
            if windows is None:
                windows = self._windows[info.user_id] = SlidingWindows(self._limits)
            if not windows.try_admit(self.clock()):
                raise _ApiError(429, "UDAPI10005", "Too Many Request Sent")
        if expired_api and not info.plus:
            raise _ApiError(403, "UDAPI1149",
                            "This API is available only to Upstox Plus subscribers")  # fmt: skip
        return info

    def _underlying_param(self, params: dict[str, str]) -> str:
        key = params.get("instrument_key", "")
        if not key:
            raise _ApiError(400, "UDAPI1009", "instrument_key is a required field",
                            "instrument_key")  # fmt: skip
        if not _UNDERLYING_KEY_RE.match(key):
            raise _ApiError(400, "UDAPI1011", "Invalid instrument_key format",
                            "instrument_key", key)  # fmt: skip
        if key not in self.market.underlying_keys():
            raise _ApiError(400, "UDAPI100011", "Invalid Instrument key", "instrument_key", key)
        return key

    # ------------------------------------------------------------------ data endpoints
    def _instrument_master(self, params: dict, headers: dict, body: bytes) -> SimResponse:
        """The public instrument master (no token), as Upstox's asset host serves it."""
        if self._master_gz is None:
            from expirytrack_desktop.sandbox.master import master_gzip

            self._master_gz = master_gzip(self.market)
        gz = self._master_gz
        return SimResponse(
            200, [("content-type", "application/gzip"), ("content-length", str(len(gz)))], gz
        )

    def _expiries(self, params: dict, headers: dict, body: bytes) -> SimResponse:
        self._authenticate(headers, True)
        key = self._underlying_param(params)
        data = [d.isoformat() for d in self.market.expiries(key)]
        return _json(200, {"status": "success", "data": data})

    def _contract_params(self, params: dict, headers: dict) -> tuple[str, date]:
        self._authenticate(headers, True)
        key = self._underlying_param(params)
        raw = params.get("expiry_date", "")
        if not raw:
            raise _ApiError(400, "UDAPI1009", "expiry_date is a required field", "expiry_date")
        return key, _parse_date(raw, "expiry_date")

    def _option_contracts(self, params: dict, headers: dict, body: bytes) -> SimResponse:
        key, expiry = self._contract_params(params, headers)
        return _json(200, {"status": "success", "data": self.market.option_contracts(key, expiry)})

    def _future_contracts(self, params: dict, headers: dict, body: bytes) -> SimResponse:
        key, expiry = self._contract_params(params, headers)
        return _json(200, {"status": "success", "data": self.market.future_contracts(key, expiry)})

    def _candles(self, tail: str, headers: dict) -> SimResponse:
        self._authenticate(headers, True)
        parts = tail.split("/")
        key = parts[0]
        if not _EXPIRED_KEY_RE.match(key):
            raise _ApiError(400, "UDAPI1021", "Invalid expired_instrument_key",
                            "expired_instrument_key", key)  # fmt: skip
        interval = parts[1] if len(parts) > 1 else ""
        if interval not in INTERVALS:
            raise _ApiError(400, "UDAPI1020", "Invalid interval", "interval", interval)
        if len(parts) < 3 or not parts[2]:
            raise _ApiError(400, "UDAPI1022", "to_date is a required field", "to_date")
        if len(parts) > 4:
            return self._not_found({}, headers, b"")
        to_d = _parse_date(parts[2], "to_date")
        # from_date omitted: a single day (the SDK always sends it; the API does not need it).
        from_d = _parse_date(parts[3], "from_date") if len(parts) > 3 and parts[3] else to_d
        if to_d < from_d:
            raise _ApiError(400, "UDAPI1015", "to_date cannot be before from_date", "to_date",
                            parts[2])  # fmt: skip
        cap = self.span_cap_days.get(interval)
        if cap is not None and (to_d - from_d).days + 1 > cap:
            raise _ApiError(400, "UDAPI1148", "Invalid date range")
        if not self.market.has_contract(key):
            raise _ApiError(400, "UDAPI100011", "Invalid Instrument key",
                            "expired_instrument_key", key)  # fmt: skip
        rows = self.market.candle_rows(key, interval, from_d, to_d)
        return _json(200, {"status": "success", "data": {"candles": rows}})

    # ------------------------------------------------------------------ user / login
    def _profile_data(self, user_id: str) -> dict[str, Any]:
        return {
            "email": f"{user_id.lower()}@example.com",
            "exchanges": ["NSE", "NFO", "BSE", "BFO", "CDS", "BCD"],
            "products": ["D", "I", "CO", "MTF"],
            "broker": "UPSTOX",
            "user_id": user_id,
            "user_name": DEMO_USER_NAME if user_id == DEMO_USER_ID else f"User {user_id}",
            "order_types": ["MARKET", "LIMIT", "SL", "SL-M"],
            "user_type": "individual",
            "poa": False,
            "is_active": True,
        }

    def _profile(self, params: dict, headers: dict, body: bytes) -> SimResponse:
        info = self._authenticate(headers, False)
        return _json(200, {"status": "success", "data": self._profile_data(info.user_id)})

    def _logout(self, params: dict, headers: dict, body: bytes) -> SimResponse:
        self._authenticate(headers, False)
        token = headers.get("authorization", "").partition(" ")[2].strip()
        if token != DEMO_ACCESS_TOKEN:  # the demo token survives a logout: demo mode reuses it
            self._tokens[token].valid = False
        return _json(200, {"status": "success", "data": True})

    def _check_client(self, client_id: str, redirect_uri: str) -> str:
        reg = self._clients.get(client_id)
        if reg is None or reg[1] != redirect_uri:
            raise _ApiError(400, "UDAPI100068",
                            "Check your 'client_id' and 'redirect_uri'; one or both are incorrect.")  # fmt: skip  # noqa: E501
        return reg[0]

    def _authorize(self, params: dict, headers: dict, body: bytes) -> SimResponse:
        """The login page, approved at once as the demo user: 302 back with a code."""
        redirect = params.get("redirect_uri", "")
        self._check_client(params.get("client_id", ""), redirect)
        code = self._new_secret("code")[:20]
        self._codes[code] = (params["client_id"], redirect, DEMO_USER_ID)
        query = {"code": code}
        if "state" in params:
            query["state"] = params["state"]
        location = redirect + ("&" if "?" in redirect else "?") + urlencode(query)
        return SimResponse(302, [("location", location), ("content-length", "0")], b"")

    def _token(self, params: dict, headers: dict, body: bytes) -> SimResponse:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        form = {**params, **form}
        client_id, redirect = form.get("client_id", ""), form.get("redirect_uri", "")
        secret = self._check_client(client_id, redirect)
        if form.get("client_secret") != secret:
            raise _ApiError(401, "UDAPI100016", "Invalid Credentials")
        if form.get("grant_type") != "authorization_code":
            raise _ApiError(400, "UDAPI100016", "Invalid Credentials", "grant_type")
        code = self._codes.pop(form.get("code", ""), None)  # single use: gone once tried
        if code is None or code[:2] != (client_id, redirect):
            raise _ApiError(400, "UDAPI100057", "Invalid Auth code", "code")
        user_id = code[2]
        token = self._new_secret("token")
        self._tokens[token] = _Token(user_id)
        grant = {
            **self._profile_data(user_id),
            "access_token": token,
            "extended_token": self._new_secret("ext"),
        }
        return _json(200, grant)

    def _not_found(self, params: dict, headers: dict, body: bytes) -> SimResponse:
        return _json(404, error_body("UDAPI100060", "Resource not Found."))

    def _not_allowed(self, params: dict, headers: dict, body: bytes) -> SimResponse:
        return _json(405, error_body("UDAPI100061", "Method not allowed."))
