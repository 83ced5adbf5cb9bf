"""Export history (what, when, where, rows, size): table ``export_history``, survives restarts."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from expirytrack_desktop.export.db import DbSource, connect_writable, reading
from expirytrack_desktop.export.options import ExportOptions


@dataclass(frozen=True, slots=True)
class ExportHistoryEntry:
    id: int
    created_at: str  # UTC, "YYYY-MM-DD HH:MM:SS" (like SQLite's CURRENT_TIMESTAMP)
    format: str
    selection: dict[str, Any]  # ExportOptions.to_json_dict()
    path: str
    rows: int
    bytes: int


def record_export(
    db: DbSource,
    options: ExportOptions,
    path: Path | str,
    rows: int,
    nbytes: int,
    when: datetime,
) -> None:
    """Append one completed export. A failure here must not fail the export: callers catch."""
    conn = connect_writable(db)
    try:
        with conn:
            conn.execute(
                "INSERT INTO export_history (created_at, format, selection, path, rows, bytes)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (
                    when.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S"),
                    options.format,
                    json.dumps(options.to_json_dict(), sort_keys=True),
                    str(path),
                    rows,
                    nbytes,
                ),
            )
    finally:
        if conn is not db:
            conn.close()


def list_export_history(db: DbSource, limit: int = 200) -> list[ExportHistoryEntry]:
    """Completed exports, newest first."""
    with reading(db) as conn:
        rows = conn.execute(
            "SELECT id, created_at, format, selection, path, rows, bytes FROM export_history"
            " ORDER BY created_at DESC, id DESC LIMIT ?",
            (limit,),
        ).fetchall()
    out = []
    for id_, created, fmt, selection, path, n, nbytes in rows:
        try:
            sel = json.loads(selection)
        except ValueError:
            sel = {}
        out.append(ExportHistoryEntry(id_, created, fmt, sel, path, n, nbytes))
    return out
