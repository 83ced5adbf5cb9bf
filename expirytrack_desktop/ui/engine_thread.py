"""The engine's own asyncio loop, in a worker thread.

Why: the engine does real CPU work on its loop — decoding large JSON candle responses and
turning them into tuples takes ~0.1 s per request, several per second at the full rate —
which would freeze the window if it ran on the Qt/qasync loop. So the collector, the HTTP
client, the OAuth listener and the token calls run on this loop; the window's loop only
awaits their results (``call``) and receives progress events marshalled back to it.
The GIL is released to the GUI thread every switch interval, so the window keeps painting.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

log = logging.getLogger(__name__)
T = TypeVar("T")
SWITCH_INTERVAL = 0.001


class EngineThread:
    def __init__(self, name: str = "expirytrack-engine") -> None:
        self.name = name
        self.loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def start(self) -> None:
        if self._thread is not None:
            return
        # Hand the GIL over more often (default 5 ms) so the GUI thread, when it wakes for a
        # timer or a paint, waits less behind the engine's JSON decoding and the writer.
        if sys.getswitchinterval() > SWITCH_INTERVAL:
            sys.setswitchinterval(SWITCH_INTERVAL)
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()
        self._ready.wait(10)

    def _main(self) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        self.loop = loop
        self._ready.set()
        try:
            loop.run_forever()
        finally:
            pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in pending:
                t.cancel()
            if pending:
                with contextlib.suppress(Exception):
                    loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            with contextlib.suppress(Exception):
                loop.run_until_complete(loop.shutdown_asyncgens())
            loop.close()

    @property
    def running(self) -> bool:
        return self.loop is not None and self._thread is not None and self._thread.is_alive()

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on the engine loop; await its result from the calling (GUI) loop."""
        if not self.running:
            coro.close()
            raise RuntimeError("the engine thread is not running")
        assert self.loop is not None
        fut = asyncio.run_coroutine_threadsafe(coro, self.loop)
        try:
            return await asyncio.wrap_future(fut)
        except asyncio.CancelledError:
            fut.cancel()
            raise

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        if self.running:
            assert self.loop is not None
            with contextlib.suppress(RuntimeError):  # loop closing
                self.loop.call_soon_threadsafe(fn, *args)

    def stop(self, timeout: float = 10.0) -> None:
        if self.loop is not None and self._thread is not None:
            with contextlib.suppress(RuntimeError):
                self.loop.call_soon_threadsafe(self.loop.stop)
            self._thread.join(timeout)
        self._thread = None
