"""Atomic file replacement: a reader sees the old file or the new one, never half of one.

Every small state file of the app (settings, schedules, a schedule's last run, the encrypted
secrets) is written the same way: into a temporary file in the same folder (same file
system, so the rename is atomic), flushed to disk with ``fsync``, then renamed over the
target with ``os.replace``, and the folder itself synced where the platform allows it.
The export's streaming writer (``export.atomic``) uses the same temporary names and the
same final step for outputs that other libraries write; the Parquet mirror's files are
opened by :func:`open_new_synced` (synced when closed, before the rename).

Windows: ``os.replace`` fails with ``PermissionError`` while another process (an indexer,
an antivirus scan, a second app instance reading the file) briefly has the target open;
:func:`replace` retries a few times before giving up. Folders cannot be fsynced there, so
that step is skipped.

This module imports nothing from the project: every layer may use it.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import secrets
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

REPLACE_ATTEMPTS = 8
"""Tries of ``os.replace`` on Windows before a ``PermissionError`` is raised."""
_FIRST_BACKOFF = 0.01  # seconds, doubled after each try (~2.5 s over all attempts)


def sibling_temp(final: Path, suffix: str = ".tmp") -> Path:
    """A fresh hidden name beside ``final`` (same folder, unique per process and call)."""
    return final.with_name(f".{final.name}.{os.getpid()}.{secrets.token_hex(4)}{suffix}")


def replace(
    src: Path,
    dst: Path,
    *,
    windows: bool | None = None,
    sleep: Callable[[float], None] = time.sleep,
    rename: Callable[[Path, Path], None] = os.replace,
) -> None:
    """``os.replace(src, dst)``, retried on Windows while ``dst`` is held open elsewhere.

    ``windows``, ``sleep`` and ``rename`` are injectable so the retry is tested anywhere.
    """
    windows = sys.platform.startswith("win") if windows is None else windows
    attempts = REPLACE_ATTEMPTS if windows else 1
    delay = _FIRST_BACKOFF
    for attempt in range(1, attempts + 1):
        try:
            rename(src, dst)
            return
        except PermissionError:
            if attempt == attempts:
                raise
            sleep(delay)
            delay *= 2


def fsync_dir(folder: Path) -> None:
    """Make a rename inside ``folder`` durable (POSIX); a no-op where folders cannot be opened."""
    if not hasattr(os, "O_DIRECTORY"):
        return
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):
            os.fsync(fd)
    finally:
        os.close(fd)


class _SyncedFileIO(io.FileIO):
    """A raw file whose ``close`` first makes its content durable (``fsync``)."""

    def close(self) -> None:
        if not self.closed:
            try:
                os.fsync(self.fileno())
            finally:
                super().close()


def open_new_synced(path: Path) -> BinaryIO:
    """A new file (``FileExistsError`` if ``path`` exists) for buffered binary writing whose
    content is on disk once it is closed: a file renamed into place after its close is then
    never found empty or torn after a power cut (the rename alone is not ordered after the
    data on every file system)."""
    return io.BufferedWriter(_SyncedFileIO(path, "xb"))


def atomic_write_bytes(path: Path, content: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``content`` all at once; missing folders are created.

    ``mode`` applies to the new file from its creation (0o600 for secrets: the content is
    never readable by others, not even for an instant). Raises ``OSError`` and leaves the
    previous file untouched and no temporary file behind on any failure (disk full,
    permission denied, a folder in the way).
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700 if (mode & 0o077) == 0 else 0o777)
    tmp = sibling_temp(path)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, mode)
        try:
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    if (mode & 0o077) == 0:  # an existing file's looser mode is not inherited, but be explicit
        with contextlib.suppress(OSError):
            os.chmod(path, mode)
    fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str, *, mode: int = 0o644) -> None:
    """:func:`atomic_write_bytes` of ``text`` in UTF-8 (never the locale's encoding)."""
    atomic_write_bytes(path, text.encode("utf-8"), mode=mode)


def atomic_write_json(path: Path, data: Any, *, mode: int = 0o644) -> None:
    """:func:`atomic_write_text` of ``data`` as indented JSON with a final newline."""
    atomic_write_text(path, json.dumps(data, indent=2) + "\n", mode=mode)
