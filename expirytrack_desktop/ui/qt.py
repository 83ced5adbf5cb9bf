"""The one gateway for Qt imports: every other ``ui`` module imports Qt names from here.

Setting ``QT_API`` before qasync is imported makes it pick PySide6 even when a stray PyQt is
installed beside it.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_API", "pyside6")

import qasync  # type: ignore[import-untyped]  # qasync ships no type information
from PySide6 import QtCore, QtGui, QtWidgets
from PySide6.QtCore import Qt, QTimer, Signal, Slot

asyncSlot = qasync.asyncSlot
asyncWrap = qasync.asyncWrap

__all__ = [
    "QTimer",
    "Qt",
    "QtCore",
    "QtGui",
    "QtWidgets",
    "Signal",
    "Slot",
    "asyncSlot",
    "asyncWrap",
    "qasync",
]
