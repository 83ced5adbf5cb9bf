"""Waiting instead of stopping: a run that lasts days outlives a network outage and the daily
token expiry (03:30 IST) by pausing its sends until the API answers again / a new token is
there, then goes on with the very requests that failed (nothing stored is asked again).

One watch per run and cause: however many requests fail at once, one task probes (network)
or polls the token source (login) and every failed request waits for its outcome. Both are
bounded (``limit`` seconds, ``None`` = for ever); past it the run stops as before
(:class:`~expirytrack_desktop.collect.stopped.RunStopped`, exit 6 / exit 3), resumably.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from expirytrack_desktop.collect.events import StopReason
from expirytrack_desktop.collect.stopped import RunStopped

Notify = Callable[[str | None, str | None], None]
"""``notify(kind, text)``: the run now waits for ``kind`` ("network" / "login") saying
``text``; ``notify(None, None)``: it no longer waits."""


def _limit_text(seconds: float) -> str:
    s = round(seconds)
    if s < 120:
        return f"{s} s"
    if s < 7200:
        return f"{s // 60} min"
    return f"{s / 3600:g} h"


class _Watch:
    """One shared waiting task at a time; every caller awaits its outcome."""

    def __init__(self, notify: Notify, mono: Callable[[], float]) -> None:
        self._notify = notify
        self._mono = mono
        self._task: asyncio.Task[None] | None = None
        self._clear = asyncio.Event()
        self._clear.set()

    @property
    def waiting(self) -> bool:
        return not self._clear.is_set()

    async def clear(self) -> None:
        """Return when no wait is going on (new requests are held back during one)."""
        await self._clear.wait()

    async def _shared(self, make: Callable[[], Awaitable[None]]) -> None:
        if self._task is None or self._task.done():
            self._clear.clear()
            self._task = asyncio.ensure_future(make())
            self._task.add_done_callback(lambda _t: self._clear.set())
        await asyncio.shield(self._task)

    def cancel(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
        self._clear.set()


class NetworkWatch(_Watch):
    """After a request failed at the transport level: probe the API with capped exponential
    backoff (``first`` .. ``cap`` seconds) until it answers; RunStopped(NETWORK) after
    ``limit`` seconds of outage (``None``: wait for ever).

    ``probe()`` returns True when the API answered anything at all (any HTTP status).
    """

    def __init__(
        self,
        probe: Callable[[], Awaitable[bool]],
        *,
        limit: float | None,
        first: float,
        cap: float,
        notify: Notify,
        wall: Callable[[], datetime],
        mono: Callable[[], float],
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        super().__init__(notify, mono)
        self._probe = probe
        self._limit = limit
        self._first = first
        self._cap = cap
        self._wall = wall
        self._sleep = sleep
        self.outages = 0  # outages waited through (the first probe failed)

    async def confirm(self, detail: str) -> None:
        """Return once the API answers (at once if it does now); RunStopped(NETWORK) when it
        stays unreachable for longer than the limit."""
        await self._shared(lambda: self._watch(detail))

    async def _watch(self, detail: str) -> None:
        if await self._probe():
            return  # the API answers: that request failed on its own
        self.outages += 1
        since = self._wall()
        started = self._mono()
        delay = self._first
        try:
            while True:
                waited = self._mono() - started
                if self._limit is not None and waited >= self._limit:
                    raise RunStopped(
                        StopReason.NETWORK,
                        f"the Upstox API cannot be reached ({detail}); waited "
                        f"{_limit_text(waited)} since {since:%H:%M} (--network-wait); check the "
                        "network and rerun: collected data is kept",
                    )
                pause = min(delay, self._cap)
                if self._limit is not None:
                    pause = max(0.0, min(pause, self._limit - waited))
                self._notify(
                    "network",
                    f"waiting for the network since {since:%H:%M}, next try in {pause:.0f} s",
                )
                await self._sleep(pause)
                if await self._probe():
                    return
                delay = min(delay * 2, self._cap)
        finally:
            self._notify(None, None)


class LoginWatch(_Watch):
    """After the token was rejected: poll ``token_source`` every ``poll`` seconds until it
    gives a token other than the rejected one, put it on the client and return;
    RunStopped(NEEDS_LOGIN) after ``limit`` seconds (``None``: wait for ever)."""

    def __init__(
        self,
        token_source: Callable[[], str | None],
        set_token: Callable[[str], None],
        *,
        limit: float | None,
        poll: float,
        notify: Notify,
        mono: Callable[[], float],
        how_to_login: str,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
    ) -> None:
        super().__init__(notify, mono)
        self._source = token_source
        self._set_token = set_token
        self._limit = limit
        self._poll = poll
        self._how = how_to_login
        self._sleep = sleep
        self.logins = 0  # new tokens taken up

    async def new_token(self, rejected: str | None, code: str) -> None:
        """Return once a token other than ``rejected`` is in use."""
        await self._shared(lambda: self._watch(rejected, code))

    def _fresh(self, rejected: str | None) -> str | None:
        token = None
        with contextlib.suppress(Exception):  # a store that cannot be read now: poll again
            token = self._source()
        return token if token and token != rejected else None

    async def _watch(self, rejected: str | None, code: str) -> None:
        started = self._mono()
        try:
            while True:
                token = self._fresh(rejected)
                if token is not None:
                    self._set_token(token)
                    self.logins += 1
                    return
                waited = self._mono() - started
                if self._limit is not None and waited >= self._limit:
                    raise RunStopped(
                        StopReason.NEEDS_LOGIN,
                        f"the access token was rejected or has expired ({code}) and no new "
                        f"login came within {_limit_text(waited)}; log in again and rerun: "
                        "collected data is kept",
                    )
                self._notify(
                    "login",
                    f"needs login: the access token expired or was rejected ({code}); "
                    f"{self._how}; the run continues by itself after the login",
                )
                pause = self._poll
                if self._limit is not None:
                    pause = max(0.0, min(pause, self._limit - waited))
                await self._sleep(pause)
        finally:
            self._notify(None, None)


def window_waits(client: Any) -> dict[str, Any]:
    """The long-run options of the window's engine: wait for the network for ever, and after
    a rejected token for the window's next login (which puts the new token on ``client``)."""
    return {
        "network_wait": None,
        "token_source": lambda: getattr(client, "access_token", None),
        "how_to_login": "log in from the window (Login…) or run `expirytrack login`",
    }


__all__ = ["LoginWatch", "NetworkWatch", "Notify", "window_waits"]
