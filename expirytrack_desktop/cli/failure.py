"""How every command reports a failure a person can cause: one line on stderr, an exit code.

The line starts with ``error:`` and carries the message as the engine phrased it (never a
secret: the engine's messages are written to be shown). The exit codes are in
:mod:`expirytrack_desktop.cli.exitcodes` (README, "Exit codes").
"""

from __future__ import annotations

import sys
from typing import TextIO


def error(message: str, *, err: TextIO | None = None) -> None:
    """Print ``error: <message>`` on stderr (or ``err``)."""
    print(f"error: {message}", file=err or sys.stderr)


def fail(code: int, message: str, *, err: TextIO | None = None) -> int:
    """Print the one error line and return ``code`` (``return fail(exitcodes.X, "...")``)."""
    error(message, err=err)
    return code
