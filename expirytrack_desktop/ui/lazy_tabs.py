"""Tabs whose pages are built the first time they are needed, so the window starts sooner.

Each lazy tab holds an empty placeholder until it is first shown (or its page is asked for,
e.g. ``window.chart_page``); then the page is built (importing its modules only then) and put
in the placeholder's place, under the same label. A page that must work in the background
(the schedules' log-in-before-it warning) can be built after a delay instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from expirytrack_desktop.ui.qt import QtCore, QtWidgets


@dataclass(slots=True)
class _Tab:
    label: str
    factory: Callable[[], QtWidgets.QWidget]
    placeholder: QtWidgets.QWidget
    page: QtWidgets.QWidget | None = None


class LazyTabs(QtCore.QObject):
    """Adds tabs to ``tabs`` and builds their pages on demand (see the module docstring)."""

    built = QtCore.Signal(str)  # the page's name, just after it took its tab

    def __init__(self, tabs: QtWidgets.QTabWidget) -> None:
        super().__init__(tabs)
        self.tabs = tabs
        self._tabs: dict[str, _Tab] = {}
        tabs.currentChanged.connect(self._on_current_changed)

    def add(self, name: str, label: str, factory: Callable[[], QtWidgets.QWidget]) -> None:
        """A tab labelled ``label``; ``factory()`` builds its page when first needed."""
        placeholder = QtWidgets.QWidget()
        placeholder.setObjectName(f"{name}Placeholder")
        self._tabs[name] = _Tab(label, factory, placeholder)
        self.tabs.addTab(placeholder, label)

    def is_built(self, name: str) -> bool:
        return self._tabs[name].page is not None

    def page(self, name: str) -> QtWidgets.QWidget:
        """The page of tab ``name``, built now if it was not yet."""
        tab = self._tabs[name]
        if tab.page is not None:
            return tab.page
        page = tab.page = tab.factory()
        index = self.tabs.indexOf(tab.placeholder)
        was_current = self.tabs.currentIndex() == index
        blocked = self.tabs.blockSignals(True)  # the tab stays the same one: no currentChanged
        try:
            self.tabs.insertTab(index + 1, page, tab.label)
            if was_current:
                self.tabs.setCurrentIndex(index + 1)
            self.tabs.removeTab(index)
        finally:
            self.tabs.blockSignals(blocked)
        tab.placeholder.deleteLater()
        self.built.emit(name)
        return page

    def _on_current_changed(self, index: int) -> None:
        shown = self.tabs.widget(index)
        for name, tab in self._tabs.items():
            if tab.page is None and tab.placeholder is shown:
                self.page(name)
                return
