"""Background work of the window: named, preemptive asyncio tasks with strong references.

asyncio keeps only weak references to tasks, so a fire-and-forget task can be collected
mid-flight; this manager holds every task until it ends and logs its failure. A *named*
task is preemptive: scheduling the same name again cancels the previous one (a wizard page
reloading its expiries must not race the load it replaces).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar

from expirytrack_desktop.ui.errors import describe_error

log = logging.getLogger(__name__)
T = TypeVar("T")


class TaskManager:
    """Owns the window's background tasks and its small pool for blocking calls."""

    def __init__(self, workers: int = 2, thread_prefix: str = "expirytrack-ui") -> None:
        self._named: dict[str, asyncio.Task[Any]] = {}
        self._all: set[asyncio.Task[Any]] = set()
        self._workers = workers
        self._prefix = thread_prefix
        self._executor: ThreadPoolExecutor | None = None

    def schedule(self, coro: Coroutine[Any, Any, T], name: str | None = None) -> asyncio.Task[T]:
        """Run ``coro`` in the background; a ``name`` cancels the previous task of that name."""
        if name is not None:
            old = self._named.get(name)
            if old is not None and not old.done():
                old.cancel()
        task = asyncio.ensure_future(coro)
        if name is not None:
            self._named[name] = task
        self._all.add(task)
        task.add_done_callback(self._done)
        return task

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._all.discard(task)
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("Background task failed: %s", describe_error(exc), exc_info=exc)

    def pending(self) -> list[asyncio.Task[Any]]:
        return [t for t in self._all if not t.done()]

    def _pool(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(self._workers, thread_name_prefix=self._prefix)
        return self._executor

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking work (keyring, file reads) on this manager's worker threads."""
        return await asyncio.get_running_loop().run_in_executor(self._pool(), fn, *args)

    def submit_blocking(self, fn: Callable[..., T], *args: Any) -> Future[T]:
        """Start blocking work now, without a running loop (await it with asyncio.wrap_future)."""
        return self._pool().submit(fn, *args)

    async def cancel_all(self) -> None:
        """Cancel every task and wait for them to end."""
        tasks = self.pending()
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t

    def shutdown(self) -> None:
        """Release the worker threads (after :meth:`cancel_all`)."""
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
        self._executor = None
