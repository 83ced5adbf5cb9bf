"""The engine process: builds the engine exactly as the CLI does and serves the window.

It reads :mod:`~expirytrack_desktop.ui.engine_messages` from its pipe and answers with them;
progress events and job ends are pushed as they happen. No Qt is imported here.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from pathlib import Path
from typing import Any

from expirytrack_desktop.collect import CollectJob, Collector, Progress, Selection
from expirytrack_desktop.collect.waiting import window_waits
from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.runtime import Runtime, override
from expirytrack_desktop.store.database import Database
from expirytrack_desktop.ui import engine_messages as m
from expirytrack_desktop.upstox.client import UpstoxClient
from expirytrack_desktop.upstox.factory import process_limiter

log = logging.getLogger(__name__)
STATUS_POLL_S = 0.5  # how often the limiter's waiting state and the counts are looked at


def child_main(conn: Any, config: dict[str, Any]) -> None:
    """Entry point of the engine process: build the engine, serve requests until closed."""
    logging.basicConfig(level=logging.WARNING, format="engine %(levelname)s %(name)s: %(message)s")
    asyncio.run(EngineServer(conn, config).serve())


def build_engine(config: dict[str, Any]) -> tuple[Database, UpstoxClient, Collector]:
    """The engine, wired by the shared Runtime exactly as the CLI wires it."""
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
        # lazy: the simulator pulls in numpy, and only tests ask for a smaller market
        from expirytrack_desktop.sandbox import Market, SimulatorApp

        demo_app = SimulatorApp(Market(**config["market"]), rate_limit=None)
    ledger = config.get("ledger_path")
    with override(demo_app=demo_app, ledger_path=Path(ledger) if ledger else False):
        db = rt.open_db()
        token = rt.access_token() if rt.demo else config.get("token")
        client = rt.make_client(token)
    collector = rt.make_collector(
        db, client, concurrency=int(config.get("concurrency", 8)), **window_waits(client)
    )
    return db, client, collector


class EngineServer:
    """Answers the window's requests on this process's own loop."""

    def __init__(self, conn: Any, config: dict[str, Any]) -> None:
        self.conn = conn
        self.config = config
        self.jobs: dict[int, CollectJob] = {}
        self.tasks: set[asyncio.Task[Any]] = set()
        self._send_lock = threading.Lock()
        self.inbox: asyncio.Queue[m.ToEngine] = asyncio.Queue()

    def send(self, msg: m.FromEngine) -> None:
        with self._send_lock, contextlib.suppress(OSError, ValueError):
            self.conn.send(msg)

    def _reader(self, loop: asyncio.AbstractEventLoop) -> None:
        while True:
            msg: m.ToEngine
            try:
                msg = self.conn.recv()
            except (EOFError, OSError):
                msg = m.CloseEngine(0)  # the window is gone: stop cleanly
            loop.call_soon_threadsafe(self.inbox.put_nowait, msg)
            if isinstance(msg, m.CloseEngine):
                return

    def _progress(self, p: Progress) -> None:
        self.send(m.ProgressEvent(p))

    def _spawn(self, coro: Any) -> None:
        t = asyncio.ensure_future(coro)
        self.tasks.add(t)
        t.add_done_callback(self.tasks.discard)

    async def _watch(self, job: CollectJob) -> None:
        try:
            result = await job.wait()
        except BaseException as exc:  # cancelled at close
            log.debug("job %s ended: %r", job.id, exc)
            return
        self.send(m.JobFinished(job.id, result))

    def _track(self, job: CollectJob) -> int:
        self.jobs[job.id] = job
        self._spawn(self._watch(job))
        return int(job.id)

    async def _call(self, msg: m.Request) -> Any:
        collector = self.collector
        match msg:
            case m.ListExpiries(_, key):
                return await self.client.get_expiries(key)
            case m.EstimateSelection(_, params, concurrency):
                sels = [Selection.from_params(p) for p in params]
                return await collector.estimate(sels, concurrency=concurrency)
            case m.StartJob(_, params, concurrency):
                sel = Selection.from_params(params)
                on = self._progress
                job = await collector.start(sel, on_progress=on, concurrency=concurrency)
                return self._track(job)
            case m.ResumeJob(_, job_id):
                return self._track(await collector.resume(job_id, on_progress=self._progress))
            case m.RetryJob(_, job_id):
                job = await collector.retry_failed(job_id, on_progress=self._progress)
                return self._track(job)
        raise ValueError(f"unknown engine request {type(msg).__name__}")

    async def _answer(self, msg: m.Request) -> None:
        try:
            self.send(m.Reply(msg.req, await self._call(msg)))
        except Exception as exc:
            text = getattr(exc, "message", None) or str(exc) or type(exc).__name__
            self.send(m.Failure(msg.req, type(exc).__name__, text, getattr(exc, "code", None)))

    def _command(self, msg: m.Command) -> None:
        match msg:
            case m.PauseJob(job_id) if job_id in self.jobs:
                self.jobs[job_id].pause()
            case m.UnpauseJob(job_id) if job_id in self.jobs:
                self.jobs[job_id].resume()
            case m.CancelJob(job_id) if job_id in self.jobs:
                self.jobs[job_id].cancel()
            case m.SetToken(token):
                self.client.set_access_token(token)
            case m.SetRateLimit(spec, ledger):
                with contextlib.suppress(ValueError):
                    self.client.limiter = process_limiter(spec, ledger)

    async def _report_status(self) -> None:
        """Tell the window when the limiter starts or stops holding requests back, and how
        many requests this process has sent."""
        last: m.EngineStatus | None = None
        while True:
            status = m.EngineStatus(
                getattr(self.client.limiter, "waiting_until", None),
                self.client.requests_sent,
                getattr(self.client, "retries", 0),
            )
            if status != last:
                self.send(status)
                last = status
            await asyncio.sleep(STATUS_POLL_S)

    async def _close(self, req: int) -> None:
        for job in self.jobs.values():
            if not job.done():
                job.cancel()
        for job in list(self.jobs.values()):
            with contextlib.suppress(BaseException):
                await job.wait()
        for t in list(self.tasks):
            t.cancel()
        with contextlib.suppress(Exception):
            await self.client.aclose()
        self.db.close()
        self.send(m.Reply(req, None))
        self.send(m.EngineClosed())

    async def serve(self) -> None:
        # this process's own loop: blocking while building is fine here
        self.db, self.client, self.collector = build_engine(self.config)
        loop = asyncio.get_running_loop()
        threading.Thread(
            target=self._reader, args=(loop,), name="engine-inbox", daemon=True
        ).start()
        self._spawn(self._report_status())
        while True:
            msg = await self.inbox.get()
            if isinstance(msg, m.CloseEngine):
                await self._close(msg.req)
                return
            if isinstance(msg, m.Request):
                self._spawn(self._answer(msg))
            else:
                self._command(msg)
