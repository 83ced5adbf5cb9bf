"""Every API call of a run goes through here: the pause gate, and the errors that stop a run."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any

from expirytrack_desktop.collect.events import StopReason
from expirytrack_desktop.upstox.errors import AuthError, PlanRequiredError, ServerError


class _Stop(Exception):
    """Internal: end the run now with this reason (raised inside workers)."""

    def __init__(self, reason: StopReason, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class ApiCalls:
    """Guarded API calls of a run; a part of :class:`CollectJob` (uses its state)."""

    async def _call(self, aw: Awaitable[Any], what: str, *, answered: bool = True) -> Any:
        """Await one API call, turning run-stopping errors into _Stop.

        ``answered=False``: the awaitable signals answers itself (``_answered``), e.g. a
        window fetch that also writes, so a late success does not hide newer net failures.
        """
        await self._gate.wait()
        if self._halt:
            if asyncio.iscoroutine(aw):
                aw.close()
            raise asyncio.CancelledError
        try:
            result = await aw
        except AuthError as exc:
            raise _Stop(
                StopReason.NEEDS_LOGIN,
                f"the access token was rejected or has expired ({exc.code or 'HTTP 401'}); "
                "log in again and rerun: collected data is kept",
            ) from None
        except PlanRequiredError:
            raise _Stop(
                StopReason.PLAN_REQUIRED,
                "the expired-instrument APIs need an Upstox Plus subscription (UDAPI1149)",
            ) from None
        except ServerError as exc:
            if exc.status is None and exc.code is None:
                self._consecutive_net_failures += 1
                if self._consecutive_net_failures >= self.collector.network_failure_threshold:
                    raise _Stop(
                        StopReason.NETWORK,
                        f"the Upstox API cannot be reached ({exc.message}); check the network "
                        "and rerun: collected data is kept",
                    ) from None
            raise
        if answered:
            self._answered()
        return result

    def _answered(self) -> None:
        """The API answered: the network is up."""
        self._consecutive_net_failures = 0
