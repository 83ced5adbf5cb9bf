"""The SQLite store: opening (pragmas, migrations, backups, clear errors) and repository calls.

Threading model (database work must never stall the window): one connection, used by one
writer thread at a time. The engine calls ``await db.run(fn, *args)``, which executes ``fn`` on
the Database's own single-thread executor, so SQLite never runs on the asyncio/Qt loop thread.
Synchronous methods may also be called directly (CLI ``status``, tests); a lock serialises them.

Dates are ``YYYY-MM-DD`` text, candle times epoch seconds, intervals integer minutes (1440 =
day); the documented views (``instruments``, ``expiries``, ``contracts``, ``historical_data``,
``job_status``) translate for users' SQL.

Layout: this module is the facade — :class:`Database` composes the parts below, and
:func:`open_database` creates it; every name importable from here before the split still is.
``base`` (connection, lock, writer thread, transactions, kv), ``catalog`` (underlyings,
expiries, contracts), ``windows`` (candle-window writes), ``reports`` (coverage, counts),
``jobs`` (job persistence), ``underlyings`` (the F&O universe from the master),
``migrate`` (migrations, backup, error mapping), ``rows`` (row
dataclasses), ``intervals``, ``processes``.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from expirytrack_desktop.store.base import _default_clock
from expirytrack_desktop.store.catalog import CatalogStore
from expirytrack_desktop.store.claims import ClaimStore
from expirytrack_desktop.store.compact import MigrateProgress, copy_candles, resuming
from expirytrack_desktop.store.errors import (
    StoreCorruptError,
    StoreError,
    StoreFullError,
    StoreLockedError,
    StoreMissingError,
    StoreUnwritableError,
    StoreVersionError,
)
from expirytrack_desktop.store.intervals import interval_minutes, interval_name
from expirytrack_desktop.store.jobs import (
    HEARTBEAT_INTERVAL,
    JOB_STATUSES,
    STALE_HEARTBEAT,
)
from expirytrack_desktop.store.migrate import (
    _backup,
    latest_version,
    load_migrations,
    translate_error,
)
from expirytrack_desktop.store.processes import pid_alive
from expirytrack_desktop.store.readonly import folder_writable, readonly_uri
from expirytrack_desktop.store.reports import ReportStore
from expirytrack_desktop.store.rows import (
    ContractRow,
    Counts,
    ExpiryCoverage,
    JobRecord,
    StoredWindow,
    WindowRow,
)
from expirytrack_desktop.store.underlyings import UniverseStore

__all__ = [
    "DEFAULT_BUSY_TIMEOUT_MS",
    "HEARTBEAT_INTERVAL",
    "JOB_STATUSES",
    "STALE_HEARTBEAT",
    "ContractRow",
    "Counts",
    "Database",
    "ExpiryCoverage",
    "JobRecord",
    "StoreCorruptError",
    "StoreError",
    "StoreFullError",
    "StoreLockedError",
    "StoreMissingError",
    "StoreUnwritableError",
    "StoreVersionError",
    "StoredWindow",
    "WindowRow",
    "interval_minutes",
    "interval_name",
    "latest_version",
    "load_migrations",
    "open_database",
    "pid_alive",
    "translate_error",
]

log = logging.getLogger(__name__)

DEFAULT_BUSY_TIMEOUT_MS = 5000
# Migrations with a data step run before their SQL (resumable copies; see store/compact.py).
DATA_STEPS: dict[int, Callable[[sqlite3.Connection, MigrateProgress | None], int]] = {
    4: copy_candles,
}


class Database(CatalogStore, ReportStore, ClaimStore, UniverseStore):
    """One open ExpiryTrack database. Create with :func:`open_database`."""


# ---------------------------------------------------------------------------------------------


def open_database(
    path: Path | str,
    *,
    create: bool = True,
    busy_timeout_ms: int = DEFAULT_BUSY_TIMEOUT_MS,
    check_writable: bool = True,
    max_page_count: int | None = None,
    clock: Callable[[], datetime] = _default_clock,
    backup: bool = True,
    on_migrate: MigrateProgress | None = None,
) -> Database:
    """Open (and create/migrate) an ExpiryTrack database. Raises a :class:`StoreError` subclass.

    - WAL journal, foreign keys on, ``busy_timeout_ms`` wait for another process's write lock.
    - ``PRAGMA user_version`` migrations in order; an existing database is first copied to
      ``<file>.v<old>.bak`` with SQLite's backup API. A file from a newer version is refused
      before anything is written to it.
    - ``check_writable`` probes the write lock now (so "locked"/"read-only" is reported up front).
    - ``max_page_count`` caps the file size for this connection (simulates a full disk).
    - ``on_migrate(done, total)``: progress of a long migration (candles copied, candles in
      all); such a migration commits as it goes and, if stopped, continues where it stopped
      when the file is next opened (its backup is the one made when it first started).
    """
    path = Path(path)
    if str(path) != ":memory:":
        if not path.exists():
            if not create:
                raise StoreMissingError(f"No database at {path}.")
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreUnwritableError(
                    f"Cannot create the folder for the database {path}: {exc.strerror or exc}."
                ) from exc
        elif path.is_dir():
            raise StoreUnwritableError(f"{path} is a folder, not a database file.")
    # Reading only, from a folder that cannot be written (read-only media): open read-only,
    # which a WAL database needs there (store/readonly.py).
    read_only = (
        not create and not check_writable and str(path) != ":memory:" and not folder_writable(path)
    )
    try:
        conn = sqlite3.connect(
            readonly_uri(path) if read_only else str(path),
            timeout=busy_timeout_ms / 1000,
            isolation_level=None,
            check_same_thread=False,
            uri=read_only,
        )
    except sqlite3.Error as exc:
        raise translate_error(exc, path, busy_timeout_ms) from exc
    conn.row_factory = sqlite3.Row
    try:
        db = _prepare(
            conn,
            path,
            busy_timeout_ms,
            check_writable,
            max_page_count,
            clock,
            backup,
            read_only,
            on_migrate,
        )
    except BaseException:
        conn.close()
        raise
    return db


def _prepare(
    conn: sqlite3.Connection,
    path: Path,
    busy_timeout_ms: int,
    check_writable: bool,
    max_page_count: int | None,
    clock: Callable[[], datetime],
    backup: bool,
    read_only: bool = False,
    on_migrate: MigrateProgress | None = None,
) -> Database:
    migrations = load_migrations()
    target = len(migrations)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
        version = int(conn.execute("PRAGMA user_version").fetchone()[0])
        has_tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0] > 0
    except sqlite3.Error as exc:
        raise translate_error(exc, path, busy_timeout_ms) from exc
    if version > target:
        raise StoreVersionError(
            f"{path} was written by a newer ExpiryTrack (schema {version}, this version knows "
            f"{target}); update the app. The file was not changed."
        )
    if version == 0 and has_tables:
        raise StoreCorruptError(f"{path} is an SQLite file but not an ExpiryTrack database.")
    try:
        conn.execute("PRAGMA foreign_keys = ON")
        if str(path) != ":memory:" and not read_only:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                log.warning("journal_mode is %s, not WAL, for %s", mode, path)
        conn.execute("PRAGMA synchronous = NORMAL")
        if max_page_count is not None:
            conn.execute(f"PRAGMA max_page_count = {int(max_page_count)}")
        if check_writable:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("ROLLBACK")
    except sqlite3.Error as exc:
        raise translate_error(exc, path, busy_timeout_ms) from exc
    if version < target:
        if version > 0 and backup and str(path) != ":memory:" and not resuming(conn):
            _backup(conn, path, version, busy_timeout_ms)
        for number, name, sql in migrations[version:]:
            try:
                if number in DATA_STEPS:
                    DATA_STEPS[number](conn, on_migrate)
                conn.executescript(
                    f"BEGIN IMMEDIATE;\n{sql}\n;PRAGMA user_version = {number};\nCOMMIT;"
                )
            except sqlite3.Error as exc:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                err = translate_error(exc, path, busy_timeout_ms)
                raise type(err)(f"Migration {name} failed: {err}") from exc
            log.info("migrated %s to schema %d (%s)", path, number, name)
    return Database(conn, path, busy_timeout_ms=busy_timeout_ms, clock=clock)
