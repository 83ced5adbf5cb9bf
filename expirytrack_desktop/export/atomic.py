"""Write-then-rename outputs: nothing half-written ever carries the final name.

The temporary file or folder lives beside the target (same file system, so the final
``os.replace`` is atomic for a file) and is removed on any failure or cancel. The temporary
names and the final rename (with its Windows retry) are :mod:`expirytrack_desktop.fsutil`'s,
shared with the app's small state files; here other writers (CSV, Parquet, ZIP) stream into
the temporary path, so there is no single buffer to write.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
from pathlib import Path
from types import TracebackType

from expirytrack_desktop.export.errors import (
    DiskFullError,
    ExportError,
    OutputExistsError,
    UnwritableOutputError,
)
from expirytrack_desktop.fsutil import fsync_dir, replace, sibling_temp

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DENIED = {errno.EACCES, errno.EPERM, errno.EROFS}


def os_error_to_export_error(exc: OSError, where: Path) -> ExportError:
    """One-line user message for a file-system failure."""
    if exc.errno in _DISK_FULL:
        return DiskFullError(f"disk full while writing {where}; the partial export was removed")
    if exc.errno in _DENIED:
        return UnwritableOutputError(f"cannot write to {where.parent}: permission denied")
    reason = exc.strerror or exc.__class__.__name__
    return UnwritableOutputError(f"cannot write {where}: {reason}")


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


class AtomicOutput:
    """``with AtomicOutput(final, folder=..., overwrite=...) as tmp: write to tmp; commit()``.

    Leaving the block without :meth:`commit` (an exception, a cancel) removes ``tmp``.
    """

    def __init__(self, final: Path, *, folder: bool, overwrite: bool) -> None:
        self.final = final
        self.folder = folder
        self.overwrite = overwrite
        self.tmp = sibling_temp(final, ".part")
        self.committed = False

    def __enter__(self) -> Path:
        final = self.final
        if final.exists() or final.is_symlink():
            if not self.overwrite:
                raise OutputExistsError(f"{final} exists (choose another name or overwrite)")
            if final.is_dir() != self.folder:
                kind = "a folder" if final.is_dir() else "a file"
                raise OutputExistsError(f"{final} exists and is {kind}; will not replace it")
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
            if self.folder:
                self.tmp.mkdir()
        except OSError as exc:
            raise os_error_to_export_error(exc, final) from None
        if not os.access(final.parent, os.W_OK):
            _remove(self.tmp)
            raise UnwritableOutputError(f"cannot write to {final.parent}: permission denied")
        return self.tmp

    def commit(self) -> None:
        """Move the finished output to its final name (replacing it if allowed)."""
        try:
            if self.folder and self.final.exists():
                old = sibling_temp(self.final, ".old")
                replace(self.final, old)
                replace(self.tmp, self.final)
                _remove(old)
            else:
                replace(self.tmp, self.final)
            fsync_dir(self.final.parent)
        except OSError as exc:
            raise os_error_to_export_error(exc, self.final) from None
        self.committed = True

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.committed:
            _remove(self.tmp)
