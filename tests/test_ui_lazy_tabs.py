"""Pages built on first use (ui/lazy_tabs.py) and what the window's start-up leaves unimported."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from expirytrack_desktop.ui.lazy_tabs import LazyTabs
from expirytrack_desktop.ui.qt import QtWidgets
from tests.test_ui_support import close_app, make_window, small_simulator

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")


def test_a_lazy_page_is_built_when_its_tab_is_shown_and_takes_the_placeholders_place(qtbot):
    tabs = QtWidgets.QTabWidget()
    qtbot.addWidget(tabs)
    tabs.addTab(QtWidgets.QLabel("first"), "&First")
    lazy = LazyTabs(tabs)
    built: list[str] = []

    def factory() -> QtWidgets.QWidget:
        built.append("second")
        return QtWidgets.QLabel("second page")

    lazy.add("second", "&Second", factory)
    lazy.add("third", "&Third", lambda: QtWidgets.QLabel("third page"))
    changes: list[int] = []
    tabs.currentChanged.connect(changes.append)
    tabs.show()
    assert built == [] and not lazy.is_built("second")
    assert tabs.widget(1).objectName() == "secondPlaceholder"

    tabs.setCurrentIndex(1)
    assert built == ["second"]
    page = tabs.currentWidget()
    assert isinstance(page, QtWidgets.QLabel) and page.text() == "second page"
    assert tabs.indexOf(page) == 1 and tabs.tabText(1) == "&Second" and tabs.count() == 3
    assert changes == [1]  # the swap itself is not a tab change
    assert lazy.page("second") is page and built == ["second"]  # built once
    assert not lazy.is_built("third")


def test_a_lazy_page_asked_for_is_built_without_becoming_current(qtbot):
    tabs = QtWidgets.QTabWidget()
    qtbot.addWidget(tabs)
    lazy = LazyTabs(tabs)
    lazy.add("a", "A", lambda: QtWidgets.QLabel("a page"))
    lazy.add("b", "B", lambda: QtWidgets.QLabel("b page"))
    tabs.show()
    page = lazy.page("b")
    assert tabs.currentIndex() == 0 and tabs.indexOf(page) == 1
    tabs.setCurrentWidget(page)
    assert tabs.currentWidget() is page


def test_the_windows_viewer_pages_wait_for_their_first_use(qtbot, qloop, tmp_path):
    window, controller = make_window(tmp_path, small_simulator())
    window.show()
    try:
        for name in ("chart", "chain", "quality", "schedules"):
            assert not window.lazy_tabs.is_built(name)
        chain = window.chain_page  # asked for by name: built, in its own tab
        assert window.lazy_tabs.is_built("chain") and window.tabs.indexOf(chain) >= 0
        window.tabs.setCurrentIndex(window.tabs.indexOf(chain) - 1)  # the Chart tab
        assert window.lazy_tabs.is_built("chart")
        assert window.tabs.currentWidget() is window.chart_page
    finally:
        close_app(qtbot, qloop, window, controller)


def test_start_up_imports_neither_the_viewer_pages_nor_the_export_and_analysis_engines():
    code = (
        "import json, sys\n"
        "import expirytrack_desktop.app\n"
        "import expirytrack_desktop.ui.launcher\n"
        "print(json.dumps(sorted(sys.modules)))\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", QT_API="pyside6")
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout
    loaded = set(json.loads(out.splitlines()[-1]))
    lazy = {
        "pyqtgraph",
        "numpy",
        "pyarrow",
        "pandas",
        "expirytrack_desktop.analysis.chain",
        "expirytrack_desktop.analysis.series",
        "expirytrack_desktop.export.api",
        "expirytrack_desktop.export.runner",
        "expirytrack_desktop.schedule.manage",
        "expirytrack_desktop.ui.chart_page",
        "expirytrack_desktop.ui.chain_page",
        "expirytrack_desktop.ui.quality_page",
        "expirytrack_desktop.ui.schedules_page",
        "expirytrack_desktop.ui.collect_wizard",
        "expirytrack_desktop.ui.export_wizard",
        "expirytrack_desktop.ui.settings_dialog",
    }
    assert sorted(lazy & loaded) == []
