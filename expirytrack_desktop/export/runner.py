"""``run_export``: selection -> streamed file(s), atomically renamed, recorded in history."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import BinaryIO

from expirytrack_desktop.export.db import DbSource
from expirytrack_desktop.export.options import ExportOptions
from expirytrack_desktop.export.progress import ExportProgress, ExportResult
from expirytrack_desktop.timeutil import now_utc

Opener = Callable[[Path], BinaryIO]


def _open_binary(path: Path) -> BinaryIO:
    return open(path, "xb")  # the writer owns and closes it


def run_export(
    db: DbSource,
    options: ExportOptions,
    out_path: str | Path,
    *,
    overwrite: bool = False,
    progress: Callable[[ExportProgress], None] | None = None,
    cancel: threading.Event | None = None,
    clock: Callable[[], datetime] = now_utc,
    record_history: bool = True,
    open_file: Opener = _open_binary,
) -> ExportResult:
    """Export the selection to ``out_path`` (a file, or a folder when
    ``options.output_is_folder``); blocking, meant for a worker thread.

    ``db`` is a database path (opened read-only in the calling thread) or a connection that
    belongs to the calling thread. Data goes to a temporary name beside ``out_path`` and is
    renamed into place only when complete; on any error or ``cancel.set()`` the temporary
    output is removed and an :class:`ExportError` subclass is raised. ``progress`` is called
    in the worker thread. ``open_file`` (tests) opens each output file for binary writing.
    """
    raise NotImplementedError
