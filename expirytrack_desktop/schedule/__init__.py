"""Scheduled collections (no Qt): definitions, OS scheduler installation, running, retrying.

Public API: :class:`Schedule`, :class:`ScheduleStore`, :func:`run_collection` (all attempts of
one run, returning a :class:`RunReport`), the OS backends in :mod:`.ossched`, and
:func:`hooks.override` for tests. The window can call the same functions.
"""

from expirytrack_desktop.schedule.model import (
    Schedule,
    ScheduleError,
    ScheduleStore,
    days_text,
    parse_days,
    parse_time,
)
from expirytrack_desktop.schedule.runlock import AlreadyRunning, RunLock
from expirytrack_desktop.schedule.runner import (
    Attempt,
    RunReport,
    retry_delay,
    run_collection,
)

__all__ = [
    "AlreadyRunning",
    "Attempt",
    "RunLock",
    "RunReport",
    "Schedule",
    "ScheduleError",
    "ScheduleStore",
    "days_text",
    "parse_days",
    "parse_time",
    "retry_delay",
    "run_collection",
]
