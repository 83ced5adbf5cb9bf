"""The watchlists on the Schedules page: what each keeps, completeness from the database,
the next run of its schedule, the last result, and Run now (``watch run NAME``) — driven by
clicks on the real window, the OS scheduler behind a fake command runner."""

from __future__ import annotations

import pytest

from expirytrack_desktop.collect.watchlist import completeness
from expirytrack_desktop.schedule import Schedule
from expirytrack_desktop.store.watchlists import Watchlist, record_run, save_watchlist
from expirytrack_desktop.ui import watchlists_panel
from expirytrack_desktop.ui.qt import Qt, QtWidgets
from tests.test_ui_schedules import PY, page  # the fixture
from tests.test_ui_support import TODAY, small_simulator

__all__ = ["page"]
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")
NIFTY = "NSE_INDEX|Nifty 50"


def test_watchlists_listed_with_completeness_next_run_and_run_now(qtbot, page, monkeypatch):
    page, _runner, controller = page
    panel = page.watchlists
    qtbot.waitUntil(lambda: panel.loaded > 0, timeout=5000)
    assert panel.model.rowCount() == 0 and "No watchlists yet" in panel.note.text()
    assert not panel.btn_run.isEnabled()

    db = controller.runtime.db
    wl = Watchlist("nf", "list", (NIFTY,), ("FUT",), "5", "day", 1)
    save_watchlist(db, wl)
    expiries = small_simulator().market.expiries(NIFTY)  # the window's simulator's
    db.upsert_expiries(NIFTY, expiries)  # known from an earlier look, nothing collected
    record_run(db, "nf", {"state": "completed", "summary": "completed, 0 windows"})
    page.manager.add(Schedule(name="watch-nf", instruments=[], times=["16:30"], watchlist="nf"))
    controller.analysis.today = lambda: TODAY
    loaded = panel.loaded
    page.refresh()
    qtbot.waitUntil(lambda: panel.loaded > loaded, timeout=5000)

    assert panel.model.rowCount() == 1
    cell = [panel.model.data(panel.model.index(0, c)) for c in range(5)]
    assert cell[0] == "nf"
    assert cell[1] == "NIFTY: FUT, ±5 strikes, day, 1 month(s)"
    c = completeness(db, wl, [NIFTY], today=TODAY)
    assert c.total == len(expiries) and c.complete == 0 and c.at_risk > 0
    assert cell[2] == f"0/{len(expiries)} expiries, {c.at_risk} at risk"
    assert cell[3] != "—"  # the schedule's next run
    assert cell[4].endswith("— completed, 0 windows")
    # The schedule itself is listed above, as running the watchlist.
    names = [page.model.data(page.model.index(r, 1)) for r in range(page.model.rowCount())]
    assert "watchlist nf" in names

    started = []

    class FakeProcess:
        def __init__(self, argv, **_kw):
            started.append(argv)

        def poll(self):
            return 0

    monkeypatch.setattr(watchlists_panel.subprocess, "Popen", FakeProcess)
    panel.table.selectRow(0)
    assert panel.btn_run.isEnabled()
    qtbot.mouseClick(panel.btn_run, Qt.MouseButton.LeftButton)
    db_path = str(controller.services.db_path)
    assert started == [
        [PY, "-m", "expirytrack_desktop", "watch", "run", "nf", "--db", db_path, "--demo"]
    ]
    assert "Started watchlist nf" in panel.note.text()


def test_new_watchlist_dialog_bad_input_then_saved(qtbot, page):
    from expirytrack_desktop.store.watchlists import get_watchlist, list_watchlists

    page, _runner, controller = page
    panel = page.watchlists
    qtbot.waitUntil(lambda: panel.loaded > 0, timeout=5000)
    db = controller.runtime.db
    qtbot.mouseClick(panel.btn_new, Qt.MouseButton.LeftButton)
    dialog = panel.dialog
    buttons = dialog.findChild(QtWidgets.QDialogButtonBox)
    save = buttons.button(buttons.StandardButton.Save)
    for field, value, text in (
        ("name", "bad name", "bad watchlist name"),
        ("instruments", "NIFTEE", "instrument 'NIFTEE'"),  # no master cached: keys only
        ("strikes", "0%", "bad --strikes"),
        ("types", "XX", "contract types"),
    ):
        dialog.name.setText("mine")
        dialog.instruments.setText("NIFTY")
        dialog.strikes.setText("all")
        dialog.types.setText("CE,PE,FUT")
        getattr(dialog, field).setText(value)
        qtbot.mouseClick(save, Qt.MouseButton.LeftButton)
        assert dialog.isVisible() and text in dialog.error.text(), (field, dialog.error.text())
        assert list_watchlists(db) == []  # nothing stored
    dialog.types.setText("FUT")
    dialog.strikes.setText("5%")
    loaded = panel.loaded
    qtbot.mouseClick(save, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=3000)
    wl = get_watchlist(db, "mine")
    assert wl is not None and (wl.kind, wl.keys, wl.types, wl.strikes) == (
        "list",
        (NIFTY,),
        ("FUT",),
        "5%",
    )
    qtbot.waitUntil(lambda: panel.loaded > loaded, timeout=5000)
    assert panel.model.data(panel.model.index(0, 0)) == "mine"
    assert "Saved watchlist mine" in panel.note.text()
    # "All stocks" needs no underlyings; a second "mine" is refused (no --replace here).
    qtbot.mouseClick(panel.btn_new, Qt.MouseButton.LeftButton)
    dialog = panel.dialog
    dialog.name.setText("mine")
    dialog.kind.setCurrentIndex(2)
    assert not dialog.instruments.isEnabled()
    buttons = dialog.findChild(QtWidgets.QDialogButtonBox)
    qtbot.mouseClick(buttons.button(buttons.StandardButton.Save), Qt.MouseButton.LeftButton)
    assert dialog.isVisible() and "exists already" in dialog.error.text()
    dialog.name.setText("stocks")
    qtbot.mouseClick(buttons.button(buttons.StandardButton.Save), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: not dialog.isVisible(), timeout=3000)
    stocks = get_watchlist(db, "stocks")
    assert stocks is not None and stocks.kind == "stocks" and stocks.keys == ()
