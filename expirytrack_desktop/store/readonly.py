"""Opening a database that must not (or cannot) be written: exports, verify on read-only media.

A WAL database needs its ``-shm`` file even to be read. On read-only media (a DVD, a
read-only mount, a folder we may not write) SQLite cannot create it, and a plain read-only
open fails with "unable to open database file". When the folder cannot be written and no
write-ahead log is pending (the last writer checkpointed and removed ``-wal``, as a clean
close does), the file alone is the whole database and is opened ``immutable``: no locks, no
``-shm``. A pending ``-wal`` is read through the normal read-only open (SQLite manages when
its ``-shm`` is there too); without it the data in the log cannot be seen, which is said.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote


def folder_writable(path: Path) -> bool:
    """Can files be created beside ``path`` (permissions and a read-only mount alike)?"""
    folder = path.resolve().parent
    if not os.access(folder, os.W_OK):
        return False
    statvfs = getattr(os, "statvfs", None)
    if statvfs is not None:
        try:
            return not statvfs(folder).f_flag & os.ST_RDONLY
        except OSError:
            return True
    return True


def readonly_uri(path: Path) -> str:
    """``file:`` URI opening ``path`` read-only (``immutable`` on read-only media, see above)."""
    p = Path(path).resolve()
    uri = "file:" + quote(str(p).replace("\\", "/")) + "?mode=ro"
    if folder_writable(p):
        return uri
    wal = p.with_name(p.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        return uri  # a pending log: only a normal open reads it
    return uri + "&immutable=1"


def connect_readonly(path: Path) -> sqlite3.Connection:
    """``sqlite3.connect`` of :func:`readonly_uri` (autocommit), with ``query_only`` on."""
    conn = sqlite3.connect(readonly_uri(path), uri=True, isolation_level=None)
    conn.execute("PRAGMA query_only = 1")
    return conn
