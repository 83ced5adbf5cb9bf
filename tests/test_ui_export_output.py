"""The export wizard's step 4, driven by clicks and keys: CSV columns and their order,
compression, a Historify database, S3 (moto's server on 127.0.0.1), the Parquet mirror,
presets with those choices, and the clean-up of old exports. Each checks the files made."""

from __future__ import annotations

import csv
import gzip
import io
import os
import pathlib
from contextlib import closing

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")

import pytest
from PySide6 import QtCore, QtWidgets

from expirytrack_desktop.export.options import ALL_CSV_COLUMNS
from expirytrack_desktop.export.presets import load_presets
from tests import test_export_s3, test_ui_export
from tests.test_export_s3 import KEY_ID, SECRET, keys

Qt = QtCore.Qt
WB = QtWidgets.QWizard.WizardButton
LEFT = Qt.MouseButton.LeftButton
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")
collected = test_ui_export.collected  # the window with one collected NIFTY expiry
s3 = test_export_s3.s3  # moto's S3 server on 127.0.0.1, bucket "quant"


def click(qtbot, widget) -> None:
    qtbot.mouseClick(widget, LEFT)


def to_step_3(qtbot, window):
    """Open the wizard and press Next to the options step (format, types, strikes ...)."""
    window.act_export.trigger()
    wiz = window.export_wizard
    qtbot.waitUntil(lambda: wiz.instruments_page.loaded, timeout=10000)
    click(qtbot, wiz.button(WB.NextButton))
    qtbot.waitUntil(lambda: bool(wiz.expiries_page.selected()), timeout=10000)
    click(qtbot, wiz.button(WB.NextButton))
    return wiz


def to_step_4(qtbot, window, fmt: str | None = None):
    """On to the columns-and-output step, choosing the format ``fmt`` on the way (else CSV)."""
    wiz = to_step_3(qtbot, window)
    if fmt is not None:
        p3 = wiz.options_page
        p3.format.setCurrentIndex(p3.format.findData(fmt))
    click(qtbot, wiz.button(WB.NextButton))
    return wiz


def to_review(qtbot, wiz):
    click(qtbot, wiz.button(WB.NextButton))
    assert wiz.currentPage() is wiz.review_page
    qtbot.waitUntil(lambda: wiz.review_page.preview is not None, timeout=10000)
    qtbot.waitUntil(wiz.button(WB.FinishButton).isEnabled, timeout=5000)
    return wiz.review_page.preview.rows


def toggle(qtbot, columns, name: str) -> None:
    """Select a column and press Space: what a user does to (un)check it."""
    columns.list.setCurrentItem(columns.item(name))
    qtbot.keyClick(columns.list, Qt.Key.Key_Space)


def save_as(qtbot, wiz, path: pathlib.Path) -> str:
    """Press Export…, type ``path`` in the save dialog, accept; the path written."""
    click(qtbot, wiz.button(WB.FinishButton))
    qtbot.waitUntil(lambda: getattr(wiz, "save_dialog", None) is not None, timeout=5000)
    with qtbot.waitSignal(wiz.exportFinished, timeout=30000) as done:
        type_name(wiz.save_dialog, path)
    return str(done.args[0])


def type_name(dialog, path: pathlib.Path) -> None:
    """Type the whole path in the dialog's file name box and accept, as a user does."""
    dialog.setDirectory(str(path.parent))
    edit = dialog.findChild(QtWidgets.QLineEdit, "fileNameEdit")
    edit.setText(path.name)
    dialog.accept()


def test_columns_order_and_gzip(qtbot, collected, tmp_path):
    window, _, _ = collected
    wiz = to_step_4(qtbot, window)
    out = wiz.output_page
    assert out.columns_box.isEnabled() and out.codec.isEnabled()
    assert out.columns.checked() == ALL_CSV_COLUMNS[:11]  # the default, nothing changed
    for name in ("date", "time", "oi"):
        toggle(qtbot, out.columns, name)
    out.columns.list.setCurrentItem(out.columns.item("exchange"))
    for _ in range(12):  # exchange up to the top (Up stops there), then one down
        click(qtbot, out.columns.btn_up)
    click(qtbot, out.columns.btn_down)
    toggle(qtbot, out.columns, "lot_size")  # a metadata column, named
    want = ("openalgo_symbol", "exchange", "timestamp", "open", "high", "low", "close",
            "volume", "lot_size")  # fmt: skip
    assert out.columns.checked() == want
    out.codec.setCurrentIndex(out.codec.findData("gzip"))
    assert out.level.isEnabled() and out.level.text() == "default"
    qtbot.keyClick(out.level, Qt.Key.Key_Up)  # default -> 1
    qtbot.keyClick(out.level, Qt.Key.Key_Up)  # 2
    opts = wiz.current_options()
    assert (opts.csv_columns, opts.compression, opts.compression_level) == (want, "gzip", 2)
    rows = to_review(qtbot, wiz)
    assert "columns openalgo_symbol, exchange, timestamp" in wiz.review_page.summary.text()
    sample = wiz.review_page.sample  # the sample shows the chosen columns, in their order
    headers = [sample.horizontalHeaderItem(i).text() for i in range(sample.columnCount())]
    assert tuple(headers) == want and sample.item(0, 1).text() == "NFO"
    written = save_as(qtbot, wiz, tmp_path / "custom.csv.gz")
    assert written.endswith("custom.csv.gz")
    text = gzip.decompress(pathlib.Path(written).read_bytes()).decode()
    data = list(csv.reader(io.StringIO(text)))
    assert tuple(data[0]) == want and len(data) - 1 == rows
    assert all(r[1] == "NFO" and r[2].endswith("+05:30") and r[8] for r in data[1:])
    # Back to step 4: the list stays as the user left it; Default restores the document's
    click(qtbot, wiz.button(WB.BackButton))
    assert wiz.output_page.columns.checked() == want
    click(qtbot, wiz.output_page.columns.btn_default)
    assert wiz.current_options().csv_columns is None
    wiz.accept()


def test_columns_are_refused_where_they_do_not_apply(qtbot, collected):
    window, _, _ = collected
    wiz = to_step_4(qtbot, window, "parquet")
    out = wiz.output_page
    assert not out.columns_box.isEnabled()
    assert [out.codec.itemData(i) for i in range(out.codec.count())][:2] == ["zstd", "snappy"]
    out.codec.setCurrentIndex(out.codec.findData("snappy"))
    assert not out.level.isEnabled()  # snappy takes no level
    opts = wiz.current_options()
    assert opts.compression == "snappy" and opts.csv_columns is None
    click(qtbot, out.dest_mirror)
    assert "mirror's folder" in out.problem()
    assert not wiz.button(WB.NextButton).isEnabled()
    wiz.reject()


def test_historify_database_load(qtbot, collected, tmp_path):
    duckdb = pytest.importorskip("duckdb")
    window, _, _ = collected
    wiz = to_step_4(qtbot, window, "historify")
    out = wiz.output_page
    assert out.historify_db.isVisible() and not out.codec.isEnabled()
    click(qtbot, out.historify_db)
    assert out.historify_db.isChecked()
    rows = to_review(qtbot, wiz)
    click(qtbot, wiz.button(WB.FinishButton))
    qtbot.waitUntil(lambda: getattr(wiz, "save_dialog", None) is not None, timeout=5000)
    assert wiz.save_dialog.selectedFiles()[0].endswith("historify.duckdb")
    target = tmp_path / "historify.duckdb"
    with qtbot.waitSignal(wiz.exportFinished, timeout=30000):
        type_name(wiz.save_dialog, target)
    with closing(duckdb.connect(str(target))) as con:
        got = con.execute(
            "SELECT count(*), count(DISTINCT (symbol, timestamp)), min(exchange), max(interval)"
            " FROM market_data"
        ).fetchone()
    assert got == (rows, rows, "NFO", "1m")
    wiz.accept()


def test_s3_destination_and_a_preset_that_keeps_it(qtbot, collected, s3, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", KEY_ID)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    window, _, _ = collected
    wiz = to_step_4(qtbot, window, "parquet")
    out = wiz.output_page
    click(qtbot, out.dest_s3)
    assert out.s3_url.isEnabled()
    qtbot.keyClicks(out.s3_url, "quant/no-scheme")
    assert "s3://bucket/prefix/" in out.problem()
    out.s3_url.clear()
    qtbot.keyClicks(out.s3_url, "s3://quant/fno/")
    assert out.problem() is None
    rows = to_review(qtbot, wiz)
    assert "uploaded to <b>s3://quant/fno/</b>" in wiz.review_page.summary.text()
    assert wiz.button(WB.FinishButton).text().replace("&", "") == "Upload"
    with qtbot.waitSignal(wiz.exportFinished, timeout=30000) as done:
        click(qtbot, wiz.button(WB.FinishButton))
    (key,) = keys(s3)
    assert done.args[0] == f"s3://quant/{key}" and key.startswith("fno/OpenAlgo_ExpiryTrack_")
    import pyarrow.parquet as pq

    body = s3.get_object(Bucket="quant", Key=key)["Body"].read()
    assert pq.read_table(io.BytesIO(body)).num_rows == rows
    assert "Done:" in wiz.review_page.message.text()
    assert SECRET not in wiz.review_page.message.text()
    # save the choices as a preset: the S3 location is its output; running it uploads again
    bar = wiz.presets
    click(qtbot, bar.btn_save)
    qtbot.waitUntil(lambda: getattr(bar, "name_dialog", None) is not None, timeout=5000)
    bar.name_dialog.setTextValue("to-s3")
    bar.name_dialog.accept()
    qtbot.waitUntil(lambda: bar.combo.count() == 1, timeout=5000)
    assert load_presets(bar.path)["to-s3"].out == "s3://quant/fno/"
    s3.delete_object(Bucket="quant", Key=key)  # (a run in the same second takes the same name)
    with qtbot.waitSignal(wiz.exportFinished, timeout=30000) as again:
        click(qtbot, bar.btn_run)
    (key,) = keys(s3)
    assert again.args[0] == f"s3://quant/{key}" and key.endswith(".parquet")
    wiz.accept()


def test_mirror_destination_twice(qtbot, collected, tmp_path):
    window, _, _ = collected
    folder = tmp_path / "mirror"
    for attempt in (1, 2):
        wiz = to_step_4(qtbot, window)
        out = wiz.output_page
        click(qtbot, out.dest_mirror)
        assert out.mirror_dir.isEnabled()
        out.mirror_dir.clear()
        qtbot.keyClicks(out.mirror_dir, str(folder))
        rows = to_review(qtbot, wiz)
        assert wiz.button(WB.FinishButton).text().replace("&", "") == "Update mirror"
        with qtbot.waitSignal(wiz.exportFinished, timeout=30000):
            click(qtbot, wiz.button(WB.FinishButton))
        result = wiz.result
        if attempt == 1:
            assert len(result.written) == 1 and result.rows == rows
        else:
            assert result.written == [] and result.unchanged == 1  # nothing new: nothing rewritten
        assert "partition(s) written" in wiz.review_page.message.text()
        wiz.accept()
    parts = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*.parquet"))
    assert len(parts) == 1 and parts[0].startswith("underlying=NIFTY/expiry=")
    import pyarrow.parquet as pq

    assert pq.read_table(folder / parts[0]).num_rows == rows


def test_cleanup_of_old_exports(qtbot, collected, tmp_path):
    window, controller, _ = collected
    wiz = to_step_4(qtbot, window)
    to_review(qtbot, wiz)
    written = pathlib.Path(save_as(qtbot, wiz, tmp_path / "old.csv"))
    keep = tmp_path / "not-ours.csv"
    keep.write_text("mine\n")
    click(qtbot, wiz.button(WB.BackButton))
    click(qtbot, wiz.output_page.btn_clean)
    dlg = wiz.output_page.cleanup
    assert dlg is not None and dlg.isVisible()
    assert not dlg.btn_remove.isEnabled()  # list first
    dlg.days.setValue(0)  # older than 0 days: every export
    click(qtbot, dlg.btn_preview)
    qtbot.waitUntil(lambda: dlg.list.count() == 1, timeout=5000)
    assert str(written) in dlg.list.item(0).text() and written.exists()
    assert "Would remove 1 export(s)" in dlg.message.text()
    click(qtbot, dlg.btn_remove)
    qtbot.waitUntil(lambda: not written.exists(), timeout=5000)
    qtbot.waitUntil(lambda: "Removed 1 export(s)" in dlg.message.text(), timeout=5000)
    assert keep.read_text() == "mine\n"
    task = controller.schedule(controller.exports.history())
    qtbot.waitUntil(task.done, timeout=5000)
    assert task.result() == []  # it left the history too
    dlg.by_size.setChecked(True)
    dlg.max_size.setText("lots")
    click(qtbot, dlg.btn_preview)
    qtbot.waitUntil(lambda: "not a size" in dlg.message.text(), timeout=5000)
    dlg.close()
    wiz.reject()


def test_a_preset_loads_into_the_steps(qtbot, collected):
    window, _, expiry = collected
    wiz = to_step_3(qtbot, window)
    p3 = wiz.options_page
    click(qtbot, p3.types["FUT"])
    qtbot.keyClicks(p3.strike_min, "1")
    click(qtbot, wiz.button(WB.NextButton))
    out = wiz.output_page
    for name in ("date", "time"):
        toggle(qtbot, out.columns, name)
    out.codec.setCurrentIndex(out.codec.findData("zstd"))
    for _ in range(3):
        qtbot.keyClick(out.level, Qt.Key.Key_Up)
    to_review(qtbot, wiz)
    want = wiz.current_options()
    assert want.contract_types == ("CE", "PE") and want.strike_min == 1.0
    assert (want.compression, want.compression_level) == ("zstd", 3)
    assert want.csv_columns == tuple(c for c in ALL_CSV_COLUMNS[:11] if c not in ("date", "time"))
    bar = wiz.presets
    click(qtbot, bar.btn_save)
    qtbot.waitUntil(lambda: getattr(bar, "name_dialog", None) is not None, timeout=5000)
    bar.name_dialog.setTextValue("short")
    bar.name_dialog.accept()
    qtbot.waitUntil(lambda: bar.combo.count() == 1, timeout=5000)
    # change every step back to its default
    click(qtbot, wiz.button(WB.BackButton))
    click(qtbot, out.columns.btn_default)
    out.codec.setCurrentIndex(out.codec.findData("none"))
    click(qtbot, wiz.button(WB.BackButton))
    click(qtbot, p3.types["FUT"])
    p3.strike_min.clear()
    click(qtbot, wiz.button(WB.NextButton))
    to_review(qtbot, wiz)
    assert wiz.current_options() != want
    # Load: every step shows the preset again, from step 1
    click(qtbot, bar.btn_load)
    assert wiz.currentPage() is wiz.instruments_page
    click(qtbot, wiz.button(WB.NextButton))
    qtbot.waitUntil(lambda: wiz.expiries_page.selected() == (expiry,), timeout=10000)
    click(qtbot, wiz.button(WB.NextButton))
    assert p3.strike_min.text() == "1" and not p3.types["FUT"].isChecked()
    click(qtbot, wiz.button(WB.NextButton))
    assert out.columns.checked() == want.csv_columns and out.codec.currentData() == "zstd"
    to_review(qtbot, wiz)
    assert wiz.current_options() == want
    wiz.reject()


def test_a_typed_name_that_contradicts_the_format_writes_nothing(qtbot, collected, tmp_path):
    """CSV chosen, "nifty.parquet" typed in the save dialog: said, nothing written; the
    same export under a CSV name then goes through."""
    window, _, _ = collected
    folder = tmp_path / "exports"
    folder.mkdir()
    wiz = to_step_4(qtbot, window)
    to_review(qtbot, wiz)
    click(qtbot, wiz.button(WB.FinishButton))
    qtbot.waitUntil(lambda: getattr(wiz, "save_dialog", None) is not None, timeout=5000)
    type_name(wiz.save_dialog, folder / "nifty.parquet")
    message = wiz.review_page.message
    qtbot.waitUntil(lambda: "Not exported" in message.text(), timeout=5000)
    assert "nifty.parquet is the name of a Parquet file, but the format chosen writes CSV:" in (
        message.text()
    )
    assert message.text().endswith("name it nifty.csv") and list(folder.iterdir()) == []
    wiz.save_dialog = None
    assert save_as(qtbot, wiz, folder / "nifty.csv").endswith("nifty.csv")
    assert (folder / "nifty.csv").read_text().startswith("openalgo_symbol,")
