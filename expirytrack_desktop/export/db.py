"""Database access for exports: a read-only connection of the export's own thread."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from expirytrack_desktop.export.errors import DatabaseError, DatabaseMissingError
from expirytrack_desktop.store import readonly as store_readonly

DbSource = str | os.PathLike[str] | sqlite3.Connection
CANDLE_RUPEES_SCHEMA = 4  # candles are read through the store's candle_rupees view from here


def connect_readonly(path: str | os.PathLike[str]) -> sqlite3.Connection:
    """Open ``path`` read-only (an export must never write candles, even by mistake); on
    read-only media too (see :mod:`expirytrack_desktop.store.readonly`)."""
    p = Path(path)
    if not p.is_file():
        raise DatabaseMissingError(f"database not found: {p}")
    try:
        conn = store_readonly.connect_readonly(p)
        version = conn.execute("PRAGMA user_version").fetchone()[0]
        conn.execute("SELECT 1 FROM candle LIMIT 1").fetchall()
    except sqlite3.Error as exc:
        raise DatabaseError(f"cannot read database {p}: {exc}") from None
    if version < CANDLE_RUPEES_SCHEMA:
        conn.close()
        raise DatabaseError(
            f"{p} has the layout of an older version (schema {version}); "
            "run `expirytrack status` once to update it, then export again"
        )
    return conn


@contextmanager
def reading(db: DbSource) -> Iterator[sqlite3.Connection]:
    """Yield a connection for ``db``; close it afterwards only if it was opened here."""
    if isinstance(db, sqlite3.Connection):
        yield db
        return
    conn = connect_readonly(db)
    try:
        yield conn
    finally:
        conn.close()


def connect_writable(db: DbSource) -> sqlite3.Connection:
    """A short-lived connection for the one write an export does (its history row)."""
    if isinstance(db, sqlite3.Connection):
        return db
    conn = sqlite3.connect(os.fspath(db), timeout=10)
    conn.execute("PRAGMA busy_timeout = 10000")
    return conn
