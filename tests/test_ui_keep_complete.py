"""The collection wizard's "Keep this complete…": the chosen underlyings become a watchlist
with the wizard's interval and months (every offered expiry, kept complete from then on)."""

from __future__ import annotations

import pytest

from expirytrack_desktop.store.watchlists import list_watchlists
from expirytrack_desktop.ui.qt import Qt, QtWidgets
from tests.test_ui_collect import app_window, click, run_wizard

__all__ = ["app_window"]
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")


def test_keep_this_complete_saves_a_watchlist(qtbot, app_window):
    window, controller, _sim = app_window
    wiz, _chosen = run_wizard(qtbot, window)
    page = wiz.review_page
    click(qtbot, page.keep)
    dialog = page.keep_dialog
    qtbot.waitExposed(dialog)
    assert dialog.instruments.text() == "NIFTY" and dialog.kind.currentData() == "list"
    assert dialog.months.value() == wiz.options_page.months.value()
    buttons = dialog.findChild(QtWidgets.QDialogButtonBox)
    save = buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Save)
    qtbot.mouseClick(save, Qt.MouseButton.LeftButton)  # no name yet: stays open, says why
    assert dialog.isVisible() and dialog.error.text()
    dialog.name.setText("nifty-all")
    qtbot.mouseClick(save, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=3000)
    [wl] = list_watchlists(controller.runtime.db)
    assert (wl.name, wl.kind, wl.keys) == ("nifty-all", "list", ("NSE_INDEX|Nifty 50",))
    assert wl.interval == wiz.options_page.interval.currentData()
    assert wl.months == wiz.options_page.months.value()
    assert "Saved watchlist nifty-all" in page.message.text()
    wiz.reject()
