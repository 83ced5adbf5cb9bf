"""Long-run survival tests' parts: the simulator on a loopback port that can go away and come
back on the same port, a log of the candle answers it sent, and a hold on candle requests
(the run is then mid-window for as long as a test needs, however loaded the machine)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections import Counter
from contextlib import closing
from typing import Any

from expirytrack_desktop.sandbox import SimulatorApp
from expirytrack_desktop.sandbox.server import LOOPBACK, make_server

CANDLE = "/historical-candle/"


class CandleLog:
    """Wraps ``app.handle``: counts each candle path the server answered 200 (a request the
    server never answered is not counted), and after ``hold_after`` requests holds every
    further candle request until :meth:`release` (or until the server is stopped). A request
    held when :meth:`cut` is called (its client was killed, the network went away) is not
    counted when it is let go: nobody receives that answer."""

    def __init__(self, app: SimulatorApp, hold_after: int | None = None) -> None:
        self.inner = app.handle
        self.answered: Counter[str] = Counter()
        self.hold_after = hold_after
        self.holding = threading.Event()
        self.released = threading.Event()
        self._lock = threading.Lock()
        self._round = 0
        self._admitted = 0  # candle requests let through before the hold
        app.handle = self.handle  # type: ignore[method-assign]

    async def handle(self, method: str, path: str, query: Any, headers: Any, body: bytes) -> Any:
        round_ = self._round
        if CANDLE in path and self.hold_after is not None:
            # admitted, not answered, decides: with requests in parallel, counting answers let
            # a fifth through while the fourth was being answered, and a kill before its
            # answer was stored made the rerun fetch it again (the test's fault, not the app's)
            with self._lock:
                full = self._admitted >= self.hold_after
                if not full:
                    self._admitted += 1
            if full and not self.released.is_set():
                self.holding.set()
                while not self.released.is_set():
                    await asyncio.sleep(0.01)
        resp = await self.inner(method, path, query, headers, body)
        if CANDLE in path and resp.status == 200 and not resp.drop and round_ == self._round:
            with self._lock:
                self.answered[path] += 1
        return resp

    def cut(self) -> None:
        """The requests held now will never reach their sender."""
        with self._lock:
            self._round += 1

    def release(self) -> None:
        self.released.set()

    def total(self) -> int:
        with self._lock:
            return sum(self.answered.values())

    def twice(self) -> list[str]:
        """Candle paths answered more than once (a refetch)."""
        with self._lock:
            return [p for p, n in self.answered.items() if n > 1]


def free_port() -> int:
    with closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])


class SwitchableServer:
    """The simulator served on one fixed loopback port; :meth:`down` stops it (connections
    are refused, requests in flight get no answer) and :meth:`up` serves it again there."""

    def __init__(self, app: SimulatorApp) -> None:
        self.app = app
        self.port = free_port()
        self.base = f"http://{LOOPBACK}:{self.port}"
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    def up(self) -> None:
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((LOOPBACK, self.port))
        sock.listen(128)
        sock.setblocking(False)
        server = make_server(self.app)
        server.config.timeout_graceful_shutdown = 1
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="sim-switchable", daemon=True
        )
        thread.start()
        while not server.started:
            if not thread.is_alive():
                raise RuntimeError("simulator server did not start")
            time.sleep(0.01)
        self._server, self._thread, self._sock = server, thread, sock

    def down(self) -> None:
        if self._server is None:
            return
        self._server.should_exit = True
        self._server.force_exit = True
        assert self._thread is not None and self._sock is not None
        self._thread.join(timeout=30)
        self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> SwitchableServer:
        self.up()
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()


def stored(db: Any, key: str, expiry: Any) -> dict[str, Any]:
    """Every contract's candles of one expiry, by expired key (to compare two databases)."""
    return {c.expired_key: db.candle_rows(c.expired_key) for c in db.contracts_for(key, expiry)}


def windows_done(db_path: Any) -> int:
    import sqlite3

    with closing(sqlite3.connect(db_path)) as con:
        return int(con.execute("SELECT count(*) FROM fetch_window").fetchone()[0])
