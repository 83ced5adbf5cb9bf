"""The wizard's first step searches every F&O underlying of the instrument master as you type:
grouped Indices / Stocks, Enter adds the highlighted match, "All stocks" adds every stock, the
7 indices stay the default list."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

from datetime import date

import pytest
from PySide6 import QtCore

from expirytrack_desktop.sandbox import Market, SimulatorApp
from tests.test_ui_support import close_app, make_window

Qt = QtCore.Qt
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")
TODAY = date(2025, 11, 20)


@pytest.fixture
def app_window(qtbot, qloop, tmp_path):
    market = Market(seed=3, today=TODAY, strikes_per_side=1, stocks=True)
    sim = SimulatorApp(market, rate_limit=None)
    window, controller = make_window(tmp_path, sim)
    window.show()
    controller.schedule(controller.start(), name="start")
    qtbot.waitUntil(lambda: controller.runtime is not None, timeout=10000)
    yield window, controller, sim
    close_app(qtbot, qloop, window, controller)


def _open_wizard(qtbot, window):
    window.act_new.trigger()
    wiz = window.collect_wizard
    qtbot.waitExposed(wiz)
    page = wiz.underlyings_page
    qtbot.waitUntil(lambda: page.search.btn_all_stocks.isEnabled(), timeout=20000)
    return wiz, page


def test_search_groups_matches_and_enter_adds_the_highlighted_one(qtbot, app_window):
    window, _controller, sim = app_window
    wiz, page = _open_wizard(qtbot, window)
    default = [it.data(Qt.ItemDataRole.UserRole) for it in page.items()]
    assert default == ["NIFTY", "BANKNIFTY", "FINNIFTY", "MIDCPNIFTY", "NIFTYNXT50", "SENSEX",
                       "BANKEX"]  # fmt: skip
    assert "224 stocks" in page.search.status.text()
    field = page.search.field
    qtbot.keyClicks(field, "bank")
    groups = page.search.groups()
    assert groups[0].startswith("Indices") and groups[1].startswith("Stocks")
    symbols = [s for s, _ in page.search.matches()]
    assert symbols[:2] == ["BANKEX", "BANKNIFTY"] and "BANKBARODA" in symbols
    assert "FEDERALBNK" in symbols and "ITC" not in symbols  # FEDERAL BANK LTD: by its name
    field.clear()
    qtbot.keyClicks(field, "mahindra")  # part of a company name, any case
    assert page.search.groups() == ["Stocks (3)"]
    assert [s for s, _ in page.search.matches()] == ["KOTAKBANK", "M&M", "TECHM"]
    qtbot.keyClick(field, Qt.Key.Key_Down)  # from the first match to the second
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert wiz.currentPage() is page  # Enter did not press Next
    mm_key = next(u.key for u in sim.market.underlyings() if u.symbol == "M&M")
    assert page.selected() == [("M&M", mm_key)]
    assert field.text() == "" and not page.search.results.isVisible()
    qtbot.keyClicks(field, "bajaj-auto")
    qtbot.keyClick(field, Qt.Key.Key_Enter)
    assert [s for s, _ in page.selected()] == ["M&M", "BAJAJ-AUTO"]
    assert "Added BAJAJ-AUTO" in page.message.text()


def test_all_stocks_adds_every_stock(qtbot, app_window):
    window, _controller, _sim = app_window
    _wiz, page = _open_wizard(qtbot, window)
    qtbot.mouseClick(page.search.btn_all_stocks, Qt.MouseButton.LeftButton)
    chosen = page.selected()
    assert len(chosen) == 224 and all(k.startswith("NSE_EQ|") for _, k in chosen)
    assert len(page.items()) == 7 + 224
    qtbot.mouseClick(page.search.btn_all_stocks, Qt.MouseButton.LeftButton)
    assert len(page.items()) == 7 + 224  # no duplicates
