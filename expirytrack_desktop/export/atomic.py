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
import re
import shutil
import stat
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from expirytrack_desktop.export.errors import (
    DiskFullError,
    ExportError,
    OutputExistsError,
    UnwritableOutputError,
)
from expirytrack_desktop.fsutil import fsync_dir, replace, sibling_temp
from expirytrack_desktop.store.processes import pid_alive

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)}
_DENIED = {errno.EACCES, errno.EPERM}
_NO_LINKS = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}
# Temporary names are fsutil.sibling_temp's: ".<final name>.<pid>.<8 hex>.part" (or ".old").
_OURS = re.compile(r"^\..+\.(\d+)\.[0-9a-f]{8}\.(?:part|old)$")
MAX_UNIQUE = 1000  # "name_2.csv" ... before giving up on a default name


def os_error_to_export_error(exc: OSError, where: Path) -> ExportError:
    """One-line user message for a file-system failure."""
    if exc.errno in _DISK_FULL:
        return DiskFullError(f"disk full while writing {where}; the partial export was removed")
    if exc.errno == errno.EROFS:
        return UnwritableOutputError(f"cannot write to {where.parent}: read-only file system")
    if exc.errno in _DENIED:
        return UnwritableOutputError(f"cannot write to {where.parent}: permission denied")
    blocker = next((p for p in where.parents if p.exists() and not p.is_dir()), None)
    if blocker is not None:  # a typo, not the disk: "File exists" (POSIX) / "path not found"
        return UnwritableOutputError(f"cannot write {where}: {blocker} is a file, not a folder")
    reason = exc.strerror or exc.__class__.__name__
    return UnwritableOutputError(f"cannot write {where}: {reason}")


def _remove(path: Path) -> None:
    """Remove a temporary file or folder; nothing there (or a read-only medium) is fine."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif path.exists() or path.is_symlink():
            path.unlink()


def clean_stale_parts(folder: Path, pid_alive: Callable[[int | None], bool] = pid_alive) -> int:
    """Remove temporary outputs that exports killed mid-way left in ``folder``.

    Only names this app makes (``.<name>.<pid>.<hex>.part`` / ``.old``) and only when that
    process is gone: a running export's temporary file is never touched. Returns how many.
    """
    removed = 0
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return 0
    for entry in entries:
        m = _OURS.match(entry.name)
        if m is None or int(m[1]) == os.getpid() or pid_alive(int(m[1])):
            continue
        _remove(Path(entry.path))
        removed += 1
    return removed


def unique_name(final: Path, n: int) -> Path:
    """``x.csv`` -> ``x_2.csv`` (n=2); a folder name gets the number at its end."""
    if n < 2:
        return final
    return final.with_name(f"{final.stem}_{n}{final.suffix}")


class AtomicOutput:
    """``with AtomicOutput(final, folder=..., overwrite=...) as tmp: write to tmp; commit()``.

    Leaving the block without :meth:`commit` (an exception, a cancel) removes ``tmp``.
    Without ``overwrite`` the final name is claimed atomically at commit (a hard link for a
    file, a rename for a folder): of two exports racing for one name, the second fails with
    :class:`OutputExistsError` -- or, with ``unique`` (a default name), takes ``name_2``.
    ``overwrite`` replaces only a regular file (or a folder with a folder), never a FIFO,
    a device or a symlink.
    """

    def __init__(self, final: Path, *, folder: bool, overwrite: bool, unique: bool = False) -> None:
        self.final = final
        self.folder = folder
        self.overwrite = overwrite
        self.unique = unique and not overwrite
        self.tmp = sibling_temp(final, ".part")
        self.committed = False

    def check(self) -> None:
        """Raise :class:`OutputExistsError` now if the target is taken and may not be
        replaced, before any progress is reported (the claim at commit stays the atomic
        check)."""
        if self.final.exists() or self.final.is_symlink():
            self._check_existing(self.final)

    def __enter__(self) -> Path:
        final = self.final
        self.check()
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise os_error_to_export_error(exc, final) from None
        clean_stale_parts(final.parent)
        try:
            if self.folder:
                self.tmp.mkdir()
            else:
                self.tmp.touch(exist_ok=False)
        except OSError as exc:
            _remove(self.tmp)
            raise os_error_to_export_error(exc, final) from None
        if not os.access(final.parent, os.W_OK):
            _remove(self.tmp)
            raise UnwritableOutputError(f"cannot write to {final.parent}: permission denied")
        if not self.folder:
            self.tmp.unlink()  # the writer creates it again (exclusively)
        return self.tmp

    def _check_existing(self, final: Path) -> None:
        if not self.overwrite:
            if self.unique:
                return  # a free name is found at commit
            raise OutputExistsError(f"{final} exists", replaceable=True)
        st = final.lstat()
        if self.folder and not stat.S_ISDIR(st.st_mode):
            raise OutputExistsError(f"{final} exists and is not a folder; will not replace it")
        if not self.folder and not stat.S_ISREG(st.st_mode):
            kind = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise OutputExistsError(f"{final} exists and is {kind}; will not replace it")

    def commit(self) -> None:
        """Move the finished output to its final name (replacing it only if allowed)."""
        try:
            if self.overwrite:
                self._replace()
            else:
                self._claim()
            fsync_dir(self.final.parent)
        except OSError as exc:
            raise os_error_to_export_error(exc, self.final) from None
        self.committed = True

    def _replace(self) -> None:
        if self.folder and self.final.exists():
            old = sibling_temp(self.final, ".old")
            replace(self.final, old)
            replace(self.tmp, self.final)
            _remove(old)
        else:
            replace(self.tmp, self.final)

    def _claim(self) -> None:
        base = self.final
        for n in range(1, MAX_UNIQUE + 1 if self.unique else 2):
            target = unique_name(base, n)
            try:
                self._claim_one(target)
            except FileExistsError:
                continue
            self.final = target
            return
        raise OutputExistsError(f"{base} exists", replaceable=True)

    def _claim_one(self, target: Path) -> None:
        """Give ``tmp`` the name ``target`` unless something already has it (atomically)."""
        if target.exists() or target.is_symlink():
            raise FileExistsError(target)
        if self.folder:
            os.rename(self.tmp, target)  # fails if target exists (non-empty) or is a file
            return
        try:
            os.link(self.tmp, target)  # fails with EEXIST if target exists: atomic claim
        except FileExistsError:
            raise
        except OSError as exc:
            if exc.errno not in _NO_LINKS:
                raise
            # no hard links on this file system (FAT, some shares): claim, then replace
            fd = os.open(target, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            os.close(fd)
            replace(self.tmp, target)
            return
        _remove(self.tmp)

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if not self.committed:
            _remove(self.tmp)
