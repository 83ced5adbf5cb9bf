"""Reference cycles are collected on the GUI thread only, whichever thread allocates."""

from __future__ import annotations

import gc
import threading

from expirytrack_desktop.ui.gui_gc import GuiThreadCollector, collect_on_gui_thread


class Cycle:
    """An object in a reference cycle that notes the thread its finalizer ran on."""

    def __init__(self, seen: list[int]) -> None:
        self.seen = seen
        self.me = self

    def __del__(self) -> None:
        self.seen.append(threading.get_ident())


def allocate_in_a_worker() -> list[list[int]]:
    """Far more live container allocations than the first generation's threshold: Python
    alone would run the collector in this thread."""
    kept: list[list[int]] = []
    t = threading.Thread(target=lambda: kept.extend([] for _ in range(gc.get_threshold()[0] * 20)))
    t.start()
    t.join()
    return kept


def test_a_worker_never_collects_a_cycle_the_gui_thread_does(qtbot):
    gc.collect()
    seen: list[int] = []
    with collect_on_gui_thread(interval_ms=20) as collector:
        assert not gc.isenabled() and collector.running
        Cycle(seen)
        kept = allocate_in_a_worker()
        assert seen == []  # the worker allocated past every threshold, yet collected nothing
        qtbot.waitUntil(lambda: seen != [], timeout=5000)
        del kept
    assert seen == [threading.get_ident()]


def test_without_it_a_worker_collects_the_cycle():
    """The control: what the collector prevents does happen when Python collects alone."""
    assert gc.isenabled()  # no QApplication in this test: the fixture left Python's collector on
    gc.collect()
    seen: list[int] = []
    Cycle(seen)
    assert allocate_in_a_worker()
    assert seen and seen[0] != threading.get_ident()


def test_collect_due_follows_pythons_thresholds(qapp):
    collector = GuiThreadCollector()
    collector.thresholds = (10**9, 10, 10)
    gc.collect()
    Cycle([])
    assert collector.collect_due() == 0  # generation 0 not due yet: nothing collected
    collector.thresholds = (0, 10**9, 10**9)
    assert collector.collect_due() >= 2  # the object and its __dict__


def test_stop_collects_what_is_left_and_gives_the_collector_back(qtbot):
    seen: list[int] = []
    was = gc.isenabled()
    collector = GuiThreadCollector(interval_ms=60_000)
    collector.start()
    Cycle(seen)
    collector.stop()
    assert seen == [threading.get_ident()]
    assert gc.isenabled() == was and not collector.timer.isActive()
    collector.stop()  # twice is harmless
    assert gc.isenabled() == was
