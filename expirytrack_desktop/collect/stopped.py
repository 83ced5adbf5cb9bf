"""The exception that ends a run with a reason (raised in workers and waits, caught by the job).

Its own module so the API gate and the waits (``waiting.py``) both raise it without
importing each other.
"""

from __future__ import annotations

from expirytrack_desktop.collect.events import StopReason


class RunStopped(Exception):
    """End the run now with this reason (raised inside workers, caught by the job)."""

    def __init__(self, reason: StopReason, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.code = code  # the API's error code, when one was sent


__all__ = ["RunStopped"]
