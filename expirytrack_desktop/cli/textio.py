"""Text in and out of the command in any locale.

Under ``LC_ALL=C`` with UTF-8 mode off, Python reads a non-ASCII argument or environment value
as lone surrogates (``'ü'`` -> ``'\\udcc3\\udcbc'``): the file system accepts them back, but
SQLite and an ASCII stdout do not, so a command ended in a traceback -- for export after the
file was written. So the command (1) never fails on printing: stdout and stderr escape what
their encoding cannot show; (2) when its own command line holds such text, starts itself again
in Python's UTF-8 mode (same process id, ``os.execv``), where the same bytes are read as the
UTF-8 they almost always are; (3) where that is not possible (a frozen build, a call from
Python, bytes that are not UTF-8 either) it stops with one line before doing anything.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Sequence

_REEXEC_ENV = "EXPIRYTRACK_UTF8_REEXEC"  # set in the restarted process: never loop


def robust_streams() -> None:
    """stdout/stderr escape characters their encoding lacks instead of raising."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):  # a closed or unusual stream
                reconfigure(errors="backslashreplace")


def _undecoded(text: str) -> bool:
    return any("\udc80" <= ch <= "\udcff" for ch in text)


def first_undecoded(argv: Sequence[str]) -> str | None:
    """The first argument or EXPIRYTRACK_* environment value the locale could not read."""
    for arg in argv:
        if _undecoded(arg):
            return arg
    for name, value in os.environ.items():
        if name.startswith("EXPIRYTRACK_") and _undecoded(value):
            return f"{name}={value}"
    return None


def check_text(argv: Sequence[str] | None) -> str | None:
    """None when every argument is text; else restart in UTF-8 mode (does not return) or
    return the one-line error to print (exit code 2)."""
    given = sys.argv[1:] if argv is None else list(argv)
    bad = first_undecoded(given)
    if bad is None:
        return None
    own_command_line = argv is None or given == sys.argv[1:]
    if (
        own_command_line
        and not getattr(sys, "frozen", False)
        and not sys.flags.utf8_mode
        and not os.environ.get(_REEXEC_ENV)
    ):
        env = dict(os.environ, **{_REEXEC_ENV: "1"})
        argv0 = [sys.executable, "-X", "utf8", "-m", "expirytrack_desktop.cli.main"]
        sys.stdout.flush()
        sys.stderr.flush()
        os.execve(sys.executable, [*argv0, *given], env)
    shown = repr(os.fsencode(bad))[1:]  # the bytes as given, e.g. 'NIFTY\xff'
    return (
        f"{shown} is not readable text here: give instruments and file names in UTF-8, and "
        "run the command in a UTF-8 locale (e.g. LC_ALL=C.UTF-8) or with PYTHONUTF8=1"
    )
