"""The desktop OAuth login against the simulator, through a real loopback listener.

The test plays the browser: it GETs the simulator's authorization dialog, which answers 302
to ``redirect_uri?code=..&state=..``, and follows that redirect with httpx to the listener.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from expirytrack_desktop.auth.credentials import Credentials
from expirytrack_desktop.auth.oauth import (
    CallbackError,
    LoginCancelledError,
    LoginTimeoutError,
    LoopbackListener,
    OAuthLogin,
    PortInUseError,
    build_authorization_url,
)
from expirytrack_desktop.auth.secrets import SecretStore
from expirytrack_desktop.auth.token import TokenManager
from expirytrack_desktop.sandbox import DEMO_USER_ID, Market, SimulatorApp, serve
from expirytrack_desktop.upstox.client import UpstoxClient
from expirytrack_desktop.upstox.errors import LoginError
from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec

API = "http://upstox.sim"
CLIENT_ID = "test-client-0001"
CLIENT_SECRET = "test-secret-0001"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def refused(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.connect(("127.0.0.1", port))
        except ConnectionRefusedError:
            return True
        return False


@pytest.fixture
def sim() -> SimulatorApp:
    return SimulatorApp(Market(underlyings=("NSE_INDEX|Nifty 50",)), rate_limit=None)


@pytest.fixture
def redirect(sim) -> str:
    uri = f"http://127.0.0.1:{free_port()}/callback"
    sim.register_client(CLIENT_ID, CLIENT_SECRET, uri)
    return uri


@pytest.fixture
async def client(sim):
    c = UpstoxClient(
        API, limiter=RateLimiter(RateLimitSpec.parse("1000/1")), transport=sim.transport()
    )
    yield c
    await c.aclose()


@pytest.fixture
def tokens(memory_keyring) -> TokenManager:
    return TokenManager(SecretStore(memory_keyring))


class Browser:
    """Follows the dialog's redirect to the listener, like a browser would."""

    def __init__(self, sim: SimulatorApp, rewrite=None, before=None) -> None:
        self.sim = sim
        self.rewrite = rewrite  # change the Location before following it
        self.before = before  # called (awaited) before the callback request
        self.dialog: httpx.Response | None = None
        self.page: httpx.Response | None = None
        self.urls: list[str] = []

    def __call__(self, url: str):
        self.urls.append(url)
        return self.browse(url)

    async def browse(self, url: str) -> None:
        async with httpx.AsyncClient(transport=self.sim.transport()) as upstox:
            self.dialog = await upstox.get(url)
        if self.dialog.status_code != 302:
            return  # Upstox shows its error page; the user closes the tab
        location = self.dialog.headers["location"]
        if self.rewrite:
            location = self.rewrite(location)
        if self.before:
            await self.before()
        async with httpx.AsyncClient(trust_env=False) as local:
            self.page = await local.get(location)


def make_login(sim, client, tokens, redirect, browser, **kw) -> OAuthLogin:
    creds = Credentials(kw.pop("api_key", CLIENT_ID), kw.pop("secret", CLIENT_SECRET), redirect)
    kw.setdefault("timeout", 10)
    return OAuthLogin(
        creds, client, tokens, api_base=API, opener=browser, transport=sim.transport(), **kw
    )


async def test_login_success(sim, client, tokens, redirect, caplog):
    caplog.set_level(logging.DEBUG)
    port = urlsplit(redirect).port
    seen: dict[str, object] = {}

    async def before():
        # While waiting: listening on 127.0.0.1 only, on exactly the redirect port.
        srv = login.listener._server
        seen["addrs"] = [s.getsockname()[:2] for s in srv.sockets]

    browser = Browser(sim, before=before)
    login = make_login(sim, client, tokens, redirect, browser)
    shown: list[str] = []
    login.on_url = shown.append
    info = await login.run()

    assert info.user_id == DEMO_USER_ID and info.user_name == "Demo Trader"
    token = tokens.access_token()
    assert token and token.startswith("sim-token-")
    assert seen["addrs"] == [("127.0.0.1", port)]
    assert browser.page is not None and browser.page.status_code == 200
    assert "Login complete" in browser.page.text and "close this tab" in browser.page.text
    assert browser.page.headers["cache-control"] == "no-store"
    # The URL the browser was sent to: the simulator's dialog with our parameters.
    url = urlsplit(browser.urls[0])
    q = parse_qs(url.query)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{API}/v2/login/authorization/dialog"
    assert q["response_type"] == ["code"] and q["client_id"] == [CLIENT_ID]
    assert q["redirect_uri"] == [redirect] and len(q["state"][0]) >= 32
    assert shown == browser.urls
    # One callback, then the listener is gone.
    assert login.listener.callbacks_received == 1
    assert not login.listener.is_serving
    assert refused(port)
    # No secret in the log.
    code = parse_qs(urlsplit(browser.dialog.headers["location"]).query)["code"][0]
    text = "\n".join(
        r.getMessage() for r in caplog.records if r.name.startswith("expirytrack_desktop")
    )
    assert "Login listener closed" in text
    for secret in (token, CLIENT_SECRET, code, q["state"][0]):
        assert secret not in text


async def test_login_through_a_real_simulator_server(sim, tokens, redirect):
    """Everything over sockets: the API served by uvicorn, the listener, the browser."""

    async def browse(url: str) -> None:
        async with httpx.AsyncClient(trust_env=False, follow_redirects=True) as b:
            r = await b.get(url)  # dialog -> 302 -> listener
        assert r.status_code == 200 and "Login complete" in r.text

    with serve(sim) as base:
        async with UpstoxClient(base, limiter=RateLimiter(RateLimitSpec.parse("100/1"))) as c:
            login = OAuthLogin(
                Credentials(CLIENT_ID, CLIENT_SECRET, redirect),
                c,
                tokens,
                api_base=base,
                opener=browse,
                timeout=10,
            )
            assert login.authorization_url.startswith(base + "/v2/login/authorization/dialog?")
            info = await login.run()
    assert info.user_id == DEMO_USER_ID and tokens.access_token()


def _with_state(location: str, state: str | None) -> str:
    parts = urlsplit(location)
    q = {k: v[0] for k, v in parse_qs(parts.query).items()}
    if state is None:
        q.pop("state")
    else:
        q["state"] = state
    return parts._replace(query=urlencode(q)).geturl()


@pytest.mark.parametrize("state", ["forged-state-value", None], ids=["wrong", "missing"])
async def test_a_wrong_state_is_refused_and_the_login_keeps_waiting(
    sim, client, tokens, redirect, state
):
    """A stale tab or another program hits the listener first: 400 for it, and the real
    browser's callback that follows still completes the login."""
    forged: list[httpx.Response] = []

    async def intruder_first():
        q = {"code": "forged-code"} | ({"state": state} if state else {})
        async with httpx.AsyncClient(trust_env=False) as other:
            forged.append(await other.get(redirect + "?" + urlencode(q)))
            forged.append(await other.get(redirect + "?" + urlencode({"error": "x"})))

    browser = Browser(sim, before=intruder_first)
    login = make_login(sim, client, tokens, redirect, browser)
    info = await login.run()
    assert [r.status_code for r in forged] == [400, 400]
    assert "does not belong to the login" in forged[0].text
    assert login.listener.rejected == 2 and login.listener.callbacks_received == 1
    assert browser.page.status_code == 200 and "Login complete" in browser.page.text
    assert info.user_id == DEMO_USER_ID and tokens.access_token()
    assert refused(urlsplit(redirect).port)


async def test_only_wrong_states_until_the_timeout(sim, client, tokens, redirect):
    browser = Browser(sim, rewrite=lambda loc: _with_state(loc, "forged-state-value"))
    login = make_login(sim, client, tokens, redirect, browser, timeout=1)
    with pytest.raises(LoginTimeoutError):
        await login.run()
    assert browser.page.status_code == 400 and tokens.info() is None
    assert refused(urlsplit(redirect).port)


async def test_cancel_still_ends_a_login_that_refused_a_wrong_state(sim, client, tokens, redirect):
    async def then_cancel():
        async with httpx.AsyncClient(trust_env=False) as other:
            page = await other.get(redirect + "?" + urlencode({"code": "c", "state": "nope"}))
        assert page.status_code == 400
        login.cancel()

    login = make_login(sim, client, tokens, redirect, lambda url: then_cancel())
    with pytest.raises(LoginCancelledError):
        await login.run()
    assert refused(urlsplit(redirect).port) and tokens.info() is None


async def test_callback_with_error(sim, client, tokens, redirect):
    def to_error(location: str) -> str:
        return (
            redirect
            + "?"
            + urlencode(
                {"error": "access_denied", "error_description": "User cancelled", "state": "x"}
            )
        )

    browser = Browser(sim)
    login = make_login(sim, client, tokens, redirect, browser)
    state = parse_qs(urlsplit(login.authorization_url).query)["state"][0]
    browser.rewrite = lambda loc: to_error(loc).replace("state=x", f"state={state}")  # its own
    with pytest.raises(CallbackError, match=r"access_denied.*User cancelled"):
        await login.run()
    assert browser.page.status_code == 400 and "Login failed" in browser.page.text
    assert tokens.info() is None
    assert refused(urlsplit(redirect).port)


async def test_callback_without_code(sim, client, tokens, redirect):
    def no_code(location: str) -> str:
        q = parse_qs(urlsplit(location).query)
        return redirect + "?" + urlencode({"state": q["state"][0]})

    login = make_login(sim, client, tokens, redirect, Browser(sim, rewrite=no_code))
    with pytest.raises(CallbackError, match="without an authorization code"):
        await login.run()


async def test_user_closes_the_browser_timeout(sim, client, tokens, redirect):
    opened: list[str] = []
    login = make_login(sim, client, tokens, redirect, opened.append, timeout=0.3)
    with pytest.raises(LoginTimeoutError, match=r"No answer from the browser within 0.3 s"):
        await login.run()
    assert len(opened) == 1
    assert login.browser_opened is False  # list.append returns None: "no browser"
    assert refused(urlsplit(redirect).port)


async def test_cancel_button(sim, client, tokens, redirect):
    login = make_login(
        sim,
        client,
        tokens,
        redirect,
        lambda url: asyncio.get_running_loop().call_soon(login.cancel),
    )
    with pytest.raises(LoginCancelledError, match="cancelled"):
        await login.run()
    assert refused(urlsplit(redirect).port)
    assert tokens.info() is None


async def test_cancel_before_run(sim, client, tokens, redirect):
    login = make_login(sim, client, tokens, redirect, None)
    login.cancel()
    with pytest.raises(LoginCancelledError):
        await login.run()


async def test_task_cancellation_closes_the_listener(sim, client, tokens, redirect):
    started = asyncio.Event()
    login = make_login(sim, client, tokens, redirect, lambda url: started.set())
    task = asyncio.ensure_future(login.run())
    await started.wait()
    assert not refused(urlsplit(redirect).port)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert refused(urlsplit(redirect).port)


async def test_port_already_in_use(sim, client, tokens, redirect):
    port = urlsplit(redirect).port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen(1)
        opened: list[str] = []
        login = make_login(sim, client, tokens, redirect, opened.append)
        with pytest.raises(PortInUseError, match=f"Port {port} on 127.0.0.1 is already in use"):
            await login.run()
        assert opened == []  # never sent the user to a login that cannot come back


async def test_wrong_secret(sim, client, tokens, redirect):
    browser = Browser(sim)
    login = make_login(sim, client, tokens, redirect, browser, secret="not-the-secret")
    with pytest.raises(LoginError, match="API secret") as info:
        await login.run()
    assert info.value.code == "UDAPI100016"
    assert "not-the-secret" not in str(info.value)
    # the page is written after the exchange: it says the login failed, and why
    assert browser.page.status_code == 400 and "Login failed" in browser.page.text
    assert "Login complete" not in browser.page.text and "API secret" in browser.page.text
    assert "not-the-secret" not in browser.page.text
    assert tokens.info() is None


@pytest.mark.parametrize("wrong", ["api_key", "redirect"])
async def test_wrong_client_id_or_redirect_reported_at_once(sim, client, tokens, redirect, wrong):
    browser = Browser(sim)
    if wrong == "api_key":
        login = make_login(sim, client, tokens, redirect, browser, api_key="unknown-client")
    else:
        other = f"http://127.0.0.1:{free_port()}/other"
        login = make_login(sim, client, tokens, other, browser)
    with pytest.raises(LoginError, match="API key or the redirect URI") as info:
        await login.run()
    assert info.value.code == "UDAPI100068"
    assert browser.urls == []  # reported before the browser was opened
    assert not login.listener.is_serving


async def test_wrong_client_id_without_preflight_times_out_with_a_hint(
    sim, client, tokens, redirect
):
    browser = Browser(sim)
    login = make_login(
        sim, client, tokens, redirect, browser, api_key="unknown-client", preflight=False,
        timeout=0.5,
    )  # fmt: skip
    with pytest.raises(LoginTimeoutError, match="UDAPI100068"):
        await login.run()
    assert browser.dialog.status_code == 400
    assert "UDAPI100068" in browser.dialog.text


async def test_code_is_single_use_exchange_error(sim, client, tokens, redirect):
    """A replayed code (e.g. a reloaded tab) is refused by Upstox with a clear message."""
    codes: list[str] = []

    def grab(location: str) -> str:
        codes.append(parse_qs(urlsplit(location).query)["code"][0])
        return location

    await make_login(sim, client, tokens, redirect, Browser(sim, rewrite=grab)).run()

    def replay(location: str) -> str:
        q = parse_qs(urlsplit(location).query)
        return redirect + "?" + urlencode({"code": codes[0], "state": q["state"][0]})

    with pytest.raises(LoginError, match="UDAPI100057") as info:
        await make_login(sim, client, tokens, redirect, Browser(sim, rewrite=replay)).run()
    assert codes[0] not in str(info.value)


# -- the listener on its own -----------------------------------------------------------------


async def test_listener_accepts_exactly_one_callback_and_ignores_other_paths():
    port = free_port()
    listener = LoopbackListener(f"http://127.0.0.1:{port}/cb", "s-123")
    await listener.start()
    try:
        async with httpx.AsyncClient(trust_env=False) as b:
            fav = await b.get(f"http://127.0.0.1:{port}/favicon.ico")
            assert fav.status_code == 404
            post = await b.post(f"http://127.0.0.1:{port}/cb?code=abc&state=s-123")
            assert post.status_code == 405
            assert listener.callbacks_received == 0 and listener.is_serving
            page = asyncio.ensure_future(
                b.get(f"http://127.0.0.1:{port}/cb?code=the-code&state=s-123")
            )
            assert await listener.wait(5) == "the-code"
            assert not page.done()  # the page waits for the code exchange's outcome
            await listener.answer(True, "Logged in as Asha.")
            ok = await page
            assert ok.status_code == 200 and "Logged in as Asha." in ok.text
            assert listener.callbacks_received == 1
            with pytest.raises(httpx.ConnectError):
                await b.get(f"http://127.0.0.1:{port}/cb?code=second&state=s-123")
    finally:
        await listener.close()
    assert refused(port)


async def test_a_page_nobody_answered_is_told_the_login_did_not_finish():
    port = free_port()
    async with (
        LoopbackListener(f"http://127.0.0.1:{port}/", "st") as listener,
        httpx.AsyncClient(trust_env=False) as b,
    ):
        page = asyncio.ensure_future(b.get(f"http://127.0.0.1:{port}/?code=c1&state=st"))
        assert await listener.wait(5) == "c1"
        await listener.close()  # e.g. the app was closed during the exchange
        done = await page
    assert done.status_code == 400 and "stopped this login before it finished" in done.text


async def test_listener_survives_a_silent_preconnect():
    """Browsers open speculative connections that never send a request."""
    port = free_port()
    async with LoopbackListener(f"http://127.0.0.1:{port}/", "st") as listener:
        _r, idle = await asyncio.open_connection("127.0.0.1", port)
        async with httpx.AsyncClient(trust_env=False) as b:
            page = asyncio.ensure_future(b.get(f"http://127.0.0.1:{port}/?code=c1&state=st"))
            assert await listener.wait(5) == "c1"
            await listener.answer(True, "ok")
            assert (await page).status_code == 200
        idle.close()
    assert refused(port)


def test_authorization_url_follows_the_api_base():
    url = build_authorization_url("k-1", "http://127.0.0.1:8765/callback", "st", "http://x:1/")
    assert url == (
        "http://x:1/v2/login/authorization/dialog?response_type=code&client_id=k-1"
        "&redirect_uri=http%3A%2F%2F127.0.0.1%3A8765%2Fcallback&state=st"
    )
    default = build_authorization_url("k-1", "http://127.0.0.1:8765/callback", "st")
    assert default.startswith("https://api.upstox.com/v2/login/authorization/dialog?")


async def test_a_cancel_racing_the_callback_is_not_swallowed():
    """The callback arrives in the same loop turn as Cancel: the wait must still end cancelled
    (``asyncio.wait_for`` on 3.11 returned the code and dropped the cancellation)."""
    port = free_port()
    async with LoopbackListener(f"http://127.0.0.1:{port}/cb", "s-1") as listener:
        waiting = asyncio.ensure_future(listener.wait(5))
        for _ in range(3):
            await asyncio.sleep(0)  # it is now awaiting the callback
        listener._result.set_result("the-code")  # what the callback handler does
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting


class StuckTransport(httpx.AsyncBaseTransport):
    """A preflight that never answers; says when it was entered and whether it was cancelled."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.cancelled = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.entered.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        raise AssertionError("unreachable")


async def test_cancel_during_the_preflight_stops_at_once(sim, client, tokens, redirect):
    """Cancel pressed before the listener waits (here: the preflight hangs) must not be lost:
    before, it was only seen when the preflight gave up (10 s) or not at all."""
    stuck = StuckTransport()
    opened: list[str] = []
    creds = Credentials(CLIENT_ID, CLIENT_SECRET, redirect)
    login = OAuthLogin(
        creds, client, tokens, api_base=API, opener=opened.append, transport=stuck, timeout=60
    )
    task = asyncio.ensure_future(login.run())
    await stuck.entered.wait()
    login.cancel()
    with pytest.raises(LoginCancelledError, match="cancelled"):
        await task
    assert stuck.cancelled and opened == []  # no browser opened after Cancel
    assert refused(urlsplit(redirect).port) and tokens.info() is None
    assert task.cancelling() == 0  # answered as LoginCancelledError, not left cancelled


async def test_outside_cancellation_during_the_preflight_stays_a_cancellation(
    sim, client, tokens, redirect
):
    stuck = StuckTransport()
    creds = Credentials(CLIENT_ID, CLIENT_SECRET, redirect)
    login = OAuthLogin(creds, client, tokens, api_base=API, opener=None, transport=stuck)
    task = asyncio.ensure_future(login.run())
    await stuck.entered.wait()
    task.cancel()
    login.cancel()  # both: the outside cancel must win
    with pytest.raises(asyncio.CancelledError):
        await task
    assert refused(urlsplit(redirect).port)
