"""Every request has a whole-answer deadline and a body cap, against real
loopback servers: one that trickles its body 10 bytes at a time, one that streams 600 MB
(generated chunk by chunk, never held), and the real CLI whose run goes on past such a window."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import date
from typing import Any

import pytest

from expirytrack_desktop.sandbox import serve
from expirytrack_desktop.store import open_database
from expirytrack_desktop.upstox.client import UpstoxClient
from expirytrack_desktop.upstox.errors import ServerError
from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec
from tests.collect_helpers import NIFTY, cli_env, make_app

HUGE = 600 * 1024 * 1024
APR_1, APR_24 = date(2025, 4, 1), date(2025, 4, 24)
CHUNK = b"x" * 65536


class Served:
    """What a raw loopback server sent, and how many requests it saw."""

    def __init__(self) -> None:
        self.requests = 0
        self.body_bytes = 0


Handler = Callable[[asyncio.StreamWriter, Served], Awaitable[None]]


@asynccontextmanager
async def raw_server(handler: Handler) -> AsyncIterator[tuple[str, Served]]:
    served = Served()

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if not head:
                    return
                served.requests += 1
                await handler(writer, served)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}", served
    finally:
        server.close()
        await server.wait_closed()


async def trickle(writer: asyncio.StreamWriter, served: Served) -> None:
    """A 100 kB answer at 10 bytes per 0.1 s: each read arrives well within the read timeout."""
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n"
    )
    for _ in range(10000):
        writer.write(b" " * 10)
        await writer.drain()
        served.body_bytes += 10
        await asyncio.sleep(0.1)


async def huge_chunked(writer: asyncio.StreamWriter, served: Served) -> None:
    """600 MB, chunked (no Content-Length to refuse up front), generated as it is sent."""
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    frame = f"{len(CHUNK):x}\r\n".encode() + CHUNK + b"\r\n"
    while served.body_bytes < HUGE:
        writer.write(frame)
        await writer.drain()
        served.body_bytes += len(CHUNK)
    writer.write(b"0\r\n\r\n")
    await writer.drain()


async def huge_declared(writer: asyncio.StreamWriter, served: Served) -> None:
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
        + f"Content-Length: {HUGE}\r\n\r\n".encode()
    )
    while served.body_bytes < HUGE:
        writer.write(CHUNK)
        await writer.drain()
        served.body_bytes += len(CHUNK)


async def _no_sleep(_s: float) -> None:
    return None


def client(base: str, **kw: Any) -> UpstoxClient:
    return UpstoxClient(
        base,
        access_token="t0ken",
        limiter=RateLimiter(RateLimitSpec.parse("100000/1")),
        sleep=_no_sleep,
        **kw,
    )


def test_trickled_body_misses_the_deadline_and_is_retried_once():
    async def run() -> tuple[str, Served, int]:
        async with (
            raw_server(trickle) as (base, served),
            client(base, deadline=1.0, timeout=30.0, max_attempts=5) as c,
        ):
            with pytest.raises(ServerError) as err:
                await c.get_expiries(NIFTY)
            return str(err.value), served, c.requests_sent

    message, served, sent = asyncio.run(run())
    assert "no complete answer within the 1 s request deadline" in message
    assert "request_deadline_s" in message
    assert "failed after 2 attempts" in message
    assert sent == 2 and served.requests == 2  # retried once, not five times
    assert served.body_bytes < 100000  # the answer was abandoned, not waited for
    assert "t0ken" not in message


@pytest.mark.parametrize("handler", [huge_chunked, huge_declared], ids=["chunked", "declared"])
def test_body_over_the_cap_fails_at_once_without_holding_it(handler):
    async def run() -> tuple[ServerError, Served, int]:
        async with (
            raw_server(handler) as (base, served),
            client(base, max_attempts=5) as c,  # the default 64 MB cap
        ):
            with pytest.raises(ServerError) as err:
                await c.get_candles("NSE_FO|1|24-04-2025", "1minute", APR_1, APR_24)
            return err.value, served, c.requests_sent

    exc, served, sent = asyncio.run(run())
    message = str(exc)
    assert "answer larger than the 64 MB cap" in message and "max_response_mb" in message
    assert "/historical-candle/" in message  # names the request
    assert exc.status == 200  # the server answered: not counted as "network down"
    assert sent == 1 and served.requests == 1  # not retried: it would bring the same answer
    assert served.body_bytes < 128 * 1024 * 1024  # reading stopped near the cap
    if handler is huge_declared:
        assert f"Content-Length {HUGE:,}" in message


def test_answers_under_the_limits_pass():
    async def small(writer: asyncio.StreamWriter, served: Served) -> None:
        body = json.dumps({"status": "success", "data": ["2025-04-24"]}).encode()
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()

    async def run() -> list[Any]:
        async with (
            raw_server(small) as (base, _served),
            client(base, deadline=5.0, max_body_bytes=200) as c,
        ):
            return await c.get_expiries(NIFTY)

    assert [d.isoformat() for d in asyncio.run(run())] == ["2025-04-24"]


def test_limits_must_be_positive():
    limiter = RateLimiter(RateLimitSpec.parse("10/1"))
    with pytest.raises(ValueError):
        UpstoxClient("http://127.0.0.1:1", limiter=limiter, deadline=0)
    with pytest.raises(ValueError):
        UpstoxClient("http://127.0.0.1:1", limiter=limiter, max_body_bytes=0)


# ---- the real command: the window fails, the run goes on -----------------------------------


class Stalling:
    """ASGI wrapper around the simulator: every request for the first candle path it sees is
    answered badly (trickled or huge); everything else is the simulator's own answer."""

    def __init__(self, app: Any, mode: str) -> None:
        self.app = app
        self.mode = mode
        self.bad_path: str | None = None
        self.bad_requests = 0

    async def __call__(self, scope: dict, receive: Callable, send: Callable) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and "/historical-candle/" in path:
            if self.bad_path is None:
                self.bad_path = path
            if path == self.bad_path:
                self.bad_requests += 1
                await self._bad(receive, send)
                return
        await self.app(scope, receive, send)

    async def _bad(self, receive: Callable, send: Callable) -> None:
        gone = asyncio.Event()

        async def watch() -> None:
            while (await receive())["type"] != "http.disconnect":
                pass
            gone.set()

        watcher = asyncio.ensure_future(watch())
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        if self.mode == "trickle":
            # 30 kB over 5 minutes unless the client gives up
            for _ in range(3000):
                if gone.is_set():
                    break
                await send({"type": "http.response.body", "body": b" " * 10, "more_body": True})
                await asyncio.sleep(0.1)
        else:
            for _ in range(HUGE // len(CHUNK)):
                if gone.is_set():
                    break
                await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})
        watcher.cancel()


def run_collect(base: str, home, db, exp) -> subprocess.CompletedProcess[str]:
    env = cli_env(home, PYTHONPATH=os.getcwd())
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "expirytrack_desktop.cli.main",
            "collect",
            "-i",
            "NIFTY",
            "-e",
            exp.isoformat(),
            "--concurrency",
            "2",
            "--db",
            str(db),
            "--api-base",
            base,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )


@pytest.mark.parametrize("mode", ["trickle", "huge"])
def test_collect_fails_that_window_and_goes_on(tmp_path, mode):
    app = make_app()
    exp = app.market.expiries(NIFTY)[-1]
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    # 6 s: far above a loopback answer even on a busy machine; 90 days of candles are 1.8 MB
    settings = {"request_deadline_s": 6.0, "max_response_mb": 8}
    (home / "config" / "settings.json").write_text(json.dumps(settings), encoding="utf-8")
    db_path = tmp_path / "limits.sqlite3"
    stalling = Stalling(app, mode)
    with serve(stalling) as base:
        first = run_collect(base, home, db_path, exp)
    assert first.returncode == 4, first.stderr  # finished with failed items
    expected = "request deadline" if mode == "trickle" else "answer larger than the 8 MB cap"
    assert expected in first.stderr
    assert "Traceback" not in first.stderr
    assert stalling.bad_requests == (2 if mode == "trickle" else 1)
    with open_database(db_path) as db:
        states = dict(db.execute("SELECT state, count(*) FROM fetch_window GROUP BY 1"))
    assert (
        states.get("failed") == 1 and states.get("fetched", 0) >= 1
    )  # the other windows were fetched and kept

    (home / "config" / "settings.json").unlink()  # defaults: 120 s, 64 MB
    with serve(app) as base:  # the server behaves again: the same command finishes the job
        second = run_collect(base, home, db_path, exp)
    assert second.returncode == 0, second.stderr
