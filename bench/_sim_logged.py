"""The simulator as its own process, logging every request to a file (not a benchmark itself).

Benchmarks that judge a run from the simulator's side (rate windows, 429s, the order of the
candle requests) start this instead of ``python -m expirytrack_desktop.sandbox``: the same
options, plus ``--request-log FILE``, one tab-separated line per answered request::

    arrived_epoch  done_epoch  status  path?query

``arrived`` is taken when the request reaches the app (before any injected latency), ``done``
when its answer is ready. Lines are flushed as written, so a reader sees them while it runs.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from expirytrack_desktop.sandbox import cli  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    cli.add_server_options(ap)
    ap.add_argument("--request-log", type=Path, required=True, metavar="FILE")
    args = ap.parse_args(argv)
    log = args.request_log.open("a", buffering=1, encoding="utf-8")
    lock = threading.Lock()
    real_app_from_args = cli.app_from_args

    def logged_app(a: argparse.Namespace) -> Any:
        app = real_app_from_args(a)
        inner = app.handle

        async def handle(method: str, path: str, query: Any, headers: Any, body: bytes) -> Any:
            t0 = time.time()
            resp = await inner(method, path, query, headers, body)
            q = query.decode("latin-1") if isinstance(query, bytes) else str(query)
            line = f"{t0:.4f}\t{time.time():.4f}\t{resp.status}\t{path}{'?' + q if q else ''}\n"
            with lock:
                log.write(line)
            return resp

        app.handle = handle  # __call__ looks it up on the instance
        return app

    cli.app_from_args = logged_app
    try:
        return cli.run(args)
    finally:
        log.close()


if __name__ == "__main__":
    sys.exit(main())
