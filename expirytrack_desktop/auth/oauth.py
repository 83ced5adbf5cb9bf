"""Upstox OAuth 2.0 login from the desktop: system browser + one-shot loopback listener.

1. :func:`build_authorization_url` with a random ``state``; the dialog lives under the
   configured API base, so the simulator's dialog is used in demo mode and tests.
2. :class:`~expirytrack_desktop.auth.loopback.LoopbackListener` binds 127.0.0.1 (only) on
   the redirect URI's port and waits for this login's callback (a wrong ``state`` is answered
   400 and ignored).
3. The code is exchanged (``client.exchange_code``) and the token stored
   (:class:`~expirytrack_desktop.auth.token.TokenManager`); only then does the browser's page
   say "Login complete", or why the login failed.

:class:`OAuthLogin` runs the three steps with a timeout and a cancel hook. Plain asyncio, no
Qt: the window runs it under qasync, the CLI under ``asyncio.run``.

Every failure is a :class:`~expirytrack_desktop.upstox.errors.LoginError` (subclasses below)
with a message for the user; the code, the state and the secret never appear in one.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import secrets as _random
import webbrowser
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import urlencode

import httpx

from expirytrack_desktop.auth.credentials import Credentials
from expirytrack_desktop.auth.loopback import (
    DEFAULT_TIMEOUT,
    LISTEN_HOST,
    CallbackError,
    LoginCancelledError,
    LoginTimeoutError,
    LoopbackListener,
    PortInUseError,
)
from expirytrack_desktop.auth.token import TokenInfo, TokenManager
from expirytrack_desktop.settings import DEFAULT_API_BASE
from expirytrack_desktop.upstox.errors import LoginError, UpstoxError
from expirytrack_desktop.upstox.models import TokenGrant

log = logging.getLogger(__name__)

__all__ = [  # the listener's names stay importable from here
    "DEFAULT_TIMEOUT",
    "LISTEN_HOST",
    "CallbackError",
    "LoginCancelledError",
    "LoginTimeoutError",
    "LoopbackListener",
    "OAuthLogin",
    "PortInUseError",
    "build_authorization_url",
    "friendly_login_error",
    "login",
    "new_state",
    "scripted_browser",
]

DIALOG_PATH = "/v2/login/authorization/dialog"

Opener = Callable[[str], object]
"""Opens a URL in the user's browser (default :func:`webbrowser.open`); a falsy return
means no browser could be started (the caller then shows the URL). It may also return an
awaitable (a scripted browser: demo mode, tests), which runs beside the wait."""


class CodeExchanger(Protocol):
    """The part of ``UpstoxClient`` the login needs."""

    def exchange_code(
        self, code: str, client_id: str, client_secret: str, redirect_uri: str
    ) -> Awaitable[TokenGrant]: ...


def new_state() -> str:
    """A fresh unguessable ``state`` value (CSRF protection of the callback)."""
    return _random.token_urlsafe(24)


def build_authorization_url(
    client_id: str, redirect_uri: str, state: str, api_base: str = DEFAULT_API_BASE
) -> str:
    """``{api_base}/v2/login/authorization/dialog?response_type=code&client_id=..&...``."""
    query = urlencode(
        {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "state": state,
        }
    )
    return f"{api_base.rstrip('/')}{DIALOG_PATH}?{query}"


def friendly_login_error(exc: UpstoxError) -> LoginError:
    """Map the token exchange's API errors to what the user should do."""
    code = exc.code or ""
    if code == "UDAPI100016":
        msg = (
            "Upstox rejected the API secret (UDAPI100016): check it with `expirytrack configure` "
            "(or Settings) against your app on Upstox's developer console."
        )
    elif code == "UDAPI100068":
        msg = (
            "Upstox rejected the API key or the redirect URI (UDAPI100068): both must match "
            "your app on Upstox's developer console exactly."
        )
    else:
        msg = f"The token exchange failed: {exc.message}" + (f" ({code})" if code else "")
    return LoginError(msg, code=exc.code, status=exc.status)


class OAuthLogin:
    """One desktop login: listen, open the browser, wait, exchange, store.

    Inject ``client`` (``exchange_code``), ``tokens`` (where the token goes), ``opener``
    (default :func:`webbrowser.open`; ``None`` = do not open, only report the URL through
    ``on_url``, as ``--no-browser`` does). ``on_url`` is called with the authorization URL
    before waiting, so the UI/CLI can show it. Call :meth:`cancel` from a Cancel button.
    """

    def __init__(
        self,
        credentials: Credentials,
        client: CodeExchanger,
        tokens: TokenManager,
        *,
        api_base: str = DEFAULT_API_BASE,
        opener: Opener | None = webbrowser.open,
        on_url: Callable[[str], None] | None = None,
        timeout: float | None = DEFAULT_TIMEOUT,
        state: str | None = None,
        preflight: bool = True,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.credentials = credentials
        self.redirect = credentials.redirect  # validates the shape early
        self.client = client
        self.tokens = tokens
        self.opener = opener
        self.on_url = on_url
        self.timeout = timeout
        self._state = state or new_state()
        self.authorization_url = build_authorization_url(
            credentials.api_key, credentials.redirect_uri, self._state, api_base
        )
        self.listener = LoopbackListener(self.redirect, self._state)
        self.preflight = preflight
        self._transport = transport
        self.browser_opened: bool | None = None
        self._cancelled = False
        self._run_task: asyncio.Task[Any] | None = None  # cancelled by cancel() until
        self._waiting = False  # it waits for the browser (the listener's cancel ends that)
        self._cancel_sent = False
        self._browser_task: asyncio.Future[object] | None = None

    def __repr__(self) -> str:
        return f"<OAuthLogin {self.listener!r}>"

    def cancel(self) -> None:
        """Stop the login at whatever step it is (listening, preflight, waiting for the
        browser); :meth:`run` raises :class:`LoginCancelledError`. Call on the run's loop."""
        self._cancelled = True
        self.listener.cancel()
        task = self._run_task
        if task is not None and not task.done() and not self._waiting:
            self._cancel_sent = True
            task.cancel()  # still starting the listener or in the preflight

    async def run(self) -> TokenInfo:
        """The whole login; returns who logged in and until when, or raises LoginError."""
        if self._cancelled:
            raise LoginCancelledError("Login cancelled.")
        self._run_task = asyncio.current_task()
        try:
            return await self._run()
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if not self._cancel_sent or task is None or task.uncancel() > 0:
                raise  # (also) cancelled from outside: stay cancelled
            raise LoginCancelledError("Login cancelled.") from None
        finally:
            self._run_task = None

    async def _run(self) -> TokenInfo:
        answered = False
        try:
            await self.listener.start()
            if self.preflight:
                await self._preflight()
            if self.on_url is not None:
                self.on_url(self.authorization_url)
            if self.opener is not None:
                self._open_browser(self.opener)
            self._waiting = True
            try:
                code = await self.listener.wait(self.timeout)
            except asyncio.CancelledError:
                if self._cancelled:
                    raise LoginCancelledError("Login cancelled.") from None
                raise
            answered = True
            return await self._exchange(code)
        except CallbackError:
            answered = True  # the browser got an error page: let it read it
            raise
        finally:
            await self.listener.close()  # a page still waiting is told the login did not end
            await self._stop_browser(grace=5.0 if answered else 0.0)

    async def _exchange(self, code: str) -> TokenInfo:
        """Code -> token -> secret store; the browser's page then says how it went."""
        c = self.credentials
        try:
            grant = await self.client.exchange_code(code, c.api_key, c.api_secret, c.redirect_uri)
        except UpstoxError as exc:
            error = friendly_login_error(exc)
            await self.listener.answer(False, f"{error.message} Nothing was stored.")
            raise error from None
        try:
            info = self.tokens.save_grant(grant)
        except Exception:
            await self.listener.answer(
                False, "Upstox accepted the login, but ExpiryTrack could not store the token: "
                "see ExpiryTrack for the reason."
            )  # fmt: skip
            raise
        who = f" as {info.user_name}" if info.user_name else ""
        await self.listener.answer(
            True, f"Logged in{who}. You can close this tab and return to ExpiryTrack."
        )
        return info

    def _open_browser(self, opener: Opener) -> None:
        try:
            result = opener(self.authorization_url)
        except Exception as exc:  # a broken browser setup must not kill the login
            log.warning("Could not open the browser: %s", type(exc).__name__)
            self.browser_opened = False
            return
        if inspect.isawaitable(result):
            self._browser_task = asyncio.ensure_future(result)
            self.browser_opened = True
        else:
            self.browser_opened = bool(result)

    async def _stop_browser(self, grace: float) -> None:
        """Let a scripted browser read its page (``grace`` seconds), then cancel it."""
        task, self._browser_task = self._browser_task, None
        if task is None:
            return
        if not task.done() and grace > 0:
            await asyncio.wait({task}, timeout=grace)
        if not task.done():
            task.cancel()
        with contextlib.suppress(BaseException):
            await task
        if not task.cancelled() and task.exception() is not None:
            log.debug("Scripted browser failed: %s", type(task.exception()).__name__)

    async def _preflight(self) -> None:
        # Straight through the transport: httpx.AsyncClient would log the URL (with the API
        # key as client_id) at INFO, and an app log file must not hold it.
        transport = self._transport or httpx.AsyncHTTPTransport()
        request = httpx.Request("GET", self.authorization_url)
        try:
            async with asyncio.timeout(10.0):
                response = await transport.handle_async_request(request)
            try:
                async with asyncio.timeout(10.0):
                    await response.aread()
            finally:
                await response.aclose()
        except (httpx.HTTPError, OSError, TimeoutError) as exc:
            log.debug("Login preflight skipped: %s", type(exc).__name__)
            return
        finally:
            if self._transport is None:
                await transport.aclose()
        if not 400 <= response.status_code < 500:
            return
        try:
            body = response.json()
            errors = body.get("errors") or []
            first = errors[0] if errors else {}
            code = first.get("error_code") or first.get("errorCode")
        except (ValueError, AttributeError, IndexError, TypeError):
            return
        if code == "UDAPI100068":
            raise LoginError(
                "Upstox rejected the API key or the redirect URI (UDAPI100068): both must "
                "match your app on Upstox's developer console exactly "
                f"(redirect URI used: {self.credentials.redirect_uri}).",
                code=code,
                status=response.status_code,
            )


def scripted_browser(transport: httpx.AsyncBaseTransport | None = None) -> Opener:
    """An :data:`Opener` that plays the user's browser: GET the dialog (through
    ``transport``, e.g. the in-process simulator's), then follow its 302 to the loopback
    listener over a real socket. For demo mode without a browser, and for tests."""

    async def browse(url: str) -> None:
        async with httpx.AsyncClient(transport=transport) as upstox:
            dialog = await upstox.get(url)
        location = dialog.headers.get("location")
        if dialog.status_code not in (301, 302, 303, 307) or not location:
            return  # Upstox answered with an error page: a user would close the tab
        async with httpx.AsyncClient(trust_env=False, timeout=10) as local:
            await local.get(location)

    return browse


async def login(
    credentials: Credentials,
    client: CodeExchanger,
    tokens: TokenManager,
    **options: object,
) -> TokenInfo:
    """Shortcut for ``await OAuthLogin(credentials, client, tokens, **options).run()``."""
    return await OAuthLogin(credentials, client, tokens, **options).run()  # type: ignore[arg-type]
