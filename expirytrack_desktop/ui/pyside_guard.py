"""Work around reference-count bugs of PySide6 6.12 on the ``None``/``True``/``False`` singletons.

Measured here: ``Signal.emit()`` returns ``True`` without taking a reference (one reference
lost per emit, ours, qasync's thread-to-loop signal and pytest-qt's alike); every call of a
Python slot from Qt whose result is ``None`` (nearly every slot: timers, clicks) loses one
reference to ``None``; a Python override of ``QWizardPage.isComplete`` loses one to its bool.
After a few thousand, the interpreter aborts ("Fatal Python error: bool_dealloc" /
"none_dealloc"). Other objects are not affected (a slot returning an object keeps its count).

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


def _hold_forever(value: bool | None) -> None:
    holder = (value,) * _TOP_UP
    ctypes.pythonapi.Py_IncRef(ctypes.py_object(holder))  # never freed, on purpose


_SINGLETONS = (None, True, False)


def _top_up(force: bool = False) -> None:
    for value in _SINGLETONS:
        if force or sys.getrefcount(value) < _LOW_WATER:
            _hold_forever(value)


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
