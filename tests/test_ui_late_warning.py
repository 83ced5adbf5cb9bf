"""The collect wizard's review page warns, visibly, about an expiry the plan would reach only
after Upstox deletes it: a market whose oldest offered expiry has its last day today, and one
request an hour allowed (~22 contracts of a month each, in two requests: about two days for
one expiry: too late for that one, in time for an expiry with months left)."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

from datetime import date, datetime

import pytest
from PySide6 import QtCore, QtWidgets

from expirytrack_desktop.sandbox import Market, SimulatorApp
from expirytrack_desktop.timeutil import IST
from tests.test_ui_support import close_app, make_window

Qt = QtCore.Qt
WB = QtWidgets.QWizard.WizardButton
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")


def review(qtbot, wiz, pick_oldest: bool, before=None):
    """From the expiries page: choose the oldest or the newest expiry, go on to the review."""
    p2 = wiz.expiries_page
    assert wiz.currentPage() is p2
    qtbot.waitUntil(lambda: not p2.is_loading() and bool(p2.expiry_items()), timeout=10000)
    qtbot.mouseClick(p2.btn_none, Qt.MouseButton.LeftButton)
    items = sorted(p2.expiry_items(), key=lambda kv: kv[1].text(0))
    chosen = items[0][1] if pick_oldest else items[-1][1]
    chosen.setCheckState(0, Qt.CheckState.Checked)
    qtbot.mouseClick(wiz.button(WB.NextButton), Qt.MouseButton.LeftButton)
    qtbot.mouseClick(wiz.button(WB.NextButton), Qt.MouseButton.LeftButton)
    p4 = wiz.review_page
    assert wiz.currentPage() is p4
    qtbot.waitUntil(
        lambda: p4.estimate is not None and p4.estimate is not before and p4.isComplete(),
        timeout=20000,
    )
    return p4, date.fromisoformat(chosen.text(0))


def test_review_page_warns_about_an_expiry_lost_before_it_is_reached(qtbot, qloop, tmp_path):
    today = datetime.now(IST).date()
    market = Market(seed=3, today=today, underlyings=("NIFTY",), strikes_per_side=5)
    sim = SimulatorApp(market, rate_limit=None)
    # one request an hour, on a budget of its own: the expiry list is the only request made
    ledger = tmp_path / "ratelimit.sqlite3"
    window, controller = make_window(tmp_path, sim, rate="1/3600", ledger=ledger)
    window.show()
    controller.schedule(controller.start(), name="start")
    qtbot.waitUntil(lambda: controller.runtime is not None, timeout=10000)
    try:
        window.act_new.trigger()
        wiz = window.collect_wizard
        qtbot.waitExposed(wiz)
        p1 = wiz.underlyings_page
        qtbot.mouseClick(p1.btn_none, Qt.MouseButton.LeftButton)
        for item in p1.items():
            if item.data(Qt.ItemDataRole.UserRole) == "NIFTY":
                item.setCheckState(Qt.CheckState.Checked)
        qtbot.mouseClick(wiz.button(WB.NextButton), Qt.MouseButton.LeftButton)
        # the oldest expiry offered: its last day is today (the API's oldest marks the edge)
        page, exp = review(qtbot, wiz, pick_oldest=True)
        text = page.summary.toPlainText()
        assert [x.expiry for x in page.estimate.late] == [exp]
        assert f"NIFTY {exp}: vanishes" in text and "Warning: 1 expiry" in text
        assert page.message.isVisible() and "would vanish before" in page.message.text()
        # the newest instead: months left, no warning
        qtbot.mouseClick(wiz.button(WB.BackButton), Qt.MouseButton.LeftButton)
        qtbot.mouseClick(wiz.button(WB.BackButton), Qt.MouseButton.LeftButton)
        page, exp = review(qtbot, wiz, pick_oldest=False, before=page.estimate)
        text = page.summary.toPlainText()
        assert page.estimate.late == () and "vanishes" not in text
        assert not page.message.isVisible() or "would vanish" not in page.message.text()
        wiz.reject()
    finally:
        close_app(qtbot, qloop, window, controller)
