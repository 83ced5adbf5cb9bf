"""Upstox OAuth 2.0 login from the desktop: system browser + one-shot loopback listener.

1. :func:`build_authorization_url` with a random ``state``; the dialog lives under the
   configured API base, so the simulator's dialog is used in demo mode and tests.
2. :class:`LoopbackListener` binds 127.0.0.1 (only) on the redirect URI's port and accepts
   exactly one callback on the redirect path: it checks ``state``, answers a small HTML
   page ("Login complete - you can close this tab", or an error page) and closes.
3. The code is exchanged (``client.exchange_code``) and the token stored
   (:class:`~expirytrack_desktop.auth.token.TokenManager`).

:class:`OAuthLogin` runs the three steps with a timeout and a cancel hook. Plain asyncio, no
Qt: the window runs it under qasync, the CLI under ``asyncio.run``.

Every failure is a :class:`~expirytrack_desktop.upstox.errors.LoginError` (subclasses below)
with a message for the user; the code, the state and the secret never appear in one.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import html
import inspect
import logging
import secrets as _random
import webbrowser
from collections.abc import Awaitable, Callable
from typing import Any, Protocol
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

from expirytrack_desktop.auth.credentials import Credentials, LoopbackRedirect, parse_redirect_uri
from expirytrack_desktop.auth.token import TokenInfo, TokenManager
from expirytrack_desktop.settings import DEFAULT_API_BASE
from expirytrack_desktop.upstox.errors import LoginError, UpstoxError
from expirytrack_desktop.upstox.models import TokenGrant

log = logging.getLogger(__name__)

DIALOG_PATH = "/v2/login/authorization/dialog"
LISTEN_HOST = "127.0.0.1"
DEFAULT_TIMEOUT = 300.0
_MAX_REQUEST_HEAD = 16 * 1024
_READ_TIMEOUT = 10.0

Opener = Callable[[str], object]
"""Opens a URL in the user's browser (default :func:`webbrowser.open`); a falsy return
means no browser could be started (the caller then shows the URL). It may also return an
awaitable (a scripted browser: demo mode, tests), which runs beside the wait."""


class LoginCancelledError(LoginError):
    """The user pressed Cancel (or the task was cancelled) before the browser came back."""


class LoginTimeoutError(LoginError):
    """No callback in time: the browser tab was closed, or Upstox showed an error page."""


class StateMismatchError(LoginError):
    """The callback's ``state`` is not ours: a stale tab or a forged request. Nothing kept."""


class PortInUseError(LoginError):
    """The redirect URI's port is taken by another program (or another login)."""


class CallbackError(LoginError):
    """The callback carried ``error=`` (login refused or aborted on Upstox's side)."""


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


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>ExpiryTrack - {title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:4em auto;max-width:36em;color:#222}}
h1{{font-size:1.4em}}</style></head>
<body><h1>{title}</h1><p>{body}</p></body></html>
"""


def _page(title: str, body: str) -> bytes:
    return _PAGE.format(title=html.escape(title), body=html.escape(body)).encode("utf-8")


class LoopbackListener:
    """One-shot HTTP listener on ``127.0.0.1:<redirect port>`` for the OAuth callback.

    ``await start()`` binds (raises :class:`PortInUseError`); ``await wait(timeout)``
    returns the code or raises; the listening socket is closed as soon as the one callback
    on the redirect path arrived (whatever its outcome), and by :meth:`close` in any case.
    Other paths (e.g. ``/favicon.ico``) get a 404 and do not count.
    """

    def __init__(self, redirect: LoopbackRedirect | str, expected_state: str) -> None:
        self.redirect = parse_redirect_uri(redirect) if isinstance(redirect, str) else redirect
        self._state = expected_state
        self._server: asyncio.AbstractServer | None = None
        self._result: asyncio.Future[str] | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handled = False
        self.callbacks_received = 0

    def __repr__(self) -> str:
        return f"<LoopbackListener {LISTEN_HOST}:{self.redirect.port}{self.redirect.path}>"

    @property
    def host(self) -> str:
        return LISTEN_HOST

    @property
    def port(self) -> int:
        return self.redirect.port

    @property
    def is_serving(self) -> bool:
        return self._server is not None and self._server.is_serving()

    async def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._result = loop.create_future()
        try:
            self._server = await asyncio.start_server(
                self._handle, host=LISTEN_HOST, port=self.redirect.port
            )
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, getattr(errno, "WSAEADDRINUSE", -1), 10048):
                raise PortInUseError(
                    f"Port {self.redirect.port} on 127.0.0.1 is already in use (another login "
                    "window, or another program): close it and try again, or register a "
                    "redirect URI with a different port in your Upstox app and run "
                    "`expirytrack configure`."
                ) from None
            if exc.errno in (errno.EACCES, errno.EPERM):
                raise PortInUseError(
                    f"Not allowed to listen on port {self.redirect.port}: use a port above 1024 "
                    "in the redirect URI."
                ) from None
            raise LoginError(
                f"Cannot listen on 127.0.0.1:{self.redirect.port} for the login: {exc.strerror}"
            ) from None
        log.debug("Login listener on %s:%s", LISTEN_HOST, self.redirect.port)

    async def __aenter__(self) -> LoopbackListener:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def wait(self, timeout: float | None = DEFAULT_TIMEOUT) -> str:
        """The authorization code of the one callback; raises on error, timeout or cancel."""
        assert self._result is not None, "start() first"
        try:
            async with asyncio.timeout(timeout):  # wait_for could swallow a cancel (3.11)
                return await asyncio.shield(self._result)
        except TimeoutError:
            raise LoginTimeoutError(
                f"No answer from the browser within {timeout:g} s: the login tab was closed, "
                "or Upstox showed an error there (e.g. UDAPI100068: the API key or redirect URI "
                "does not match your Upstox app). Try again."
            ) from None
        finally:
            if self._result.done():
                await self.close()

    def cancel(self) -> None:
        """Abort the wait (the Cancel button); :meth:`wait` raises LoginCancelledError."""
        self._finish(exc=LoginCancelledError("Login cancelled."))

    async def close(self) -> None:
        """Stop listening and drop any open connection; idempotent."""
        server, self._server = self._server, None
        if server is not None:
            server.close()
            for w in list(self._writers):
                w.close()
            with contextlib.suppress(Exception):
                await server.wait_closed()
            log.debug("Login listener closed")
        if self._result is not None and not self._result.done():
            self._result.cancel()

    def _finish(self, code: str | None = None, exc: LoginError | None = None) -> None:
        if self._result is None or self._result.done():
            return
        if exc is not None:
            self._result.set_exception(exc)
        else:
            self._result.set_result(code or "")
        if self._server is not None:
            self._server.close()  # stop accepting at once; close() finishes the rest

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        try:
            try:
                async with asyncio.timeout(_READ_TIMEOUT):
                    head = await reader.readuntil(b"\r\n\r\n")
            except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError):
                return  # a pre-connect that never spoke, or garbage
            except (ConnectionError, OSError):
                return
            if len(head) > _MAX_REQUEST_HEAD:
                await self._respond(writer, 431, "Request too large", "")
                return
            request_line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = request_line.split(" ")
            if len(parts) != 3 or not parts[2].startswith("HTTP/"):
                await self._respond(writer, 400, "Bad request", "")
                return
            method, target, _version = parts
            url = urlsplit(target)
            if url.path != self.redirect.path or self._handled:
                await self._respond(writer, 404, "Not found", "Nothing here.")
                return
            if method not in ("GET", "HEAD"):
                await self._respond(writer, 405, "Method not allowed", "")
                return
            self._handled = True
            self.callbacks_received += 1
            code, error = self._check(parse_qs(url.query, keep_blank_values=True))
            if error is not None:
                await self._respond(
                    writer, 400, "Login failed", f"{error.message} You can close this tab."
                )
                self._finish(exc=error)
            else:
                await self._respond(
                    writer,
                    200,
                    "Login complete",
                    "Login complete - you can close this tab and return to ExpiryTrack.",
                )
                self._finish(code=code)
        finally:
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _check(self, query: dict[str, list[str]]) -> tuple[str | None, LoginError | None]:
        def one(name: str) -> str:
            values = query.get(name) or [""]
            return values[0]

        if one("error"):
            reason = one("error")[:100]
            detail = one("error_description")[:300]
            text = f"Upstox did not complete the login: {reason}" + (
                f" ({detail})" if detail else ""
            )
            return None, CallbackError(text + ".", code=reason)
        state = one("state")
        if not state or not _random.compare_digest(state.encode(), self._state.encode()):
            return None, StateMismatchError(
                "The login answer did not match this login attempt (state mismatch): it came "
                "from an old browser tab or another program. Nothing was stored; log in again."
            )
        code = one("code")
        if not code:
            return None, CallbackError("Upstox came back without an authorization code.")
        return code, None

    @staticmethod
    async def _respond(writer: asyncio.StreamWriter, status: int, title: str, body: str) -> None:
        reasons = {200: "OK", 400: "Bad Request", 404: "Not Found", 405: "Method Not Allowed"}
        content = _page(title, body or title)
        head = (
            f"HTTP/1.1 {status} {reasons.get(status, 'Error')}\r\n"
            "Content-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(content)}\r\n"
            "Cache-Control: no-store\r\n"
            "Referrer-Policy: no-referrer\r\n"
            "Connection: close\r\n\r\n"
        ).encode("ascii")
        with contextlib.suppress(ConnectionError, OSError):
            writer.write(head + content)
            await writer.drain()


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
        except (StateMismatchError, CallbackError):
            answered = True  # the browser got an error page: let it read it
            raise
        finally:
            await self.listener.close()
            await self._stop_browser(grace=5.0 if answered else 0.0)
        c = self.credentials
        try:
            grant = await self.client.exchange_code(code, c.api_key, c.api_secret, c.redirect_uri)
        except UpstoxError as exc:
            raise friendly_login_error(exc) from None
        return self.tokens.save_grant(grant)

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
