"""Read-only queries the window needs that the store does not offer (adapter; no writes).

Runs in a worker thread with its own short-lived read connection (SQLite WAL lets readers
proceed beside the engine's writer), so the event loop never waits on the disk.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Any


def _connect(db_path: Path) -> sqlite3.Connection | None:
    if not db_path.exists():
        return None
    conn = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=5.0)
    conn.row_factory = sqlite3.Row
    return conn


def _has_table(conn: sqlite3.Connection, name: str) -> bool:
    row = conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type IN ('table','view') AND name = ?", (name,)
    ).fetchone()
    return row is not None


def read_jobs(db_path: Path, job_type: str = "collect", limit: int = 500) -> list[dict[str, Any]]:
    conn = _connect(db_path)
    if conn is None:
        return []
    with closing(conn):
        if not _has_table(conn, "job"):
            return []
        rows = conn.execute(
            "SELECT * FROM job WHERE job_type = ? ORDER BY id DESC LIMIT ?", (job_type, limit)
        ).fetchall()
        return [dict(r) for r in rows]


def read_job_log(db_path: Path, job_id: int, limit: int = 2000) -> list[str]:
    conn = _connect(db_path)
    if conn is None:
        return []
    with closing(conn):
        if not _has_table(conn, "job_log"):
            return []
        rows = conn.execute(
            "SELECT at, level, message FROM job_log WHERE job_id = ? ORDER BY rowid DESC LIMIT ?",
            (job_id, limit),
        ).fetchall()
        return [f"{r['at']} {r['level']:<7} {r['message']}" for r in reversed(rows)]


def read_counts(db_path: Path) -> dict[str, int]:
    """Row counts for the dashboard cards (candles counted from fetch windows: cheap)."""
    out = {"underlyings": 0, "expiries": 0, "contracts": 0, "candles": 0, "db_bytes": 0}
    try:
        out["db_bytes"] = db_path.stat().st_size
        wal = db_path.with_name(db_path.name + "-wal")
        if wal.exists():
            out["db_bytes"] += wal.stat().st_size
    except OSError:
        return out
    conn = _connect(db_path)
    if conn is None:
        return out
    with closing(conn):
        if not _has_table(conn, "underlying"):
            return out
        out["underlyings"] = conn.execute(
            "SELECT COUNT(*) FROM underlying u WHERE EXISTS "
            "(SELECT 1 FROM expiry e WHERE e.underlying_id = u.id)"
        ).fetchone()[0]
        out["expiries"] = conn.execute("SELECT COUNT(*) FROM expiry").fetchone()[0]
        out["contracts"] = conn.execute("SELECT COUNT(*) FROM contract").fetchone()[0]
        out["candles"] = conn.execute(
            "SELECT COALESCE(SUM(candles), 0) FROM fetch_window WHERE state = 'fetched'"
        ).fetchone()[0]
    return out


def read_export_history(db_path: Path, limit: int = 500) -> list[dict[str, Any]]:
    conn = _connect(db_path)
    if conn is None:
        return []
    with closing(conn):
        if not _has_table(conn, "export_history"):
            return []
        rows = conn.execute(
            "SELECT * FROM export_history ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [dict(r) for r in rows]
