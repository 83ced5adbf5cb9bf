"""The export wizard: instruments → expiries → options → columns and output → review → save
dialog → file; history. (Step 4's controls: test_ui_export_output.py.)"""

from __future__ import annotations

import csv
import os
import pathlib
import threading

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

import pytest
from PySide6 import QtCore, QtWidgets

from expirytrack_desktop.export.symbols import format_expiry
from expirytrack_desktop.ui.choices import WizardSelection
from tests.test_ui_support import close_app, make_window, small_simulator

Qt = QtCore.Qt
WB = QtWidgets.QWizard.WizardButton
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")
NIFTY = "NSE_INDEX|Nifty 50"


@pytest.fixture
def collected(qtbot, qloop, tmp_path):
    """A window whose database holds one collected NIFTY expiry."""
    window, controller = make_window(tmp_path, small_simulator())
    window.show()
    controller.schedule(controller.start(), name="start")
    qtbot.waitUntil(lambda: controller.runtime is not None, timeout=10000)
    task = controller.schedule(controller.catalog.list_expiries(NIFTY))
    qtbot.waitUntil(task.done, timeout=10000)
    expiry = task.result()[-1].expiry
    sel = WizardSelection(expiries={NIFTY: [expiry]}, months=1, concurrency=4)
    start = controller.schedule(controller.jobs.start_collection(sel))
    qtbot.waitUntil(start.done, timeout=10000)
    job = controller.jobs.handles[start.result()]
    qtbot.waitUntil(job.done, timeout=30000)
    yield window, controller, expiry
    close_app(qtbot, qloop, window, controller)


def test_export_wizard_writes_a_csv_and_records_history(qtbot, collected, tmp_path):
    window, controller, expiry = collected
    window.act_export.trigger()
    wiz = window.export_wizard
    p1 = wiz.instruments_page
    qtbot.waitUntil(lambda: p1.loaded, timeout=10000)
    assert p1.selected() == [NIFTY]  # the only instrument is preselected
    qtbot.mouseClick(wiz.button(WB.NextButton), Qt.MouseButton.LeftButton)
    p2 = wiz.expiries_page
    qtbot.waitUntil(lambda: not p2.is_loading() and bool(p2.selected()), timeout=10000)
    assert p2.selected() == (expiry,)
    assert int(p2.tree.topLevelItem(0).child(0).text(3).replace(",", "")) > 0  # candle count
    qtbot.mouseClick(wiz.button(WB.NextButton), Qt.MouseButton.LeftButton)
    p3 = wiz.options_page
    for cb in p3.types.values():
        cb.setChecked(False)
    assert "no contract type" in p3.message.text()
    assert not wiz.button(WB.NextButton).isEnabled()
    p3.types["CE"].setChecked(True)
    p3.types["PE"].setChecked(True)
    p3.metadata.setChecked(True)
    qtbot.mouseClick(wiz.button(WB.NextButton), Qt.MouseButton.LeftButton)
    assert wiz.currentPage() is wiz.output_page  # columns and output: as they are
    assert wiz.output_page.columns.checked()[-6:] == (
        "underlying",
        "expiry",
        "strike",
        "option_type",
        "trading_symbol",
        "lot_size",
    )
    qtbot.mouseClick(wiz.button(WB.NextButton), Qt.MouseButton.LeftButton)
    p4 = wiz.review_page
    qtbot.waitUntil(lambda: p4.preview is not None, timeout=10000)
    rows = p4.preview.rows
    assert rows > 0 and f"{rows:,}" in p4.summary.text()
    qtbot.waitUntil(wiz.button(WB.FinishButton).isEnabled, timeout=5000)
    folder = tmp_path / "out"
    folder.mkdir()
    qtbot.mouseClick(wiz.button(WB.FinishButton), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: getattr(wiz, "save_dialog", None) is not None, timeout=5000)
    dlg = wiz.save_dialog
    assert dlg.selectedFiles()[0].endswith(".csv")  # default OpenAlgo_ExpiryTrack_... name
    # the suggested name carries the expiry; the dialog opens in the export folder, created
    assert f"OpenAlgo_ExpiryTrack_Nifty_50_{format_expiry(expiry)}_" in dlg.selectedFiles()[0]
    export_dir = controller.services.export_dir
    assert export_dir.is_dir()
    assert pathlib.Path(dlg.directory().absolutePath()) == export_dir.resolve()
    with qtbot.waitSignal(wiz.exportFinished, timeout=20000) as finished:
        dlg.setDirectory(str(folder))  # the user picks a folder, keeps the default name
        dlg.accept()
    out = pathlib.Path(finished.args[0])
    assert out.parent == folder and out.name.startswith("OpenAlgo_ExpiryTrack_Nifty_50_")
    with out.open(newline="") as f:
        data = list(csv.reader(f))
    assert data[0][:10] == [
        "openalgo_symbol", "date", "time", "timestamp", "open", "high", "low", "close",
        "volume", "oi",
    ]  # fmt: skip
    assert len(data) - 1 == rows
    assert all(r[0].endswith(("CE", "PE")) for r in data[1:])
    assert p4.btn_open.isVisible()
    # the bar ends full with the final counts, and no Cancel is left next to "Done"
    assert p4.progress.value() == 1000 and f"{rows:,}/{rows:,} rows" in p4.progress.text()
    assert "Done:" in p4.message.text()
    assert not wiz.button(WB.CancelButton).isVisible()
    assert not p4.btn_cancel.isVisible()
    assert wiz.button(WB.FinishButton).text().replace("&", "") == "Close"
    # the history page lists it (and it survives: it is read from the database)
    page = window.exports_page
    task = controller.schedule(page.refresh())
    qtbot.waitUntil(task.done, timeout=5000)
    assert page.model.rowCount() == 1
    rec = page.model.row(0)
    assert rec["path"] == str(out) and rec["rows"] == rows and rec["format"] == "csv"
    wiz.accept()


def test_export_history_names_a_stock_by_its_symbol(qtbot, collected, tmp_path):
    """Not by its ISIN key (the jobs table, notes and coverage do the same)."""
    import sqlite3
    from contextlib import closing
    from datetime import UTC, datetime

    from expirytrack_desktop.export.api import ExportOptions
    from expirytrack_desktop.export.history import record_export

    window, controller, _ = collected
    db = controller.services.db_path
    stock = "NSE_EQ|INE002A01018"
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(
            "INSERT INTO underlying (instrument_key, symbol, name) VALUES (?, 'RELIANCE', ?)",
            (stock, "Reliance Industries"),
        )
    when = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    record_export(db, ExportOptions((stock, NIFTY)), tmp_path / "x.csv", 10, 100, when)
    page = window.exports_page
    task = controller.schedule(page.refresh())
    qtbot.waitUntil(task.done, timeout=5000)
    assert page.model.row(0)["what"] == "RELIANCE, NIFTY · all expiries · CE/PE/FUT"


def test_export_cancel_leaves_no_file(qtbot, collected, tmp_path):
    window, controller, _ = collected
    window.act_export.trigger()
    wiz = window.export_wizard
    qtbot.waitUntil(lambda: wiz.instruments_page.loaded, timeout=10000)
    qtbot.mouseClick(wiz.button(WB.NextButton), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(wiz.expiries_page.selected()), timeout=10000)
    opts = wiz.current_options()
    out = tmp_path / "cancelled.csv"
    cancel = threading.Event()
    cancel.set()  # Cancel pressed: the engine stops at its next check
    task = controller.schedule(wiz.export_to(opts, out, cancel=cancel))
    qtbot.waitUntil(task.done, timeout=10000)
    assert not out.exists()
    assert list(tmp_path.glob("cancelled*")) == []
    assert wiz.done_path is None
    assert "Export" in wiz.review_page.message.text()
    wiz.reject()


def test_presets_on_the_last_step(qtbot, collected, tmp_path):
    from expirytrack_desktop.export.presets import load_presets

    window, controller, expiry = collected
    window.act_export.trigger()
    wiz = window.export_wizard
    qtbot.waitUntil(lambda: wiz.instruments_page.loaded, timeout=10000)
    qtbot.mouseClick(wiz.button(WB.NextButton), Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(wiz.expiries_page.selected()), timeout=10000)
    qtbot.mouseClick(wiz.button(WB.NextButton), Qt.MouseButton.LeftButton)
    p3 = wiz.options_page
    p3.types["FUT"].setChecked(False)
    p3.format.setCurrentIndex(p3.format.findData("json"))
    qtbot.mouseClick(wiz.button(WB.NextButton), Qt.MouseButton.LeftButton)
    qtbot.mouseClick(wiz.button(WB.NextButton), Qt.MouseButton.LeftButton)
    bar = wiz.presets
    assert bar.isVisible() and not bar.btn_run.isEnabled()  # nothing saved yet
    qtbot.mouseClick(bar.btn_save, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: getattr(bar, "name_dialog", None) is not None, timeout=5000)
    bar.name_dialog.setTextValue("nifty options json")
    bar.name_dialog.accept()
    qtbot.waitUntil(lambda: bar.combo.count() == 1, timeout=5000)
    saved = load_presets(bar.path)["nifty options json"]
    assert saved.options.format == "json" and saved.options.contract_types == ("CE", "PE")
    assert saved.options.expiries == (expiry,)
    assert "Saved export preset" in wiz.review_page.message.text()
    # run it: the same choices, written where asked
    out = tmp_path / "from-preset.json"
    with qtbot.waitSignal(wiz.exportFinished, timeout=20000):
        controller.schedule(bar.run_selected(out))
    import json

    doc = json.loads(out.read_text())
    kinds = {c["option_type"] for e in doc["data"]["Nifty_50"].values() for c in e}
    assert kinds == {"CE", "PE"}
    wiz.accept()


def test_a_failed_read_is_said_on_the_page_and_holds_next(qtbot, collected, monkeypatch):
    """The database cannot be read while a page loads (WizardPage.while_busy): the page says
    so, its busy line goes, and Next/Finish stay off; a page that loads fine goes on."""
    from expirytrack_desktop.export.errors import DatabaseError

    window, controller, _ = collected

    async def fail(*_a: object, **_k: object) -> None:
        raise DatabaseError("cannot read the database: disk I/O error")

    monkeypatch.setattr(controller.exports, "underlyings", fail)
    window.act_export.trigger()
    wiz = window.export_wizard
    p1 = wiz.instruments_page
    qtbot.waitUntil(lambda: "disk I/O error" in p1.message.text(), timeout=10000)
    assert not p1.is_loading() and p1.busy.isHidden() and not p1.loaded
    assert not wiz.button(WB.NextButton).isEnabled()
    wiz.reject()

    monkeypatch.undo()
    monkeypatch.setattr(controller.exports, "preview", fail)
    window.act_export.trigger()
    wiz = window.export_wizard
    qtbot.waitUntil(lambda: wiz.instruments_page.loaded, timeout=10000)
    qtbot.mouseClick(wiz.button(WB.NextButton), Qt.MouseButton.LeftButton)
    p2 = wiz.expiries_page
    qtbot.waitUntil(lambda: not p2.is_loading() and bool(p2.selected()), timeout=10000)
    for _ in range(3):  # options, columns and output, review
        qtbot.mouseClick(wiz.button(WB.NextButton), Qt.MouseButton.LeftButton)
    p5 = wiz.review_page
    assert wiz.currentPage() is p5
    qtbot.waitUntil(lambda: "disk I/O error" in p5.message.text(), timeout=10000)
    assert not p5.is_loading() and p5.busy.isHidden() and p5.preview is None
    assert not wiz.button(WB.FinishButton).isEnabled()
    wiz.reject()
