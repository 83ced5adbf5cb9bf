"""Run the simulator on a loopback port with uvicorn in a background thread."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

LOOPBACK = "127.0.0.1"


def _bind(host: str, port: int) -> socket.socket:
    if host != LOOPBACK:
        raise ValueError(f"the simulator binds {LOOPBACK} only, not {host!r}")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


def make_server(app: Any, log_level: str = "warning") -> Any:
    import uvicorn

    config = uvicorn.Config(
        app,
        lifespan="off",
        ws="none",
        log_level=log_level,
        access_log=False,
        timeout_graceful_shutdown=2,
    )
    return uvicorn.Server(config)


@contextmanager
def serve(
    app: Any, host: str = LOOPBACK, port: int = 0, *, log_level: str = "warning"
) -> Iterator[str]:
    """Serve ``app`` on ``host:port`` (0 = any free port); yields ``http://127.0.0.1:PORT``."""
    sock = _bind(host, port)
    server = make_server(app, log_level)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="upstox-simulator", daemon=True
    )
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("simulator server did not start")
            time.sleep(0.01)
        yield f"http://{LOOPBACK}:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
