"""One exception class per case a caller must treat differently.

Messages carry the API's error code and text, never a token or a secret.
"""

from __future__ import annotations


class UpstoxError(Exception):
    """Base: ``code`` is the API's error code (``UDAPI...``) when one was sent."""

    def __init__(self, message: str, *, code: str | None = None, status: int | None = None):
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


class AuthError(UpstoxError):
    """401 / UDAPI100050: token invalid or expired. Stop token work, keep progress, log in again."""


class PlanRequiredError(UpstoxError):
    """UDAPI1149: the expired-instrument APIs need an Upstox Plus subscription."""


class RateLimitedError(UpstoxError):
    """429 / UDAPI10005 after the retries: the limiter should have prevented it."""


class InvalidDateRangeError(UpstoxError):
    """400 / UDAPI1148: the candle span is too wide; split the window."""


class BadInputError(UpstoxError):
    """400 with any other code: fail that item with the message, continue the others."""


class LoginError(UpstoxError):
    """OAuth failures: wrong secret (UDAPI100016), wrong client id/redirect (UDAPI100068), ..."""


class ServerError(UpstoxError):
    """5xx, timeouts, dropped connections, malformed JSON, after the retries."""
