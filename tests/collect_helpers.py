"""Shared fixtures of the store/engine/CLI tests: a small simulated market and an engine on it."""

from __future__ import annotations

import contextlib
import os
from datetime import date
from pathlib import Path
from typing import TypeVar

from expirytrack_desktop.collect import Collector
from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN, FaultConfig, Market, SimulatorApp
from expirytrack_desktop.store import Database, open_database
from expirytrack_desktop.upstox.client import UpstoxClient
from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec

T = TypeVar("T")
TODAY = date(2025, 10, 1)
NIFTY = "NSE_INDEX|Nifty 50"


def make_app(
    *, strikes: int = 2, span_cap: dict[str, int] | None = None, faults: FaultConfig | None = None
) -> SimulatorApp:
    market = Market(seed=11, today=TODAY, underlyings=("NIFTY",), strikes_per_side=strikes)
    return SimulatorApp(market, rate_limit=None, span_cap_days=span_cap, faults=faults)


async def _no_sleep(_s: float) -> None:
    return None


def make_client(
    app: SimulatorApp, token: str | None = DEMO_ACCESS_TOKEN, *, max_attempts: int = 3
) -> UpstoxClient:
    limiter = RateLimiter(RateLimitSpec.parse("100000/1"))
    return UpstoxClient(
        "http://sim.test",
        access_token=token,
        limiter=limiter,
        transport=app.transport(),
        max_attempts=max_attempts,
        sleep=_no_sleep,
    )


def make_db(tmp_path: Path, name: str = "t.sqlite3") -> Database:
    return open_database(tmp_path / name, busy_timeout_ms=200)


def make_collector(db: Database, client: UpstoxClient, **kw) -> Collector:
    kw.setdefault("concurrency", 4)
    kw.setdefault("progress_interval", 0.0)
    return Collector(db, client, **kw)


def ground_truth_rows(market: Market, expired_key: str, interval: str, f: date, t: date):
    """Simulator candles in [f, t], as stored tuples, ascending."""
    from expirytrack_desktop.timeutil import parse_ts

    rows = market.candle_rows(expired_key, interval, f, t, newest_first=False)
    return [
        (parse_ts(r[0]), float(r[1]), float(r[2]), float(r[3]), float(r[4]), int(r[5]), int(r[6]))
        for r in rows
    ]


class Opened:
    """What an engine test opens (databases, clients), closed after the test by the ``opened``
    fixture (tests/conftest.py), passed or failed: a close written at the end of a test is
    skipped by the first failing assertion and leaks its file and its connections."""

    def __init__(self, stack: contextlib.AsyncExitStack) -> None:
        self._stack = stack

    def db(self, tmp_path: Path, name: str = "t.sqlite3") -> Database:
        return self._stack.enter_context(make_db(tmp_path, name))

    def client(
        self, app: SimulatorApp, token: str | None = DEMO_ACCESS_TOKEN, *, max_attempts: int = 3
    ) -> UpstoxClient:
        return self.add(make_client(app, token, max_attempts=max_attempts))

    def add(self, thing: T) -> T:
        """Close ``thing`` (``aclose()`` if it has one, else ``close()``) after the test."""
        aclose = getattr(thing, "aclose", None)
        if aclose is not None:
            self._stack.push_async_callback(aclose)
        else:
            self._stack.callback(thing.close)  # type: ignore[attr-defined]
        return thing


def cli_env(home: object = None, **more: str) -> dict[str, str]:
    """The environment of an ``expirytrack`` child process in a test: the demo token, a rate
    limit that never waits, unbuffered output (its lines as they come), ``home`` as
    ``EXPIRYTRACK_HOME`` when given, and ``more``."""
    env = dict(os.environ)
    env.update(
        EXPIRYTRACK_ACCESS_TOKEN=DEMO_ACCESS_TOKEN,
        EXPIRYTRACK_RATE_LIMIT="100000/1",
        PYTHONUNBUFFERED="1",
        **more,
    )
    if home is not None:
        env["EXPIRYTRACK_HOME"] = str(home)
    return env
