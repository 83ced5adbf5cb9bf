"""Injected side effects of the schedule commands (tests swap them; production uses none).

Like :func:`expirytrack_desktop.runtime.override`: a context variable, so a test can run
``cli.main(["schedule", "add", ...])`` with a fake command runner and its own folders and
nothing reaches the real crontab, systemd, launchd, Task Scheduler or home folder.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any


@dataclass(slots=True)
class Hooks:
    runner: Any = None  # ossched.Runner; None = subprocess_runner
    paths: Any = None  # ossched.SchedulerPaths; None = the user's real folders
    platform: str | None = None  # sys.platform stand-in
    uid: int | None = None  # launchd gui/<uid>
    env: dict[str, str] | None = None  # variables carried into the OS job
    executable: str | None = None
    frozen: bool | None = None
    sleep: Any = None  # async sleep used between retries
    ssl_context: Any = None  # trust store for the SMTP server (a test's own certificate)


_hooks: contextvars.ContextVar[Hooks | None] = contextvars.ContextVar(
    "expirytrack_schedule_hooks", default=None
)


@contextlib.contextmanager
def override(**kwargs: Any) -> Iterator[Hooks]:
    token = _hooks.set(Hooks(**kwargs))
    try:
        yield _hooks.get()  # type: ignore[misc]
    finally:
        _hooks.reset(token)


def current() -> Hooks:
    return _hooks.get() or Hooks()
