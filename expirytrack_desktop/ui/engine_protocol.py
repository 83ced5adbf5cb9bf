"""What the window asks of a collection engine, whichever way it runs.

:class:`~expirytrack_desktop.ui.engine_api.ThreadEngineApi` (the engine on a thread of this
process; tests) and :class:`~expirytrack_desktop.ui.engine_api.ProcessEngineApi` (the engine
in a child process; the app) both declare :class:`EngineApi`, so mypy checks that they keep
the same shape and the services use nothing else.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any, Protocol

from expirytrack_desktop.collect import Estimate, JobResult, Progress

ProgressSink = Callable[[Progress], None]


class JobHandle(Protocol):
    """A running job as the window sees it."""

    @property
    def id(self) -> int: ...

    @property
    def state(self) -> str: ...

    @property
    def last_progress(self) -> Progress | None: ...

    def done(self) -> bool: ...


class EngineApi(Protocol):
    """Collections and the calls the wizard needs; progress goes to the sink given at creation."""

    async def expiries(self, key: str) -> list[date]: ...

    async def estimate(self, params: list[dict[str, Any]], concurrency: int) -> Estimate:
        """One estimate for these jobs together (they share the limiter and its budget)."""
        ...

    async def start(self, params: dict[str, Any], concurrency: int) -> JobHandle: ...

    async def resume(self, job_id: int) -> JobHandle: ...

    async def retry(self, job_id: int) -> JobHandle: ...

    def pause(self, h: JobHandle) -> None: ...

    def unpause(self, h: JobHandle) -> None: ...

    def cancel(self, h: JobHandle) -> None: ...

    async def wait(self, h: JobHandle) -> JobResult: ...

    def budget_wait_until(self) -> float | None:
        """While the rate limiter holds requests back: until when (epoch seconds)."""
        ...

    def requests_sent(self) -> tuple[int, int]:
        """Requests and retries sent by a client other than the window's own (the engine
        process's), since it started."""
        ...

    def set_token(self, token: str | None) -> None: ...

    def set_rate_limit(self, spec: str, ledger: str | None) -> None: ...

    async def close(self) -> None: ...
