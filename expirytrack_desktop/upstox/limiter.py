"""One sliding-window rate limiter for everything a process (and, through the ledger,
every process of the user) sends to Upstox.

Upstox enforces 50/s, 500/min and 2000/30 min at once and may suspend an account that
exceeds them, so a 429 must never be the normal path: ``acquire()`` waits until one more
request keeps *every* window under its limit, and returns a ``Permit`` whose ``release()``
records when the answer came back.

Why that is enough even though the server counts *arrival* times: a request occupies the
windows from its send until its answer (see ``ledger.py``), and its arrival lies in
between, so latency and bunched arrivals cannot create an excess. On top, each window is
treated as ``margin`` seconds (default 0.1 s) longer than nominal, for server-side
timestamps taken a little after the arrival and clock-rate differences. Cost: on the
1-second window one latency + 0.1 s per 50 requests; on the minute and half-hour windows
well under 1 %.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
import weakref
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from dataclasses import dataclass, field

from .ledger import Ledger, MemoryLedger

DEFAULT_MARGIN_S = 0.1
# While waiting on an in-flight request, look again this often: its answer may free a slot.
DEFAULT_POLL_S = 0.02
# Bounds of a rate-limit spec (see RateLimitSpec.parse for why).
MAX_LIMIT = 100_000
MIN_WINDOW_S = 0.1
MAX_WINDOW_S = 86_400.0
MAX_WINDOWS = 8


class RateLimitSpecError(ValueError):
    """A rate-limit spec that cannot be used (one line, shown to the user: exit code 2)."""


class SendWithheld(Exception):
    """The request was not sent: its :class:`SendScope` says the sender has stopped."""


@dataclass(frozen=True, slots=True)
class SendScope:
    """How the requests of the current task (a context variable, :data:`SEND_SCOPE`) are sent.

    ``priority``: when several tasks wait for a slot, the lowest goes first (ties in arrival
    order); a collection gives each candle window its expiry's ordinal, so the data that
    vanishes first from Upstox is fetched first. Requests with no scope have priority 0 (expiry
    and contract lists, lookups a person waits for). ``may_send``: asked just before a slot is
    taken; False raises :class:`SendWithheld` instead of sending. ``on_send``/``on_answer``:
    called when a request of this scope takes a slot / gets its answer (or failure).
    """

    priority: int = 0
    may_send: Callable[[], bool] | None = None
    on_send: Callable[[], None] | None = None
    on_answer: Callable[[], None] | None = None


SEND_SCOPE: ContextVar[SendScope | None] = ContextVar("expirytrack_send_scope", default=None)


@dataclass(slots=True)
class _Queue:
    """The tasks of one event loop waiting for a slot: a heap of (priority, arrival)."""

    heap: list[tuple[int, int]] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def wake(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


@dataclass(frozen=True, slots=True)
class RateLimitSpec:
    """``windows`` = ((limit, seconds), ...), e.g. ((50, 1.0), (500, 60.0), (2000, 1800.0))."""

    windows: tuple[tuple[int, float], ...]

    @classmethod
    def parse(cls, text: str) -> RateLimitSpec:
        """Parse ``"50/1,500/60,2000/1800"`` (requests/seconds, comma-separated).

        The one parser of the CLI flag, the environment, settings.json and the window.
        Bounds (:class:`RateLimitSpecError`, one line, otherwise): 1 to 100,000 requests per
        window, windows from 0.1 second to 1 day, at most 8 windows. Shorter windows are below
        the limiter's 0.1 s margin and the server's clock resolution (``50/1e-9`` would switch
        throttling off); longer ones (``1/86400000000``) would wait for ever without a word;
        more than 100,000 requests per window (``999999999999/1``) is no limit at all.
        """
        if text is None or not str(text).strip():
            raise RateLimitSpecError("rate limit is empty: expected e.g. '50/1,500/60,2000/1800'")
        windows: list[tuple[int, float]] = []
        parts = str(text).split(",")
        if len(parts) > MAX_WINDOWS:
            raise RateLimitSpecError(f"rate limit has {len(parts)} windows; at most {MAX_WINDOWS}")
        for part in parts:
            item = part.strip()
            pieces = item.split("/")
            if len(pieces) != 2:
                raise RateLimitSpecError(
                    f"rate limit part {item!r} is not 'requests/seconds' (e.g. '500/60')"
                )
            try:
                limit = int(pieces[0].strip())
                seconds = float(pieces[1].strip())
            except ValueError:
                raise RateLimitSpecError(
                    f"rate limit part {item!r}: requests must be an integer and seconds a number"
                ) from None
            if not 1 <= limit <= MAX_LIMIT:
                raise RateLimitSpecError(
                    f"rate limit part {item!r}: requests per window must be between 1 and "
                    f"{MAX_LIMIT:,}"
                )
            if not MIN_WINDOW_S <= seconds <= MAX_WINDOW_S:  # also refuses nan
                raise RateLimitSpecError(
                    f"rate limit part {item!r}: a window must last from {MIN_WINDOW_S:g} to "
                    f"{MAX_WINDOW_S:g} seconds (one day)"
                )
            if any(seconds == s for _, s in windows):
                raise RateLimitSpecError(f"rate limit names the {seconds:g}-second window twice")
            windows.append((limit, seconds))
        windows.sort(key=lambda w: w[1])
        return cls(tuple(windows))

    def __str__(self) -> str:
        return ",".join(f"{limit}/{seconds:g}" for limit, seconds in self.windows)


class Permit:
    """One granted send. Call ``release()`` when the answer (or the failure) arrived; it is
    idempotent. Also a context manager (``with await limiter.acquire(): ...``)."""

    __slots__ = ("_limiter", "_on_answer", "_released", "ticket")

    def __init__(
        self, limiter: RateLimiter, ticket: int, on_answer: Callable[[], None] | None = None
    ) -> None:
        self._limiter = limiter
        self.ticket = ticket
        self._released = False
        self._on_answer = on_answer

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._limiter.ledger.complete(self.ticket, self._limiter.now())
            if self._on_answer is not None:
                self._on_answer()

    def __enter__(self) -> Permit:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()


class RateLimiter:
    """Sliding windows over a ledger; fair across any number of asyncio tasks: by priority
    (:class:`SendScope`), then in arrival order. The head's priority goes to the ledger, which
    lets a more urgent waiter of another process sharing the budget go first (``ledger.py``)."""

    def __init__(
        self,
        spec: RateLimitSpec,
        *,
        clock: Callable[[], float] = time.time,
        sleep: Callable[[float], Awaitable[object]] = asyncio.sleep,
        ledger: Ledger | None = None,
        margin: float = DEFAULT_MARGIN_S,
        poll: float = DEFAULT_POLL_S,
    ) -> None:
        if margin < 0:
            raise ValueError("margin must be >= 0")
        self.spec = spec
        self.margin = margin
        self.poll = poll
        self.ledger: Ledger = ledger if ledger is not None else MemoryLedger()
        self.clock = clock
        self._sleep = sleep
        self._effective = tuple((limit, seconds + margin) for limit, seconds in spec.windows)
        # asyncio primitives bind to one loop; keep one waiting queue per loop.
        self._queues: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Queue] = (
            weakref.WeakKeyDictionary()
        )
        self._arrivals = itertools.count()
        self._last_now = float("-inf")
        self._skew = 0.0  # added to clock() since the clock was set back
        self.acquired = 0
        self.waited_s = 0.0
        # While the head of the queue sleeps for budget: when it expects to send (clock time).
        # Read by whoever reports progress (the window says "waiting for API budget until").
        self.waiting_until: float | None = None

    def now(self) -> float:
        """``clock()``, but never going back. When the wall clock is set back (NTP, a machine
        resumed with a wrong clock) time goes on from where it was: the sends already made
        keep counting for their true age, and no wait lasts as long as the jump. A jump
        forward (suspend) is time that really passed: the windows slide by it."""
        t = self.clock() + self._skew
        if t < self._last_now:
            self._skew += self._last_now - t
            t = self._last_now
        self._last_now = t
        return t

    def _queue(self) -> _Queue:
        loop = asyncio.get_running_loop()
        queue = self._queues.get(loop)
        if queue is None:
            queue = self._queues[loop] = _Queue()
        return queue

    async def acquire(self) -> Permit:
        """Return once a request may be sent now; the send is recorded in the ledger.

        Waiting tasks form a queue ordered by their scope's priority, then arrival: only the
        head asks the ledger (and sleeps until a slot frees), so a waiting task is never
        overtaken by a later one of the same or a lower priority. SendWithheld when the
        current :class:`SendScope` no longer lets its task send.
        """
        scope = SEND_SCOPE.get()
        queue = self._queue()
        me = (scope.priority if scope is not None else 0, next(self._arrivals))
        heapq.heappush(queue.heap, me)
        try:
            while True:
                if queue.heap[0] != me:
                    await queue.changed.wait()
                    continue
                if scope is not None and scope.may_send is not None and not scope.may_send():
                    raise SendWithheld("the sender stopped: request not sent")
                now = self.now()
                ticket, wait, on_inflight = self.ledger.reserve(
                    now, self._effective, priority=me[0]
                )
                if ticket is not None:
                    self.acquired += 1
                    self.waiting_until = None
                    if scope is not None and scope.on_send is not None:
                        scope.on_send()
                    return Permit(self, ticket, scope.on_answer if scope is not None else None)
                self.waiting_until = now - self._skew + wait  # at the latest, on clock()
                if on_inflight:
                    wait = min(wait, self.poll)
                self.waited_s += wait
                await self._sleep(wait)
        finally:
            queue.heap.remove(me)
            heapq.heapify(queue.heap)
            if not queue.heap:
                self.waiting_until = None
                if not any(q.heap for q in self._queues.values()):
                    self.ledger.idle()  # nothing of this process waits: withdraw its priority
            queue.wake()

    def usage(self) -> list[tuple[float, int, int]]:
        """``[(window_seconds, used, limit), ...]`` over the nominal windows, for a status bar."""
        spans = [seconds for _, seconds in self.spec.windows]
        used = self.ledger.counts(self.now(), spans)
        return [
            (seconds, n, limit) for (limit, seconds), n in zip(self.spec.windows, used, strict=True)
        ]

    def __repr__(self) -> str:
        return f"RateLimiter({str(self.spec)!r}, margin={self.margin})"
