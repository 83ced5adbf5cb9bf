"""Every API call of a run goes through its gate: pause, stop, the errors that end a run,
and the answers already on their way when it ends (committed, not thrown away).

The gate counts the requests of its run that are in flight (sent, answer not yet in) and the
answers being written. When the run stops (token expired, network down, cancel) it sends
nothing more (:class:`~expirytrack_desktop.upstox.limiter.SendScope`), lets what is in flight
arrive and be committed, then cancels the workers still waiting for a slot.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any, TypeVar

from expirytrack_desktop.collect.events import StopReason
from expirytrack_desktop.collect.stopped import RunStopped
from expirytrack_desktop.collect.waiting import LoginWatch, NetworkWatch
from expirytrack_desktop.upstox.errors import AuthError, PlanRequiredError, ServerError
from expirytrack_desktop.upstox.limiter import SEND_SCOPE, SendScope

T = TypeVar("T")

DRAIN_POLL = 0.01  # seconds between looks at the requests still in flight after a stop


def network_stop(detail: str) -> RunStopped:
    return RunStopped(
        StopReason.NETWORK,
        f"the Upstox API cannot be reached ({detail}); check the network "
        "and rerun: collected data is kept",
    )


class ApiGate:
    """Pause, stop and the guarded calls of one run.

    ``net_failure_limit``: consecutive transport failures that stop the run as "network"
    (when it does not wait for the network); ``drain_timeout``: the longest wait, after a
    stop, for requests already sent. ``network`` / ``login``: wait for the network / a new
    token instead of stopping (:meth:`request`); ``token_in_use``: the client's token now.
    """

    def __init__(
        self,
        *,
        net_failure_limit: int,
        drain_timeout: float,
        network: NetworkWatch | None = None,
        login: LoginWatch | None = None,
        token_in_use: Callable[[], str | None] = lambda: None,
    ) -> None:
        self._network = network
        self._login = login
        self._token_in_use = token_in_use
        self._ever_answered = False
        self._open = asyncio.Event()
        self._open.set()
        self._halted = False
        self._was_paused = False
        self._net_failures = 0
        self._net_failure_limit = net_failure_limit
        self._drain_timeout = drain_timeout
        self._busy = 0  # requests in flight + answers being committed

    # ---- pause and stop ---------------------------------------------------------------------

    @property
    def halted(self) -> bool:
        """The run is stopping: no further item, no further request."""
        return self._halted

    @property
    def net_failures(self) -> int:
        return self._net_failures

    @property
    def was_paused(self) -> bool:
        """The run was paused at least once (other jobs may have taken its windows since)."""
        return self._was_paused

    def pause(self) -> None:
        self._open.clear()
        self._was_paused = True

    def unpause(self) -> None:
        self._open.set()

    def halt(self) -> None:
        self._halted = True
        self._open.set()
        for watch in (self._network, self._login):
            if watch is not None:
                watch.cancel()

    @property
    def waits_for_network(self) -> bool:
        """A transport failure makes this run wait for the network instead of stopping: it
        may (a probe is possible and waiting is on) and the API has answered it before (a
        run that never got through has a wrong address or no network at all: it stops)."""
        return self._network is not None and self._ever_answered

    async def wait_open(self) -> None:
        """Return when the run is not paused."""
        await self._open.wait()

    # ---- what is in flight ------------------------------------------------------------------

    def scope(self, priority: int = 0) -> SendScope:
        """The send scope of this run's requests (see :class:`SendScope`)."""
        return SendScope(
            priority=priority,
            may_send=self._may_send,
            on_send=self._enter,
            on_answer=self._leave,
        )

    def enter_scope(self, priority: int = 0) -> None:
        """Send the current task's requests in this run's scope with ``priority``."""
        SEND_SCOPE.set(self.scope(priority))

    def _may_send(self) -> bool:
        return not self._halted

    def _enter(self) -> None:
        self._busy += 1

    def _leave(self) -> None:
        self._busy -= 1

    @contextlib.asynccontextmanager
    async def committing(self) -> AsyncIterator[None]:
        """Around the write of an answer that arrived: a stop waits for it to finish."""
        self._enter()
        try:
            yield
        finally:
            self._leave()

    async def _drain(self) -> None:
        """After a stop: wait (at most ``drain_timeout``) until no request is in flight and no
        answer is being written."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._drain_timeout
        while self._busy > 0 and loop.time() < deadline:
            await asyncio.sleep(DRAIN_POLL)

    # ---- calls ------------------------------------------------------------------------------

    async def call(self, aw: Coroutine[Any, Any, T], *, answered: bool = True) -> T:
        """Await one API call, turning run-stopping errors into :class:`RunStopped`.

        ``answered=False``: the awaitable signals answers itself (:meth:`answered`), e.g. a
        window fetch that also writes, so a late success does not hide newer net failures.
        """
        await self._open.wait()
        if self._halted:
            aw.close()
            raise asyncio.CancelledError
        try:
            result = await aw
        except AuthError as exc:
            raise RunStopped(
                StopReason.NEEDS_LOGIN,
                f"the access token was rejected or has expired ({exc.code or 'HTTP 401'}); "
                "log in again and rerun: collected data is kept",
                exc.code or "HTTP 401",
            ) from None
        except PlanRequiredError:
            raise RunStopped(
                StopReason.PLAN_REQUIRED,
                "the expired-instrument APIs need an Upstox Plus subscription (UDAPI1149)",
            ) from None
        except ServerError as exc:
            if exc.status is None and exc.code is None:
                self._net_failures += 1
                if self._net_failures >= self._net_failure_limit and not self.waits_for_network:
                    raise network_stop(exc.message) from None
            raise
        if answered:
            self.answered()
        return result

    async def request(
        self, make: Callable[[], Coroutine[Any, Any, T]], *, answered: bool = True
    ) -> T:
        """:meth:`call` of ``make()``, but a request that fails because the network is down or
        the token expired waits (see ``collect/waiting.py``) and is then sent again, instead
        of failing its item or stopping the run. New requests are held back while a wait is
        on. A request that fails at the transport level while the API answers probes is
        sent once more, then fails its item as before."""
        alone = 0  # transport failures of this request while the API answered probes
        while True:
            await self._waits_over()
            token = self._token_in_use()
            try:
                return await self.call(make(), answered=answered)
            except ServerError as exc:
                if not _transport(exc) or not self.waits_for_network or alone >= 1:
                    raise
                assert self._network is not None
                outages = self._network.outages
                await self._network.confirm(exc.message)
                if self._network.outages == outages:
                    alone += 1
            except RunStopped as stop:
                if stop.reason != StopReason.NEEDS_LOGIN or self._login is None:
                    raise
                if self._token_in_use() == token:  # not replaced since this request was sent
                    await self._login.new_token(token, stop.code or "HTTP 401")
            if self._halted:
                raise asyncio.CancelledError

    async def _waits_over(self) -> None:
        for watch in (self._network, self._login):
            if watch is not None and watch.waiting:
                await watch.clear()
        await self._open.wait()

    def answered(self) -> None:
        """The API answered: the network is up."""
        self._net_failures = 0
        self._ever_answered = True

    async def gather(self, coros: list[Coroutine[Any, Any, None]]) -> None:
        """Run coroutines as tasks; the first exception (RunStopped, StoreError, cancel) stops
        the run: nothing more is sent, answers in flight are committed, then the rest are
        cancelled and the exception re-raised."""
        tasks = [asyncio.ensure_future(c) for c in coros]
        try:
            for fut in asyncio.as_completed(tasks):
                await fut
        except BaseException:
            # The flag, not only cancel(): a cancellation can be swallowed below us (Python
            # 3.11's asyncio.wait_for returns a result that was ready instead of raising), and
            # a worker that lost it must still stop at its next item.
            self.halt()
            await self._drain()
            raise
        finally:
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


def _transport(exc: ServerError) -> bool:
    """The request got no HTTP answer at all (refused, reset, timed out)."""
    return exc.status is None and exc.code is None


async def given(value: Any) -> Any:
    """An awaitable of a value already known (raised if it is an exception)."""
    if isinstance(value, BaseException):
        raise value
    return value


__all__ = ["ApiGate", "RunStopped", "given", "network_stop"]
