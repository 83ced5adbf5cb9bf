"""Python's cycle collector, run on the GUI thread only.

The collector runs in whichever thread happens to allocate when a generation's threshold is
crossed: the engine's thread, a candle loader of the analysis executor. Closed windows,
rebuilt charts and dialogs leave widgets in reference cycles (pyqtgraph's parentless context
menus, page callbacks), and the collector destroys those Python-owned QWidgets and QPixmaps
wherever it runs; Qt allows that on the GUI thread only and crashes at random otherwise (a
full test run died with SIGSEGV while a candle loader thread was collecting a closed window).
So while the window runs the automatic collector is off, and a timer on the GUI thread
collects the generations that are due, by Python's own thresholds.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator

from expirytrack_desktop.ui.qt import QtCore

INTERVAL_MS = 500  # how long cyclic garbage may wait; an idle check costs microseconds


class GuiThreadCollector:
    """Create and start it on the GUI thread; ``stop`` gives the collector back to Python."""

    def __init__(self, interval_ms: int = INTERVAL_MS) -> None:
        self.thresholds = gc.get_threshold()
        self.timer = QtCore.QTimer()
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.collect_due)
        self._was_enabled = False
        self.running = False

    def start(self) -> None:
        self._was_enabled = gc.isenabled()
        gc.disable()
        self.timer.start()
        self.running = True

    def stop(self) -> None:
        """Collect what is left here, on the GUI thread, then let Python collect again."""
        self.timer.stop()
        if self.running:
            self.running = False
            gc.collect()
            if self._was_enabled:
                gc.enable()

    def collect_due(self) -> int:
        """Collect the oldest generation whose count passed its threshold (with the younger
        ones, as ``gc.collect(n)`` does); the number of unreachable objects found."""
        due = -1
        counts = zip(gc.get_count(), self.thresholds, strict=False)  # 3 and 3 in CPython
        for generation, (count, threshold) in enumerate(counts):
            if count <= threshold:
                break
            due = generation
        return gc.collect(due) if due >= 0 else 0


@contextlib.contextmanager
def collect_on_gui_thread(interval_ms: int = INTERVAL_MS) -> Iterator[GuiThreadCollector]:
    """The collector for the span of a ``with`` block (the app's run, a window test)."""
    collector = GuiThreadCollector(interval_ms)
    collector.start()
    try:
        yield collector
    finally:
        collector.stop()
