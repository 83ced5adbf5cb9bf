"""Work around a reference-count bug of PySide6 6.12: ``Signal.emit()`` returns ``True``
without taking a reference (measured: ``sys.getrefcount(True)`` drops by one per emit; the
same for a Python override of ``QWizardPage.isComplete``). Every emit from Python — ours,
qasync's own thread-to-loop signal, pytest-qt's — therefore eats a reference to ``True``; after
a few thousand the interpreter aborts with "Fatal Python error: bool_dealloc".

The guard adds references to ``True`` and ``False`` from a timer whenever their count runs
low, so it never reaches zero. The references are held by tuples that are deliberately never
freed (a released holder would give the references back at interpreter shutdown, where the
lost ones then crash the garbage collector). Cost: 0.8 MB per 100,000 emits. Remove it when
PySide6 is fixed (``needs_guard()`` says whether the running version leaks).
"""

from __future__ import annotations

import ctypes
import sys

from expirytrack_desktop.ui.qt import QtCore

_LOW_WATER = 50_000
_TOP_UP = 100_000
_started = False
_timer: QtCore.QTimer | None = None


def needs_guard() -> bool:
    """True when emitting a signal loses a reference to ``True`` in this PySide6."""

    class _Probe(QtCore.QObject):
        ping = QtCore.Signal()

    probe = _Probe()
    before = sys.getrefcount(True)
    for _ in range(8):
        probe.ping.emit()
    leaked = before - sys.getrefcount(True)
    _top_up(force=True)
    return leaked >= 8


def _hold_forever(value: bool) -> None:
    holder = (value,) * _TOP_UP
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(holder))  # never freed, on purpose


def _top_up(force: bool = False) -> None:
    if force or sys.getrefcount(True) < _LOW_WATER:
        _hold_forever(True)
    if force or sys.getrefcount(False) < _LOW_WATER:
        _hold_forever(False)


def install(parent: QtCore.QObject | None = None, interval_ms: int = 250) -> None:
    """Top up now and then every ``interval_ms`` (idempotent)."""
    global _timer, _started
    _top_up(force=not _started)
    _started = True
    if _timer is not None:
        return
    app = parent or QtCore.QCoreApplication.instance()
    _timer = QtCore.QTimer(app)
    _timer.setInterval(interval_ms)
    _timer.timeout.connect(_top_up)
    _timer.start()
