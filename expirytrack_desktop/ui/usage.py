"""Figures the dashboard and status bar show: the API budget, database counts, coverage.

Plain data only; the pages that show the figures word them.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from expirytrack_desktop.ui.engine_host import EngineHost
from expirytrack_desktop.ui.errors import describe_error
from expirytrack_desktop.ui.services import Services
from expirytrack_desktop.ui.signals import ControllerSignals

log = logging.getLogger(__name__)
MIN_WAIT_S = 2.0  # shorter waits are the limiter's ordinary pacing, not worth a word


@dataclass(frozen=True, slots=True)
class SessionRequests:
    """Requests (and retries) this window and its engine process have sent since it started."""

    requests: int
    retries: int


class Usage:
    def __init__(self, services: Services, host: EngineHost, signals: ControllerSignals) -> None:
        self.services = services
        self.host = host
        self.signals = signals

    def rate_usage(self) -> list[tuple[float, int, int]]:
        """``(window seconds, used, limit)`` per rate-limit window, from the shared ledger."""
        rt = self.host.runtime
        if rt is None:
            return []
        try:
            return list(rt.limiter.usage())
        except Exception:
            return []

    def rate_limit_spec(self) -> str:
        s = self.services
        return str(s.settings.resolved_rate_limit(s.options.rate_limit))

    def session_requests(self) -> SessionRequests | None:
        rt = self.host.runtime
        if rt is None:
            return None
        engine = (0, 0) if self.host.api is None else self.host.api.requests_sent()
        return SessionRequests(
            rt.client.requests_sent + engine[0], getattr(rt.client, "retries", 0) + engine[1]
        )

    def budget_wait_until(self, now: float | None = None) -> float | None:
        """Until when (epoch seconds) the rate limiter holds requests back, if noticeably."""
        api = self.host.api
        until = None if api is None else api.budget_wait_until()
        now = time.time() if now is None else now
        return until if until is not None and until - now >= MIN_WAIT_S else None

    def apply_settings(self) -> None:
        """Settings saved: new rate limit for the next clients, defaults for the wizard."""
        try:
            self.host.apply_rate_limit()
        except Exception as exc:
            log.warning("Rate limit not applied: %s", describe_error(exc))
        self.signals.authChanged.emit()

    async def database_stats(self) -> dict[str, int]:
        rt = self.host.runtime
        if rt is None:
            return {}
        c = await rt.db.run(rt.db.counts)
        return {
            "underlyings": c.underlyings,
            "expiries": c.expiries,
            "contracts": c.contracts,
            "candles": c.candles,
            "db_bytes": c.db_bytes,
        }
