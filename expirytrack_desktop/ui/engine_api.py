"""Where collections run: on the engine thread of this process, or in a child process.

Both expose the same small API to the controller (expiries, estimate, start, resume, retry,
pause/unpause/cancel, wait, token, rate limit, close) and deliver progress to the window's
loop through ``on_progress``. This module imports no Qt (the child process imports it too).

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
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date
from typing import Any

log = logging.getLogger(__name__)

ProgressSink = Callable[[Any], None]


# ----------------------------------------------------------------------------- thread mode
class ThreadEngineApi:
    """Collections on the :class:`EngineThread` loop of this process."""

    def __init__(self, runtime: Any, engine: Any, on_progress: ProgressSink) -> None:
        self.rt = runtime
        self.engine = engine
        self._sink = on_progress

    def _from_engine(self, p: Any) -> None:
        self._sink(p)

    @staticmethod
    def _selection(params: dict[str, Any]) -> Any:
        from expirytrack_desktop.collect import Selection

        return Selection.from_params(params)

    async def expiries(self, key: str) -> list[date]:
        return await self.engine.call(self.rt.client.get_expiries(key))

    async def estimate(self, params: dict[str, Any], concurrency: int) -> Any:
        self.rt.collector.concurrency = concurrency
        return await self.engine.call(self.rt.collector.estimate(self._selection(params)))

    async def start(self, params: dict[str, Any], concurrency: int) -> Any:
        self.rt.collector.concurrency = concurrency
        sel = self._selection(params)
        return await self.engine.call(self.rt.collector.start(sel, on_progress=self._from_engine))

    async def resume(self, job_id: int) -> Any:
        return await self.engine.call(
            self.rt.collector.resume(job_id, on_progress=self._from_engine)
        )

    async def retry(self, job_id: int) -> Any:
        return await self.engine.call(
            self.rt.collector.retry_failed(job_id, on_progress=self._from_engine)
        )

    def pause(self, h: Any) -> None:
        self.engine.call_soon(h.pause)

    def unpause(self, h: Any) -> None:
        self.engine.call_soon(h.resume)

    def cancel(self, h: Any) -> None:
        self.engine.call_soon(h.cancel)

    async def wait(self, h: Any) -> Any:
        return await self.engine.call(h.wait())

    def set_token(self, token: str | None) -> None:
        self.rt.client.set_access_token(token)

    def set_rate_limit(self, spec: str, ledger: str | None) -> None:
        pass  # the controller swaps the limiter of the shared client itself

    async def close(self) -> None:
        pass


# ---------------------------------------------------------------------------- process mode
@dataclass(slots=True)
class JobProxy:
    """The window's view of a job running in the child process."""

    id: int
    state: str = "pending"
    last_progress: Any = None
    result: Any = None
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


class ProcessEngineApi:
    """Collections in a child process (spawned; talks over a pipe)."""

    def __init__(self, config: dict[str, Any], on_progress: ProgressSink) -> None:
        self.config = config
        self._sink = on_progress
        self._loop: asyncio.AbstractEventLoop | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self._jobs: dict[int, JobProxy] = {}
        self._send_lock = threading.Lock()
        self._proc: Any = None
        self._conn: Any = None
        self._reader: threading.Thread | None = None
        self._spawning: asyncio.Future[None] | None = None
        # own threads, not the loop's default executor (qasync's QThreads outlive the app)
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="engine-spawn")

    def spawn(self) -> None:
        """Blocking (spawns the child): call it in a worker thread or before the loop runs."""
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        parent, child = ctx.Pipe()
        self._proc = ctx.Process(
            target=child_main, args=(child, self.config), name="expirytrack-engine", daemon=True
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
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                msg = ("gone",)
            loop = self._loop
            if loop is None or loop.is_closed():
                return
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(self._dispatch, msg)
            if msg[0] in ("gone", "closed"):
                return

    def _dispatch(self, msg: tuple[Any, ...]) -> None:
        kind = msg[0]
        if kind == "result":
            fut = self._pending.pop(msg[1], None)
            if fut is not None and not fut.done():
                fut.set_result(msg[2])
        elif kind == "error":
            fut = self._pending.pop(msg[1], None)
            if fut is not None and not fut.done():
                fut.set_exception(EngineProcessError(msg[2], msg[3], msg[4]))
        elif kind == "progress":
            p = msg[1]
            job = self._jobs.get(p.job_id)
            if job is not None:
                job.last_progress = p
                job.state = str(p.state)
            self._sink(p)
        elif kind == "finished":
            job = self._jobs.get(msg[1])
            if job is not None:
                job.result = msg[2]
                job.state = str(msg[2].state)
                job._done.set()
        elif kind in ("gone", "closed"):
            err = EngineProcessError("EngineGone", "the engine process ended")
            for fut in self._pending.values():
                if not fut.done():
                    fut.set_exception(err)
            self._pending.clear()
            for job in self._jobs.values():
                job._done.set()

    def _send(self, *msg: Any) -> None:
        # remember settings for a (re)spawn
        if msg[:2] == ("do", "token"):
            self.config["token"] = msg[2]
        elif msg[:2] == ("do", "limit"):
            self.config["rate_limit"], self.config["ledger_path"] = msg[2]
        if self._conn is None:
            return
        if msg[0] == "call":
            with self._send_lock:
                self._conn.send(msg)
            return
        with self._send_lock, contextlib.suppress(OSError, ValueError):  # child gone: no-op
            self._conn.send(msg)

    async def _request(self, cmd: str, *args: Any) -> Any:
        await self.ensure_started()
        assert self._loop is not None
        req = next(self._ids)
        fut = self._loop.create_future()
        self._pending[req] = fut
        try:
            self._send("call", req, cmd, args)
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
        return await self._request("expiries", key)

    async def estimate(self, params: dict[str, Any], concurrency: int) -> Any:
        return await self._request("estimate", params, concurrency)

    async def start(self, params: dict[str, Any], concurrency: int) -> JobProxy:
        return self._proxy(await self._request("start", params, concurrency))

    async def resume(self, job_id: int) -> JobProxy:
        return self._proxy(await self._request("resume", job_id))

    async def retry(self, job_id: int) -> JobProxy:
        return self._proxy(await self._request("retry", job_id))

    def pause(self, h: JobProxy) -> None:
        self._send("do", "pause", h.id)

    def unpause(self, h: JobProxy) -> None:
        self._send("do", "unpause", h.id)

    def cancel(self, h: JobProxy) -> None:
        self._send("do", "cancel", h.id)

    async def wait(self, h: JobProxy) -> Any:
        await h._done.wait()
        if h.result is None:
            raise EngineProcessError("EngineGone", "the engine process ended")
        return h.result

    def set_token(self, token: str | None) -> None:
        self._send("do", "token", token)

    def set_rate_limit(self, spec: str, ledger: str | None) -> None:
        self._send("do", "limit", (spec, ledger))

    async def close(self) -> None:
        if self._spawning is not None and not self._spawning.done():
            with contextlib.suppress(Exception):
                await self._spawning
        if self._proc is None:
            self._pool.shutdown(wait=False)
            return
        with contextlib.suppress(Exception):
            async with asyncio.timeout(15):
                await self._request("close")
        await asyncio.get_running_loop().run_in_executor(self._pool, self._proc.join, 5)
        if self._proc.is_alive():
            self._proc.terminate()
        with contextlib.suppress(Exception):
            self._conn.close()
        self._proc = None
        self._pool.shutdown(wait=False)


# ------------------------------------------------------------------------------ the child
def child_main(conn: Any, config: dict[str, Any]) -> None:
    """Entry point of the engine process: build the engine, serve requests until 'close'."""
    logging.basicConfig(level=logging.WARNING, format="engine %(levelname)s %(name)s: %(message)s")
    asyncio.run(_serve(conn, config))


def _build(config: dict[str, Any]) -> tuple[Any, Any, Any]:
    """The engine, wired by the shared Runtime exactly as the CLI wires it."""
    from pathlib import Path

    from expirytrack_desktop.paths import AppPaths
    from expirytrack_desktop.runtime import Runtime, override

    data, conf, logs = config["paths"]
    rt = Runtime.create(
        db=config["db_path"],
        api_base=config.get("api_base"),
        rate_limit=config["rate_limit"],
        demo=bool(config.get("demo")),
        paths=AppPaths(Path(data), Path(conf), Path(logs)),
    )
    demo_app = None
    if config.get("demo") and config.get("market"):  # tests: a smaller demo market
        from expirytrack_desktop.sandbox import Market, SimulatorApp

        demo_app = SimulatorApp(Market(**config["market"]), rate_limit=None)
    ledger = config.get("ledger_path")
    with override(demo_app=demo_app, ledger_path=Path(ledger) if ledger else False):
        db = rt.open_db()
        token = rt.access_token() if rt.demo else config.get("token")
        client = rt.make_client(token)
    collector = rt.make_collector(db, client, concurrency=int(config.get("concurrency", 8)))
    return db, client, collector


async def _serve(conn: Any, config: dict[str, Any]) -> None:
    from expirytrack_desktop.collect import Selection

    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[tuple[Any, ...]] = asyncio.Queue()
    send_lock = threading.Lock()

    def send(*msg: Any) -> None:
        with send_lock, contextlib.suppress(OSError, ValueError):
            conn.send(msg)

    def reader() -> None:
        while True:
            try:
                msg = conn.recv()
            except (EOFError, OSError):
                msg = ("call", 0, "close", ())
            loop.call_soon_threadsafe(inbox.put_nowait, msg)
            if msg[2:3] == ("close",):
                return

    db, client, collector = _build(config)  # this process's own loop: blocking is fine here
    threading.Thread(target=reader, name="engine-inbox", daemon=True).start()
    jobs: dict[int, Any] = {}
    tasks: set[asyncio.Task[Any]] = set()

    def progress(p: Any) -> None:
        send("progress", p)

    async def watch(job: Any) -> None:
        try:
            result = await job.wait()
        except BaseException as exc:  # cancelled at close
            log.debug("job %s ended: %r", job.id, exc)
            return
        send("finished", job.id, result)

    def track(job: Any) -> int:
        jobs[job.id] = job
        t = asyncio.ensure_future(watch(job))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
        return int(job.id)

    async def call(cmd: str, args: tuple[Any, ...]) -> Any:
        if cmd == "expiries":
            return await client.get_expiries(args[0])
        if cmd == "estimate":
            collector.concurrency = int(args[1])
            return await collector.estimate(Selection.from_params(args[0]))
        if cmd == "start":
            collector.concurrency = int(args[1])
            job = await collector.start(Selection.from_params(args[0]), on_progress=progress)
            return track(job)
        if cmd == "resume":
            return track(await collector.resume(args[0], on_progress=progress))
        if cmd == "retry":
            return track(await collector.retry_failed(args[0], on_progress=progress))
        raise ValueError(f"unknown engine command {cmd!r}")

    async def answer(req: int, cmd: str, args: tuple[Any, ...]) -> None:
        try:
            send("result", req, await call(cmd, args))
        except Exception as exc:
            msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            send("error", req, type(exc).__name__, msg, getattr(exc, "code", None))

    while True:
        msg = await inbox.get()
        if msg[0] == "do":
            what, arg = msg[1], msg[2]
            job = jobs.get(arg) if isinstance(arg, int) else None
            if what == "pause" and job is not None:
                job.pause()
            elif what == "unpause" and job is not None:
                job.resume()
            elif what == "cancel" and job is not None:
                job.cancel()
            elif what == "token":
                client.set_access_token(arg)
            elif what == "limit":
                from expirytrack_desktop.upstox.factory import process_limiter

                with contextlib.suppress(ValueError):
                    client.limiter = process_limiter(arg[0], arg[1])
            continue
        _, req, cmd, args = msg
        if cmd == "close":
            for job in jobs.values():
                if not job.done():
                    job.cancel()
            for job in list(jobs.values()):
                with contextlib.suppress(BaseException):
                    await job.wait()
            for t in list(tasks):
                t.cancel()
            with contextlib.suppress(Exception):
                await client.aclose()
            db.close()
            send("result", req, None)
            send("closed")
            return
        t = asyncio.ensure_future(answer(req, cmd, args))
        tasks.add(t)
        t.add_done_callback(tasks.discard)
