"""A check for damaged pages before a collection writes into a database, cheap at any size.

``PRAGMA quick_check`` reads every page: on a 20 M-candle file (779 MB) it took 28 s here, so
about 2.5 minutes at 100 M candles (bench/RESULTS.md "Startup page check") -- too long before
every run. So :func:`check_pages` reads everything only in a small file (up to
``full_check_bytes``, 64 MB by default) and otherwise:

- ``quick_check`` of every table but the candle tables (the catalog, windows, jobs: small);
- the free-page list, walked in the file itself (a damaged free list hands out pages that are
  in use, so writing into it spreads the damage; table-limited quick_checks do not look at it);
- both ends of every contract's candles (each b-tree's upper levels and the pages new candles
  of a contract go to);
- a rotating slice of the candle tables, read record by record (``page_budget`` pages a run,
  64 MB by default; the position is kept in ``kv``), so successive runs read the whole file.

With ``PRAGMA cell_size_check`` on (:func:`harden_reads`), SQLite also checks each page it
reads during the run more strictly; a damaged page met while writing is ``SQLITE_CORRUPT``,
which the store reports as :class:`StoreCorruptError` (storage exit code) like this check.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

from expirytrack_desktop.store.errors import StoreCorruptError

FULL_CHECK_BYTES = 64 * 1024 * 1024
PAGE_BUDGET = 16_384  # pages of the candle tables read per run (64 MB at 4 KiB pages)
_SCRUB_KEY = "page_check_next_contract"
_MAGIC = b"SQLite format 3\x00"


class _Damaged(Exception):
    """Internal: what was found (one line)."""


def check_database(db: Any, *, again: bool = False, **options: Any) -> str:
    """:func:`check_pages` on an open :class:`~expirytrack_desktop.store.Database` (its own
    connection, under its lock), then :func:`harden_reads` for the rest of its life. Once per
    Database unless ``again`` ("done" when already checked): the CLI checks when it opens the
    file, the engine before each job, the window's engine then only at its first job."""
    if getattr(db, "_pages_checked", False) and not again:
        return "done"
    with db._lock:
        conn = db._conn
        found = check_pages(conn, db.path, kv_get=db.kv_get, kv_set=db.kv_set, **options)
        harden_reads(conn)
    db._pages_checked = True
    return found


def harden_reads(conn: sqlite3.Connection) -> None:
    """Ask SQLite to check each page more strictly as it is read (cheap: cell sizes)."""
    conn.execute("PRAGMA cell_size_check = ON")


def check_pages(
    conn: sqlite3.Connection,
    path: Path,
    *,
    full_check_bytes: int = FULL_CHECK_BYTES,
    page_budget: int = PAGE_BUDGET,
    kv_get: Callable[[str], str | None] | None = None,
    kv_set: Callable[[str, str], None] | None = None,
) -> str:
    """Raise :class:`StoreCorruptError` (one line: the file, what is damaged, what to do) if
    the database shows damage; else return what was checked ("full" or "sampled")."""
    try:
        size = os.path.getsize(path) if str(path) != ":memory:" else 0
        if size <= full_check_bytes:
            _expect_ok(conn.execute("PRAGMA quick_check").fetchall(), "quick_check")
            return "full"
        big = [t for t in _tables(conn) if t.startswith("candle")]
        for table in _tables(conn):
            if table not in big:
                rows = conn.execute(f'PRAGMA quick_check("{table}")').fetchall()
                _expect_ok(rows, f"table {table}")
        _check_freelist(conn, path)
        for table in big:
            _probe_ends(conn, table)
        _scrub(conn, big, page_budget, kv_get, kv_set)
        return "sampled"
    except _Damaged as found:
        raise StoreCorruptError(_message(path, str(found))) from None
    except sqlite3.DatabaseError as exc:
        raise StoreCorruptError(_message(path, str(exc))) from None


def _message(path: Path, what: str) -> str:
    return (
        f"{path} has damaged pages ({what}); nothing was written. Run `expirytrack verify` "
        "for details, then restore a backup or collect into a new file."
    )


def _expect_ok(rows: list[Any], what: str) -> None:
    if [tuple(r) for r in rows] != [("ok",)]:
        first = str(rows[0][0]).splitlines()[0] if rows else "no answer"
        raise _Damaged(f"{what}: {first}")


def _tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite_%'"
    ).fetchall()
    return [str(r[0]) for r in rows]


def _check_freelist(conn: sqlite3.Connection, path: Path) -> None:
    """Walk the free-page list in the file. Only when the write-ahead log has been copied
    into the file completely (otherwise the file's pages may be older than the truth)."""
    busy, log, done = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
    if busy or (log > 0 and done < log):
        return
    (pages,) = conn.execute("PRAGMA page_count").fetchone()
    (count,) = conn.execute("PRAGMA freelist_count").fetchone()
    with open(path, "rb") as f:
        header = f.read(100)
        if header[:16] != _MAGIC:
            raise _Damaged("the file header is not SQLite's")
        (page_size,) = struct.unpack(">H", header[16:18])
        page_size = 65536 if page_size == 1 else page_size
        (trunk,) = struct.unpack(">I", header[32:36])
        seen: set[int] = set()
        while trunk:
            if not 2 <= trunk <= pages or trunk in seen:
                raise _Damaged(f"free-page list: bad trunk page {trunk}")
            seen.add(trunk)
            f.seek((trunk - 1) * page_size)
            page = f.read(page_size)
            nxt, leaves = struct.unpack(">II", page[:8])
            if leaves > page_size // 4 - 2:
                raise _Damaged(f"free-page list: trunk page {trunk} lists {leaves} pages")
            for (leaf,) in struct.iter_unpack(">I", page[8 : 8 + 4 * leaves]):
                if not 2 <= leaf <= pages or leaf in seen:
                    raise _Damaged(f"free-page list: bad page {leaf}")
                seen.add(leaf)
            if len(seen) > count:
                break
            trunk = nxt
        if len(seen) != count:
            raise _Damaged(f"free-page list holds {len(seen)} pages, the header says {count}")


def _columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in conn.execute(f'PRAGMA table_info("{table}")')]


def _probe_ends(conn: sqlite3.Connection, table: str) -> None:
    """The first and last candle of every contract (whole records): root-to-leaf paths at
    both ends of each contract's range. One statement, so the loop runs inside SQLite."""
    info = conn.execute(f'PRAGMA table_info("{table}")').fetchall()
    key = [str(r[1]) for r in sorted(info, key=lambda r: r[5]) if r[5]]
    if not key or key[0] != "contract_id":
        return
    last = str(info[-1][1])

    def probe(direction: str) -> str:
        order = ", ".join(f'"{k}" {direction}' for k in key)
        return (
            f'(SELECT length("{last}") FROM "{table}" WHERE contract_id = c.id '
            f"ORDER BY {order} LIMIT 1)"
        )

    conn.execute(f"SELECT total({probe('ASC')}) + total({probe('DESC')}) FROM contract c")


def _scrub(
    conn: sqlite3.Connection,
    tables: list[str],
    page_budget: int,
    kv_get: Callable[[str], str | None] | None,
    kv_set: Callable[[str, str], None] | None,
) -> None:
    """Read every record of the next contracts' candles, about ``page_budget`` pages."""
    tables = [t for t in tables if "contract_id" in _columns(conn, t)]
    if not tables or page_budget <= 0:
        return
    start = 0
    if kv_get is not None:
        with contextlib.suppress(TypeError, ValueError):
            start = int(kv_get(_SCRUB_KEY) or 0)
    (page_size,) = conn.execute("PRAGMA page_size").fetchone()
    budget = page_budget * page_size
    ids = [
        r[0] for r in conn.execute("SELECT id FROM contract WHERE id >= ? ORDER BY id", (start,))
    ]
    if not ids:
        ids = [r[0] for r in conn.execute("SELECT id FROM contract ORDER BY id")]
    last_col = {t: _columns(conn, t)[-1] for t in tables}
    read = 0
    nxt = 0  # after the last contract: start again from the first
    for pos, cid in enumerate(ids):
        for t in tables:
            (n, length) = conn.execute(
                f'SELECT count(*), total(length("{last_col[t]}")) FROM "{t}" WHERE contract_id = ?',
                (cid,),
            ).fetchone()
            read += int(n) * 40 + int(length)  # ~40 bytes a candle record
        if read >= budget:
            nxt = ids[pos + 1] if pos + 1 < len(ids) else 0
            break
    if kv_set is not None:
        kv_set(_SCRUB_KEY, str(nxt))
