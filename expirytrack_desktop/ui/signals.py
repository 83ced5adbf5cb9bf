"""The window-wide signals the services emit and the pages listen to."""

from __future__ import annotations

from expirytrack_desktop.ui.qt import QtCore, Signal


class ControllerSignals(QtCore.QObject):
    authChanged = Signal()
    loginNeeded = Signal(str)
    databaseChanged = Signal()
    exportsChanged = Signal()
    jobLogChanged = Signal(int)
    jobFinished = Signal(int, str)
    engineReady = Signal()
    engineFailed = Signal(str)
