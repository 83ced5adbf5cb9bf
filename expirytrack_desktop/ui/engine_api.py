"""Where collections run: on the engine thread of this process, or in a child process.

Both declare :class:`~expirytrack_desktop.ui.engine_protocol.EngineApi` and deliver progress
to the window's loop through the sink they are given. This module imports no Qt.

Why a child process: decoding ~10^4 candles per response and preparing their rows costs the
engine most of a CPU core at the full rate; in a thread of the window's process that work
holds the GIL and the window stalls for tens to hundreds of milliseconds. In its own process
it cannot. The thread mode remains for tests that drive an in-process simulator.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import multiprocessing
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any, cast

from expirytrack_desktop.collect import CollectJob, Estimate, JobResult, Progress, Selection
from expirytrack_desktop.ui import engine_messages as m
from expirytrack_desktop.ui.engine_protocol import EngineApi, JobHandle, ProgressSink
from expirytrack_desktop.ui.engine_thread import EngineThread
from expirytrack_desktop.ui.runtime_adapter import UiRuntime

log = logging.getLogger(__name__)


# ----------------------------------------------------------------------------- thread mode
class ThreadEngineApi(EngineApi):
    """Collections on the :class:`EngineThread` loop of this process."""

    def __init__(self, runtime: UiRuntime, engine: EngineThread, on_progress: ProgressSink) -> None:
        self.rt = runtime
        self.engine = engine
        self._sink = on_progress
        self._jobs: dict[int, CollectJob] = {}

    def _track(self, job: CollectJob) -> CollectJob:
        self._jobs[job.id] = job
        return job

    async def expiries(self, key: str) -> list[date]:
        return cast(list[date], await self.engine.call(self.rt.client.get_expiries(key)))

    async def estimate(self, params: list[dict[str, Any]], concurrency: int) -> Estimate:
        sel = [Selection.from_params(p) for p in params]
        return cast(
            Estimate,
            await self.engine.call(self.rt.collector.estimate(sel, concurrency=concurrency)),
        )

    async def start(self, params: dict[str, Any], concurrency: int) -> JobHandle:
        sel = Selection.from_params(params)
        job = await self.engine.call(
            self.rt.collector.start(sel, on_progress=self._sink, concurrency=concurrency)
        )
        return self._track(job)

    async def resume(self, job_id: int) -> JobHandle:
        job = await self.engine.call(self.rt.collector.resume(job_id, on_progress=self._sink))
        return self._track(job)

    async def retry(self, job_id: int) -> JobHandle:
        collector = self.rt.collector
        job = await self.engine.call(collector.retry_failed(job_id, on_progress=self._sink))
        return self._track(job)

    def pause(self, h: JobHandle) -> None:
        self.engine.call_soon(self._jobs[h.id].pause)

    def unpause(self, h: JobHandle) -> None:
        self.engine.call_soon(self._jobs[h.id].resume)

    def cancel(self, h: JobHandle) -> None:
        self.engine.call_soon(self._jobs[h.id].cancel)

    async def wait(self, h: JobHandle) -> JobResult:
        return await self.engine.call(self._jobs[h.id].wait())

    def budget_wait_until(self) -> float | None:
        return getattr(self.rt.client.limiter, "waiting_until", None)

    def requests_sent(self) -> tuple[int, int]:
        return (0, 0)  # the window's own client does the work: counted there

    def set_token(self, token: str | None) -> None:
        self.rt.client.set_access_token(token)

    def set_rate_limit(self, spec: str, ledger: str | None) -> None:
        pass  # the window swaps the limiter of the shared client itself

    async def close(self) -> None:
        pass


# ---------------------------------------------------------------------------- process mode
@dataclass(slots=True)
class JobProxy:
    """The window's view of a job running in the child process."""

    id: int
    state: str = "pending"
    last_progress: Progress | None = None
    result: JobResult | None = None
    _done: asyncio.Event = field(default_factory=asyncio.Event)

    def done(self) -> bool:
        return self._done.is_set()


class EngineProcessError(RuntimeError):
    """An engine call failed in the child; ``kind`` is the original exception's class name."""

    def __init__(self, kind: str, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.code = code


class ProcessEngineApi(EngineApi):
    """Collections in a child process (spawned on first use; typed messages over a pipe)."""

    def __init__(self, config: dict[str, Any], on_progress: ProgressSink) -> None:
        self.config = config
        self._sink = on_progress
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._jobs: dict[int, JobProxy] = {}
        self._send_lock = threading.Lock()
        self._proc: Any = None  # multiprocessing's SpawnProcess
        self._conn: Any = None  # multiprocessing's Connection
        self._reader: threading.Thread | None = None
        self._spawning: asyncio.Future[None] | None = None
        self._budget_until: float | None = None
        self._sent = (0, 0)  # requests and retries of the engine process's client
        # own threads, not the loop's default executor (qasync's QThreads outlive the app)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-spawn")

    def spawn(self) -> None:
        """Blocking (spawns the child): call it in a worker thread or before the loop runs."""
        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=_child_main, args=(child, self.config), name="expirytrack-engine", daemon=True
        )
        self._proc.start()
        child.close()
        self._conn = parent

    async def ensure_started(self) -> None:
        """Spawn the child on first use (start-up stays fast; a smoke test never pays for it)."""
        if self._conn is not None and self._proc is not None and self._proc.is_alive():
            return
        if self._conn is not None:  # the child died (crash, killed): start a new one
            log.warning("The engine process ended unexpectedly; starting a new one")
            with contextlib.suppress(Exception):
                self._conn.close()
            self._conn = self._proc = self._reader = self._spawning = None
        loop = asyncio.get_running_loop()
        if self._spawning is None:
            self._spawning = loop.run_in_executor(self._pool, self.spawn)
        await asyncio.shield(self._spawning)
        if self._reader is None:
            self.attach(loop)

    def attach(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop
        self._reader = threading.Thread(target=self._read, name="engine-pipe", daemon=True)
        self._reader.start()

    def _read(self) -> None:
        conn = self._conn
        while True:
            msg: m.FromEngine
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                msg = m.EngineGone()
            loop = self._loop
            if loop is None or loop.is_closed():
                return
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._dispatch, msg)
            if isinstance(msg, m.EngineGone | m.EngineClosed):
                return

    def _dispatch(self, msg: m.FromEngine) -> None:
        match msg:
            case m.Reply(req, value):
                fut = self._pending.pop(req, None)
                if fut is not None and not fut.done():
                    fut.set_result(value)
            case m.Failure(req, kind, message, code):
                fut = self._pending.pop(req, None)
                if fut is not None and not fut.done():
                    fut.set_exception(EngineProcessError(kind, message, code))
            case m.ProgressEvent(p):
                job = self._jobs.get(p.job_id)
                if job is not None:
                    job.last_progress = p
                    job.state = str(p.state)
                self._sink(p)
            case m.JobFinished(job_id, result):
                job = self._jobs.get(job_id)
                if job is not None:
                    job.result = result
                    job.state = str(result.state)
                    job._done.set()
            case m.EngineStatus(until, requests, retries):
                self._budget_until = until
                self._sent = (requests, retries)
            case m.EngineClosed() | m.EngineGone():
                self._budget_until = None
                err = EngineProcessError("EngineGone", "the engine process ended")
                for fut in self._pending.values():
                    if not fut.done():
                        fut.set_exception(err)
                self._pending.clear()
                for job in self._jobs.values():
                    job._done.set()

    def _send(self, msg: m.ToEngine) -> None:
        """Send ``msg``; a request raises if the child is gone, a command is dropped."""
        # remember settings for a (re)spawn
        if isinstance(msg, m.SetToken):
            self.config["token"] = msg.token
        elif isinstance(msg, m.SetRateLimit):
            self.config["rate_limit"], self.config["ledger_path"] = msg.spec, msg.ledger
        if self._conn is None:
            return
        if isinstance(msg, m.Request):
            with self._send_lock:
                self._conn.send(msg)
            return
        with self._send_lock, contextlib.suppress(OSError, ValueError):  # child gone: no-op
            self._conn.send(msg)

    async def _request(self, make: Any, *args: Any) -> Any:
        """Send ``make(req, *args)`` (a :class:`Request` class) and await its reply."""
        await self.ensure_started()
        assert self._loop is not None
        req = next(self._ids)
        fut = self._loop.create_future()
        self._pending[req] = fut
        try:
            self._send(make(req, *args))
        except (OSError, ValueError) as exc:
            self._pending.pop(req, None)
            raise EngineProcessError(
                "EngineGone", f"the engine process is not running ({exc})"
            ) from None
        return await fut

    def _proxy(self, job_id: int) -> JobProxy:
        job = JobProxy(job_id)
        self._jobs[job_id] = job
        return job

    async def expiries(self, key: str) -> list[date]:
        return cast(list[date], await self._request(m.ListExpiries, key))

    async def estimate(self, params: list[dict[str, Any]], concurrency: int) -> Estimate:
        return cast(Estimate, await self._request(m.EstimateSelection, params, concurrency))

    async def start(self, params: dict[str, Any], concurrency: int) -> JobHandle:
        return self._proxy(await self._request(m.StartJob, params, concurrency))

    async def resume(self, job_id: int) -> JobHandle:
        return self._proxy(await self._request(m.ResumeJob, job_id))

    async def retry(self, job_id: int) -> JobHandle:
        return self._proxy(await self._request(m.RetryJob, job_id))

    def pause(self, h: JobHandle) -> None:
        self._send(m.PauseJob(h.id))

    def unpause(self, h: JobHandle) -> None:
        self._send(m.UnpauseJob(h.id))

    def cancel(self, h: JobHandle) -> None:
        self._send(m.CancelJob(h.id))

    async def wait(self, h: JobHandle) -> JobResult:
        job = self._jobs[h.id]
        await job._done.wait()
        if job.result is None:
            raise EngineProcessError("EngineGone", "the engine process ended")
        return job.result

    def budget_wait_until(self) -> float | None:
        return self._budget_until

    def requests_sent(self) -> tuple[int, int]:
        return self._sent

    def set_token(self, token: str | None) -> None:
        self._send(m.SetToken(token))

    def set_rate_limit(self, spec: str, ledger: str | None) -> None:
        self._send(m.SetRateLimit(spec, ledger))

    async def close(self) -> None:
        if self._spawning is not None and not self._spawning.done():
            with contextlib.suppress(Exception):
                await self._spawning
        if self._proc is None:
            self._pool.shutdown(wait=False)
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(15):
                await self._request(m.CloseEngine)
        await asyncio.get_running_loop().run_in_executor(self._pool, self._proc.join, 5)
        if self._proc.is_alive():
            self._proc.terminate()
        with contextlib.suppress(Exception):
            self._conn.close()
        self._proc = None
        self._pool.shutdown(wait=False)


def _child_main(conn: Any, config: dict[str, Any]) -> None:
    """The engine process's entry point, imported there only (its modules stay out of the
    window's start-up)."""
    from expirytrack_desktop.ui.engine_child import child_main

    child_main(conn, config)
