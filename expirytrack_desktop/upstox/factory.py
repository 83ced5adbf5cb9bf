"""Process-wide wiring: ONE rate limiter per process, and clients built around it.

The limiter is the one deliberate process global: Upstox counts per user, so every client
in the process (GUI jobs, token checks, CLI commands) must draw from the same budget.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx

from .client import UpstoxClient
from .ledger import Ledger, MemoryLedger, SqliteLedger
from .limiter import RateLimiter, RateLimitSpec

_lock = threading.Lock()
_current: tuple[RateLimitSpec, str | None, RateLimiter] | None = None


def process_limiter(
    spec_text: str,
    ledger_path: str | Path | None = None,
    *,
    pid_alive: Callable[[int], bool] | None = None,
) -> RateLimiter:
    """The process's limiter: same spec (and ledger) -> same instance; otherwise replaced.

    ``ledger_path`` (e.g. ``<data folder>/ratelimit.sqlite``) shares the budget with other
    processes and restarts; without it the budget is remembered in memory only. ``pid_alive``
    lets the shared ledger ignore a dead process's waiting priority at once.
    Raises ValueError for a malformed spec.
    """
    global _current
    spec = RateLimitSpec.parse(spec_text)
    key = str(Path(ledger_path).resolve()) if ledger_path is not None else None
    with _lock:
        if _current is not None and _current[0] == spec and _current[1] == key:
            return _current[2]
        ledger: Ledger = (
            SqliteLedger(key, pid_alive=pid_alive) if key is not None else MemoryLedger()
        )
        if _current is not None and _current[1] is None and key is None:
            ledger = _current[2].ledger  # keep what this process already spent
        limiter = RateLimiter(spec, ledger=ledger)
        _current = (spec, key, limiter)
        return limiter


def make_client(
    base_url: str,
    access_token: str | None,
    *,
    limiter: RateLimiter,
    transport: httpx.AsyncBaseTransport | None = None,
    **options: Any,
) -> UpstoxClient:
    """A client on ``base_url`` (``Settings.resolved_api_base(flag)``) drawing on ``limiter``;
    ``options`` go to :class:`UpstoxClient` (tests: ``max_attempts``, ``sleep``, ...)."""
    return UpstoxClient(
        base_url, access_token=access_token, limiter=limiter, transport=transport, **options
    )
