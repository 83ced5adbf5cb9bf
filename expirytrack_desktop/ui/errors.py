"""One line for the user from an exception (engine errors carry ``message`` and ``code``)."""

from __future__ import annotations


def describe_error(exc: BaseException) -> str:
    msg = getattr(exc, "message", None) or str(exc) or type(exc).__name__
    code = getattr(exc, "code", None)
    if code and code not in msg:
        msg = f"{msg} ({code})"
    return str(msg)
