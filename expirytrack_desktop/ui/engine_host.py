"""Hosts the engine for the window: the runtime (database, client), the engine thread and
the :class:`~expirytrack_desktop.ui.engine_protocol.EngineApi` that runs collections.

Everything the window asks of the engine goes through here, so the rest of ``ui/`` never
cares whether collections run in a child process (the app) or on a thread (tests).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Coroutine
from concurrent.futures import Future
from pathlib import Path
from typing import Any, TypeVar

from expirytrack_desktop.collect import Progress
from expirytrack_desktop.ui.engine_api import ProcessEngineApi, ThreadEngineApi
from expirytrack_desktop.ui.engine_protocol import EngineApi, ProgressSink
from expirytrack_desktop.ui.engine_thread import EngineThread
from expirytrack_desktop.ui.errors import describe_error
from expirytrack_desktop.ui.runtime_adapter import UiRuntime, build_runtime
from expirytrack_desktop.ui.services import Services
from expirytrack_desktop.ui.signals import ControllerSignals
from expirytrack_desktop.ui.tasks import TaskManager
from expirytrack_desktop.upstox.factory import process_limiter

log = logging.getLogger(__name__)
T = TypeVar("T")


class EngineHost:
    """Opens the engine off the window's loop and keeps it until :meth:`aclose`."""

    def __init__(
        self,
        services: Services,
        tasks: TaskManager,
        signals: ControllerSignals,
        runtime_factory: Callable[[], UiRuntime] | None = None,
    ) -> None:
        self.services = services
        self.tasks = tasks
        self.signals = signals
        self.runtime_factory = runtime_factory
        self.runtime: UiRuntime | None = None
        self.api: EngineApi | None = None
        self.engine_error: str | None = None
        self.engine = EngineThread()
        self.gui_loop: asyncio.AbstractEventLoop | None = None
        self._ready = asyncio.Event()
        self._prepared: Future[UiRuntime] | None = None

    def prepare(self) -> None:
        """Begin opening the database and building the client now, on a worker thread, so
        that work overlaps the window's construction; :meth:`start` takes the result."""
        if self._prepared is None and self.runtime is None:
            self._prepared = self.tasks.submit_blocking(self._build_runtime)

    async def start(self, on_progress: ProgressSink) -> bool:
        """Open the database, build client and collector (off the loop), start the engine API.

        Returns False (and emits ``engineFailed``) when the database cannot be opened.
        """
        self.gui_loop = asyncio.get_running_loop()
        try:
            self.engine.start()
            prepared, self._prepared = self._prepared, None
            if prepared is not None:
                self.runtime = await asyncio.wrap_future(prepared)
            else:
                self.runtime = await self.tasks.run_blocking(self._build_runtime)
        except Exception as exc:
            self.engine_error = describe_error(exc)
            log.error("Could not open the engine: %s", self.engine_error)
            self.signals.engineFailed.emit(self.engine_error)
            self._ready.set()
            return False
        try:
            self.api = self._make_api(self.runtime, on_progress)
        except Exception as exc:
            self.engine_error = "the collection engine did not start: " + describe_error(exc)
            log.error("%s", self.engine_error)
        return True

    def set_ready(self) -> None:
        self._ready.set()

    async def ready(self) -> UiRuntime:
        await self._ready.wait()
        if self.runtime is None:
            raise RuntimeError(self.engine_error or "the engine is not available")
        return self.runtime

    def engine_mode(self) -> str:
        """'process' (the app) or 'thread' (tests with an injected runtime, or on request)."""
        if self.runtime_factory is not None:
            return "thread"
        return os.environ.get("EXPIRYTRACK_ENGINE", "process")

    def require_api(self) -> EngineApi:
        if self.api is None:
            raise RuntimeError(self.engine_error or "the collection engine is not running")
        return self.api

    async def call(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run an engine coroutine on the engine thread's loop and await its result."""
        return await self.engine.call(coro)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        self.engine.call_soon(fn, *args)

    def to_gui(self, fn: Callable[..., Any], *args: Any) -> None:
        """From the engine thread: run ``fn(*args)`` on the window's loop."""
        loop = self.gui_loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(fn, *args)

    def ledger_path(self) -> Path | None:
        return self.services.runtime().ledger_path  # type: ignore[no-any-return]

    def push_token(self, token: str | None) -> None:
        """Give the collection engine the token (demo: the simulator's own demo token)."""
        if self.api is None:
            return
        if self.services.demo and token and self.engine_mode() == "process":
            # lazy: the simulator package pulls in numpy, which only demo mode needs
            from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN

            token = DEMO_ACCESS_TOKEN  # the child's simulator does not know this process's
        self.api.set_token(token)

    def apply_rate_limit(self) -> None:
        """Settings saved: the new rate limit for this process's client and the engine's."""
        rt = self.runtime
        if rt is None:
            return
        s = self.services
        ledger = self.ledger_path()
        spec = s.settings.resolved_rate_limit(s.options.rate_limit)
        limiter = process_limiter(spec, ledger)
        rt.limiter = limiter
        rt.client.limiter = limiter
        if self.api is not None:
            self.api.set_rate_limit(spec, None if ledger is None else str(ledger))

    def _make_api(self, rt: UiRuntime, on_progress: ProgressSink) -> EngineApi:
        if self.engine_mode() == "thread":

            def from_engine_thread(p: Progress) -> None:
                self.to_gui(on_progress, p)  # at most ~10 events/s per job

            return ThreadEngineApi(rt, self.engine, from_engine_thread)
        s = self.services
        rt_conf = s.runtime()
        ledger = self.ledger_path()
        config = {
            "paths": (str(s.paths.data_dir), str(s.paths.config_dir), str(s.paths.log_dir)),
            "db_path": str(rt_conf.db_path),
            "api_base": s.options.api_base,
            "rate_limit": rt_conf.rate_limit,
            "ledger_path": None if ledger is None else str(ledger),
            "demo": s.demo,
            "concurrency": s.settings.concurrency,
            "market": s.extra.get("demo_market"),
        }
        return ProcessEngineApi(config, on_progress)  # spawned on first use

    def _build_runtime(self) -> UiRuntime:
        if self.runtime_factory is not None:
            return self.runtime_factory()
        s = self.services
        rt = s.runtime()
        return build_runtime(
            db_path=rt.db_path,
            api_base=rt.api_base,
            rate_limit=rt.rate_limit,
            ledger_path=rt.ledger_path,
            secrets_fallback=s.paths.secrets_fallback_path,
            demo=s.demo,
            concurrency=s.settings.concurrency,
            passphrase=_no_passphrase,
            paths=s.paths,
        )

    async def aclose(self) -> None:
        """Close the engine API (its process), the runtime's client and database, the thread."""
        prepared, self._prepared = self._prepared, None
        if prepared is not None:  # prepared, never started (the window failed to build)
            with contextlib.suppress(Exception):
                (await asyncio.wrap_future(prepared)).db.close()
        if self.api is not None:
            with contextlib.suppress(Exception):
                await self.api.close()
        if self.runtime is not None and self.engine.running:
            with contextlib.suppress(Exception):
                await self.call(self.runtime.aclose())
        await self.tasks.run_blocking(self.engine.stop)


def _no_passphrase(creating: bool) -> str | None:
    # The store asks synchronously; the window unlocks it beforehand with a dialog
    # (AuthService.ensure_unlocked), so a call here means "not unlocked": cancel.
    return None
