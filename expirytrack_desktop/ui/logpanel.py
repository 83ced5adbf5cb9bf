"""A logging handler that feeds a read-only text widget, safely from any thread.

Records are formatted where they are emitted and cross to the GUI thread through a queued
signal; the widget keeps a bounded number of lines so a long run cannot grow memory.
"""

from __future__ import annotations

import contextlib
import logging

from expirytrack_desktop.ui.qt import QtCore, QtGui, QtWidgets, Signal

MAX_LINES = 5000


class _Bridge(QtCore.QObject):
    record = Signal(int, str)


class QtLogHandler(logging.Handler):
    """Forward formatted records to a signal (thread-safe: Qt queues cross-thread emits)."""

    def __init__(self, level: int = logging.INFO) -> None:
        super().__init__(level)
        self.bridge = _Bridge()
        self.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception:  # never let logging break the app
            self.handleError(record)
            return
        with contextlib.suppress(RuntimeError):  # the bridge was deleted at shutdown
            self.bridge.record.emit(record.levelno, text)


class LogPanel(QtWidgets.QPlainTextEdit):
    """The window's log: monospace, read-only, bounded; warnings and errors stand out by weight
    and a text prefix (not colour alone, so it reads the same in dark and light palettes)."""

    def __init__(self, parent: QtWidgets.QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("logPanel")
        self.setReadOnly(True)
        self.setMaximumBlockCount(MAX_LINES)
        self.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.NoWrap)
        font = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
        self.setFont(font)
        self.handler = QtLogHandler()
        self.handler.bridge.record.connect(self.append_record)

    def append_record(self, level: int, text: str) -> None:
        fmt = QtGui.QTextCharFormat()
        if level >= logging.WARNING:
            fmt.setFontWeight(QtGui.QFont.Weight.Bold)
        cursor = self.textCursor()
        cursor.movePosition(QtGui.QTextCursor.MoveOperation.End)
        if not self.document().isEmpty():
            cursor.insertBlock()
        cursor.insertText(text, fmt)
        bar = self.verticalScrollBar()
        bar.setValue(bar.maximum())

    def attach(self, logger: logging.Logger | None = None) -> None:
        (logger or logging.getLogger()).addHandler(self.handler)

    def detach(self, logger: logging.Logger | None = None) -> None:
        (logger or logging.getLogger()).removeHandler(self.handler)
