"""Clean-up of old exports by age and total size, touching only what this app wrote.

The export history says which files and folders the app wrote, when, and how many bytes. An
export is removable only while its path still holds exactly that many bytes (a file, or a
folder's files in total): a file the user replaced, grew or put there under the same name
is left alone, and nothing that the history does not list is ever looked at. Removed
exports leave the history (it lists what exists).
"""

from __future__ import annotations

import os
import shutil
import sqlite3
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from expirytrack_desktop.export.db import DbSource, connect_writable, reading
from expirytrack_desktop.export.errors import DatabaseError, ExportError, InvalidOptionsError


@dataclass(frozen=True, slots=True)
class Removable:
    path: Path
    bytes: int
    created_at: datetime


@dataclass(slots=True)
class CleanupResult:
    removed: list[Removable] = field(default_factory=list)
    kept_changed: list[Path] = field(default_factory=list)  # not as the app wrote it: kept

    @property
    def freed(self) -> int:
        return sum(r.bytes for r in self.removed)


def _size(path: Path) -> int | None:
    """Bytes at ``path`` (a regular file, or a real folder's files); None if missing/odd."""
    try:
        if path.is_symlink():
            return None
        if path.is_file():
            return path.stat().st_size
        if path.is_dir():
            total = 0
            for root, dirs, files in os.walk(path):
                if any(Path(root, d).is_symlink() for d in dirs):
                    return None
                total += sum(os.lstat(os.path.join(root, f)).st_size for f in files)
            return total
    except OSError:
        return None
    return None


def plan_cleanup(
    db: DbSource,
    *,
    older_than_days: float | None = None,
    max_total_bytes: int | None = None,
    now: datetime | None = None,
    keep: Collection[Path] = (),
) -> tuple[list[Removable], list[Path]]:
    """(exports to remove, oldest first; exports kept because they changed). ``keep``: never
    removed (the export just written), though counted in the total size."""
    if older_than_days is None and max_total_bytes is None:
        raise InvalidOptionsError("say how to clean: an age (days) and/or a total size")
    if (older_than_days is not None and older_than_days < 0) or (
        max_total_bytes is not None and max_total_bytes < 0
    ):
        raise InvalidOptionsError("age and size limits cannot be negative")
    now = now or datetime.now(UTC)
    with reading(db) as conn:
        rows = conn.execute(
            "SELECT path, bytes, max(created_at) FROM export_history GROUP BY path"
        ).fetchall()
    live: list[Removable] = []
    changed: list[Path] = []
    for path, nbytes, created in rows:
        p = Path(path)
        size = _size(p)
        if size is None:
            continue  # gone (or a symlink now): nothing to do
        if size != nbytes:
            changed.append(p)
            continue
        when = datetime.strptime(created, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        live.append(Removable(p, nbytes, when))
    live.sort(key=lambda r: (r.created_at, str(r.path)))
    remove: list[Removable] = []
    kept = {os.path.abspath(p) for p in keep}
    if older_than_days is not None:
        cutoff = now - timedelta(days=older_than_days)
        remove = [r for r in live if r.created_at < cutoff and str(r.path) not in kept]
    if max_total_bytes is not None:
        rest = [r for r in live if r not in remove]
        total = sum(r.bytes for r in rest)
        for r in rest:  # oldest first
            if total <= max_total_bytes:
                break
            if str(r.path) in kept:
                continue
            remove.append(r)
            total -= r.bytes
    return remove, changed


def clean_exports(
    db: DbSource,
    *,
    older_than_days: float | None = None,
    max_total_bytes: int | None = None,
    now: datetime | None = None,
    dry_run: bool = False,
    keep: Collection[Path] = (),
) -> CleanupResult:
    """Remove the exports :func:`plan_cleanup` picks (unless ``dry_run``)."""
    remove, changed = plan_cleanup(
        db, older_than_days=older_than_days, max_total_bytes=max_total_bytes, now=now, keep=keep
    )
    result = CleanupResult(kept_changed=changed)
    for r in remove:
        if _size(r.path) != r.bytes:  # changed since it was planned: keep it
            result.kept_changed.append(r.path)
            continue
        if not dry_run:
            if r.path.is_dir():
                shutil.rmtree(r.path)
            else:
                r.path.unlink()
        result.removed.append(r)
    if not dry_run and result.removed:
        conn = connect_writable(db)
        try:
            with conn:
                conn.executemany(
                    "DELETE FROM export_history WHERE path = ?",
                    [(str(r.path),) for r in result.removed],
                )
        except sqlite3.Error as exc:
            raise DatabaseError(
                f"exports removed, but the history was not updated: {exc}"
            ) from None
        finally:
            if conn is not db:
                conn.close()
    return result


def auto_clean(
    db: DbSource,
    keep_days: float,
    keep_mb: float,
    *,
    keep: Collection[Path] = (),
    now: datetime | None = None,
) -> CleanupResult | None:
    """The settings' automatic clean-up, run after each export (``export_keep_days``,
    ``export_keep_mb``; 0 = that limit off): None when both are off. ``keep`` (the export just
    written) is never removed by it, even alone above the size."""
    if keep_days <= 0 and keep_mb <= 0:
        return None
    return clean_exports(
        db,
        older_than_days=keep_days if keep_days > 0 else None,
        max_total_bytes=int(keep_mb * 2**20) if keep_mb > 0 else None,
        now=now,
        keep=keep,
    )


def clean_after_export(
    db: DbSource,
    keep_days: float,
    keep_mb: float,
    written: Path | None,
    say: Callable[[str], None],
) -> CleanupResult | None:
    """:func:`auto_clean` after an export, which it never fails: what it removed, or why it
    could not, goes to ``say`` (one line)."""
    try:
        result = auto_clean(db, keep_days, keep_mb, keep=[written] if written else ())
    except (ExportError, OSError) as exc:
        say(f"warning: the automatic clean-up of old exports failed: {exc}")
        return None
    if result is not None and result.removed:
        n, mib = len(result.removed), result.freed / 2**20
        say(f"removed {n} old export{'' if n == 1 else 's'} ({mib:.1f} MB; clean-up settings)")
    return result


def parse_size(text: str) -> int:
    """``500M``, ``2G``, ``1.5GB``, ``100000`` (bytes) -> bytes."""
    t = text.strip().upper().removesuffix("B")
    scale = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}.get(t[-1:], 1)
    number = t[:-1] if scale > 1 else t
    try:
        value = float(number)
    except ValueError:
        raise InvalidOptionsError(f"not a size: {text!r} (e.g. 500M, 2G)") from None
    if value < 0:
        raise InvalidOptionsError(f"not a size: {text!r}")
    return int(value * scale)
