"""Whether another ExpiryTrack window has the same database open.

Two windows on one database are safe (the engine claims each candle window before fetching
it, and a job runs only in the window that started it), but a user should know: jobs the
other window runs show as running here and cannot be controlled from here. An OS file lock
beside the database says it; it is released when the window's process ends, however it ends.
"""

from __future__ import annotations

import logging
from pathlib import Path

from filelock import FileLock, Timeout

log = logging.getLogger(__name__)


class WindowLock:
    def __init__(self, db_path: Path) -> None:
        self.path = db_path.with_name(db_path.name + ".window-lock")
        self._lock = FileLock(str(self.path), timeout=0)
        self.shared = False  # another window holds the database

    def acquire(self) -> bool:
        """Hold the lock if free; returns False (and sets ``shared``) when another window has it."""
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            self.shared = True
            return False
        except OSError as exc:  # a read-only folder: nothing to say either way
            log.debug("window lock %s: %s", self.path, exc)
            return True
        self.shared = False
        return True

    def release(self) -> None:
        if self._lock.is_locked:
            self._lock.release()
