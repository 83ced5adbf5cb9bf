"""Schema migrations (package resources), the pre-migration backup, and the mapping of
sqlite3/OS errors to one-line :class:`StoreError` messages that name the file."""

from __future__ import annotations

import logging
import re
import sqlite3
from importlib import resources
from pathlib import Path

from expirytrack_desktop.store.errors import (
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreUnwritableError,
)

log = logging.getLogger(__name__)
_MIGRATION_RE = re.compile(r"^(\d{3})_[\w\-]+\.sql$")


def translate_error(exc: BaseException, path: Path | str, busy_timeout_ms: int) -> StoreError:
    """Map a sqlite3/OS error to a one-line :class:`StoreError` naming the file."""
    if isinstance(exc, StoreError):
        return exc
    code = getattr(exc, "sqlite_errorcode", None)
    text = str(exc)
    low = text.lower()
    if code == sqlite3.SQLITE_FULL or "disk is full" in low or "database or disk is full" in low:
        return StoreFullError(
            f"Disk full while writing {path}; nothing half-written was kept. "
            "Free some space and run the same command again to continue."
        )
    if code in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED) or "locked" in low:
        return StoreLockedError(
            f"Database {path} is locked by another process (waited {busy_timeout_ms / 1000:g} s); "
            "close the other ExpiryTrack window or command and try again."
        )
    if (
        code in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT)
        or "not a database" in low
        or ("malformed" in low)
    ):
        return StoreCorruptError(
            f"{path} is not a usable ExpiryTrack database ({text}); "
            "choose another file or restore a backup."
        )
    if (
        code in (sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_PERM)
        or "readonly" in low
        or "unable to open" in low
        or isinstance(exc, OSError)
    ):
        return StoreUnwritableError(f"Cannot write the database {path}: {text}.")
    return StoreError(f"Database error on {path}: {text}")


# ---------------------------------------------------------------------------------------------
# Migrations


def load_migrations() -> list[tuple[int, str, str]]:
    """Ordered ``(version, name, sql)`` from ``store/migrations/NNN_*.sql`` (importlib.resources,
    so a PyInstaller bundle that ships the package data finds them)."""
    folder = resources.files("expirytrack_desktop.store").joinpath("migrations")
    found: list[tuple[int, str, str]] = []
    for entry in folder.iterdir():
        m = _MIGRATION_RE.match(entry.name)
        if m:
            found.append((int(m.group(1)), entry.name, entry.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(versions) + 1)):
        raise RuntimeError(f"migrations must be numbered 001.. without gaps: {versions}")
    return found


def latest_version() -> int:
    return len(load_migrations())


def _backup(conn: sqlite3.Connection, path: Path, version: int, busy_timeout_ms: int) -> Path:
    dest = path.with_name(f"{path.name}.v{version}.bak")
    n = 1
    while dest.exists():
        n += 1
        dest = path.with_name(f"{path.name}.v{version}.{n}.bak")
    try:
        target = sqlite3.connect(str(dest))
        with target:
            conn.backup(target)
        target.close()
    except (sqlite3.Error, OSError) as exc:
        raise translate_error(exc, dest, busy_timeout_ms) from exc
    log.info("backed up %s to %s before migrating", path, dest)
    return dest
