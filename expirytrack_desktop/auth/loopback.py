"""The one-shot loopback listener that receives the browser's OAuth callback.

It binds 127.0.0.1 (only) on the redirect URI's port and serves the redirect path:

- a callback whose ``state`` is not this login's (a stale tab, another program, a forged
  request) is answered 400 and ignored: the login keeps waiting for its own;
- the login's own callback ends the wait: with ``error=`` or without a code it is answered
  at once with the failure; with a code, the browser's page is held open until the owner
  says how the code exchange went (:meth:`LoopbackListener.answer`), so the page never says
  "Login complete" for a login that then fails on a wrong API secret.

Every failure is a :class:`~expirytrack_desktop.upstox.errors.LoginError` with a message for
the user; the code, the state and the secret never appear in one, nor in a log line.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import html
import logging
import secrets as _random
from urllib.parse import parse_qs, urlsplit

from expirytrack_desktop.auth.credentials import LoopbackRedirect, parse_redirect_uri
from expirytrack_desktop.upstox.errors import LoginError

log = logging.getLogger(__name__)

LISTEN_HOST = "127.0.0.1"
DEFAULT_TIMEOUT = 300.0
VERDICT_TIMEOUT = 120.0
"""Seconds the browser's page waits for the code exchange's outcome before saying so."""
_MAX_REQUEST_HEAD = 16 * 1024
_READ_TIMEOUT = 10.0
_CLOSE_GRACE = 5.0  # seconds close()/answer() give the held page to be written


class LoginCancelledError(LoginError):
    """The user pressed Cancel (or the task was cancelled) before the browser came back."""


class LoginTimeoutError(LoginError):
    """No callback in time: the browser tab was closed, or Upstox showed an error page."""


class PortInUseError(LoginError):
    """The redirect URI's port is taken by another program (or another login)."""


class CallbackError(LoginError):
    """The callback carried ``error=`` (login refused or aborted on Upstox's side)."""


_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>ExpiryTrack - {title}</title>
<style>body{{font-family:system-ui,sans-serif;margin:4em auto;max-width:36em;color:#222}}
h1{{font-size:1.4em}}</style></head>
<body><h1>{title}</h1><p>{body}</p></body></html>
"""


_NOT_THIS_LOGIN = (
    "This answer does not belong to the login ExpiryTrack is waiting for (an old browser tab, "
    "or another program); it was ignored. Finish the login in the tab ExpiryTrack opened."
)


def _page(title: str, body: str) -> bytes:
    return _PAGE.format(title=html.escape(title), body=html.escape(body)).encode("utf-8")


class LoopbackListener:
    """One-shot HTTP listener on ``127.0.0.1:<redirect port>`` for the OAuth callback.

    ``await start()`` binds (raises :class:`PortInUseError`); ``await wait(timeout)``
    returns the code or raises; the listening socket is closed as soon as the login's own
    callback arrived (whatever its outcome), and by :meth:`close` in any case. After a code,
    :meth:`answer` writes the page the browser is waiting for (:meth:`close` writes a neutral
    one if nobody did). Other paths (e.g. ``/favicon.ico``) get a 404; callbacks with a wrong
    ``state`` get a 400 (:attr:`rejected` counts them); neither ends the wait.
    """

    def __init__(self, redirect: LoopbackRedirect | str, expected_state: str) -> None:
        self.redirect = parse_redirect_uri(redirect) if isinstance(redirect, str) else redirect
        self._state = expected_state
        self._server: asyncio.AbstractServer | None = None
        self._result: asyncio.Future[str] | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._handled = False
        self._verdict: asyncio.Future[tuple[int, str, str]] | None = None
        self._page_written = asyncio.Event()
        self._holding = False  # a handler holds the browser's page until the verdict
        self.callbacks_received = 0
        self.rejected = 0

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
        self._verdict = loop.create_future()
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
        finally:  # a code's page waits for answer(); any other outcome has been answered
            if self._result.done() and (self._result.cancelled() or self._result.exception()):
                await self.close()

    async def answer(self, ok: bool, message: str) -> None:
        """Tell the browser how the login ended (after the code exchange) and wait briefly
        for the page to be written. Only the first answer counts."""
        title = "Login complete" if ok else "Login failed"
        self._set_verdict(200 if ok else 400, title, message)
        if self._holding:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_CLOSE_GRACE):
                    await self._page_written.wait()

    def _set_verdict(self, status: int, title: str, body: str) -> None:
        if self._verdict is not None and not self._verdict.done():
            self._verdict.set_result((status, title, body))

    def cancel(self) -> None:
        """Abort the wait (the Cancel button); :meth:`wait` raises LoginCancelledError."""
        self._finish(exc=LoginCancelledError("Login cancelled."))

    async def close(self) -> None:
        """Stop listening and drop any open connection; idempotent. A page still waiting for
        :meth:`answer` is told that the login did not finish."""
        if self._verdict is not None and not self._verdict.done():
            await self.answer(False, "ExpiryTrack stopped this login before it finished: return "
                              "to ExpiryTrack and log in again.")  # fmt: skip
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
            query = parse_qs(url.query, keep_blank_values=True)
            if not self._state_matches(query):
                self.rejected += 1
                await self._respond(writer, 400, "Not this login", _NOT_THIS_LOGIN)
                return
            self._handled = True
            self.callbacks_received += 1
            code, error = self._check(query)
            if error is not None:
                await self._respond(
                    writer, 400, "Login failed", f"{error.message} You can close this tab."
                )
                self._finish(exc=error)
                return
            self._holding = True
            self._finish(code=code)
            status, title, body = await self._await_verdict()
            await self._respond(writer, status, title, body)
        finally:
            if self._holding:
                self._page_written.set()
            self._writers.discard(writer)
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    def _state_matches(self, query: dict[str, list[str]]) -> bool:
        state = (query.get("state") or [""])[0]
        return bool(state) and _random.compare_digest(state.encode(), self._state.encode())

    def _check(self, query: dict[str, list[str]]) -> tuple[str | None, LoginError | None]:
        """The login's own callback (its state matched): the code, or why there is none."""

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
        code = one("code")
        if not code:
            return None, CallbackError("Upstox came back without an authorization code.")
        return code, None

    async def _await_verdict(self) -> tuple[int, str, str]:
        assert self._verdict is not None
        try:
            async with asyncio.timeout(VERDICT_TIMEOUT):
                return await asyncio.shield(self._verdict)
        except TimeoutError:
            return (
                504,
                "Login not confirmed",
                "ExpiryTrack has not confirmed the login yet: return to ExpiryTrack to see "
                "whether it worked.",
            )

    @staticmethod
    async def _respond(writer: asyncio.StreamWriter, status: int, title: str, body: str) -> None:
        reasons = {
            200: "OK",
            400: "Bad Request",
            404: "Not Found",
            405: "Method Not Allowed",
            504: "Gateway Timeout",
        }
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
