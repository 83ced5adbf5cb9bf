"""The chart and option-chain pages, driven by clicks and keys on collected demo data."""

from __future__ import annotations

import csv
import shutil
from datetime import date, datetime, timedelta

import pytest

from expirytrack_desktop.analysis.candles import DbCandleSource
from expirytrack_desktop.analysis.chain import build_chain
from expirytrack_desktop.analysis.series import aggregate
from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.store import open_database
from expirytrack_desktop.timeutil import IST
from expirytrack_desktop.ui.qt import Qt, QtCore
from expirytrack_desktop.ui.quality_page import gap_lines
from tests.analysis_helpers import MONTHLY, NIFTY, collect_chain_db
from tests.test_ui_support import close_app, make_window, small_simulator

# the offscreen platform's note when a window's size hints change (harmless, see test_ui_window)
pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    return collect_chain_db(tmp_path_factory.mktemp("viewer"), (MONTHLY,), strikes=3)


@pytest.fixture
def viewer(qtbot, qloop, tmp_path, collected):
    paths = AppPaths.under(tmp_path).ensure()
    shutil.copy(collected, paths.demo_db_path)
    window, controller = make_window(tmp_path, small_simulator())
    window.show()
    controller.schedule(controller.start(), name="start")
    qtbot.waitUntil(lambda: controller.runtime is not None, timeout=10000)
    yield window, controller
    close_app(qtbot, qloop, window, controller)


def test_chart_page_shows_the_future_with_volume_oi_and_overlays(qtbot, viewer, collected):
    window, _ = viewer
    page = window.chart_page
    window.tabs.setCurrentWidget(page)
    qtbot.waitUntil(lambda: page.chart is not None and len(page.chart.series) > 0, timeout=10000)
    assert page.underlying.currentText() == "NIFTY"
    assert page.expiry.currentData() == MONTHLY
    assert page.contract.currentText().endswith("FUT")
    with open_database(collected, create=False, check_writable=False) as db:
        source = DbCandleSource(db)
        future = next(c for c in source.contracts(NIFTY, MONTHLY) if c.contract_type == "FUT")
        stored = source.candles(future.contract_id)
    assert page.chart.series == stored  # every stored 1-minute candle, none invented
    # 15-minute bars: the aggregation of the same candles
    page.interval.setCurrentIndex(page.interval.findData(15))
    qtbot.waitUntil(lambda: page.chart.series == aggregate(stored, 15), timeout=10000)
    # CE and PE of the middle strike and their straddle line (the default mode)
    qtbot.mouseClick(page.overlay, Qt.MouseButton.LeftButton)
    assert page.mode.currentData() == "straddle" and not page.strike2.isEnabled()
    qtbot.waitUntil(lambda: len(page.chart.overlays) == 3, timeout=10000)
    strike = page.strike.currentData()
    assert set(page.chart.overlays) == {f"CE {strike:g}", f"PE {strike:g}", f"straddle {strike:g}"}
    _, ys = page.chart.overlays[f"straddle {strike:g}"].getData()
    _, ce = page.chart.overlays[f"CE {strike:g}"].getData()
    assert len(ys) > 10 and ys[-1] == pytest.approx(
        ce[-1] + page.chart.overlays[f"PE {strike:g}"].getData()[1][-1]
    )


def test_chart_keyboard_zoom_pan_and_crosshair(qtbot, viewer):
    window, _ = viewer
    page = window.chart_page
    window.tabs.setCurrentWidget(page)
    qtbot.waitUntil(lambda: page.chart is not None and len(page.chart.series) > 0, timeout=10000)
    chart = page.chart
    vb = chart.price.getViewBox()
    (x0, x1), _ = vb.viewRange()
    chart.setFocus()
    qtbot.keyClick(chart, Qt.Key.Key_Plus)
    (a0, a1), _ = vb.viewRange()
    assert (a1 - a0) == pytest.approx((x1 - x0) * 0.8)
    qtbot.keyClick(chart, Qt.Key.Key_Right)
    (b0, b1), _ = vb.viewRange()
    assert b0 > a0 and (b1 - b0) == pytest.approx(a1 - a0)
    qtbot.keyClick(chart, Qt.Key.Key_Home)
    (c0, c1), _ = vb.viewRange()
    assert (c1 - c0) > (b1 - b0)
    first = chart.series[0]
    text = chart.describe_at(float(chart._x[0]) + 0.2)
    assert f"O {first.open:g}" in text and f"OI {first.oi:,}" in text
    # a minute with no candle reads as a gap, never as a flat bar
    gaps = [i for i in range(1, len(chart._x)) if chart._x[i] - chart._x[i - 1] > 1]
    if gaps:
        assert "no trade" in chart.describe_at(float(chart._x[gaps[0] - 1]) + 1.5)


def test_chain_page_steps_minutes_and_days_and_exports(qtbot, viewer, collected, tmp_path):
    window, _ = viewer
    page = window.chain_page
    window.tabs.setCurrentWidget(page)
    qtbot.waitUntil(lambda: page.snap is not None and bool(page.snap.rows), timeout=10000)
    shown = page.snap.when.minute
    assert shown.strftime("%H:%M") == "10:30" and shown.date() == page.days[-1]
    assert page.model.rowCount() == len(page.snap.rows) and "forward" in page.header.text()
    page.table.setFocus()
    qtbot.keyClick(page.table, Qt.Key.Key_Right)
    qtbot.waitUntil(lambda: page.snap.when.minute == shown + timedelta(minutes=1), timeout=5000)
    qtbot.keyClick(page.table, Qt.Key.Key_PageUp)
    prev_day = page.days[-2]
    qtbot.waitUntil(lambda: page.snap.when.minute.date() == prev_day, timeout=5000)
    at = page.snap.when.minute
    assert at.strftime("%H:%M") == "10:31"
    with open_database(collected, create=False, check_writable=False) as db:
        direct = build_chain(DbCandleSource(db), NIFTY, MONTHLY, at)
    assert [(r.strike, r.ce and r.ce.ltp, r.pe and r.pe.oi) for r in page.snap.rows] == [
        (r.strike, r.ce and r.ce.ltp, r.pe and r.pe.oi) for r in direct.rows
    ]
    atm = next(i for i, r in enumerate(direct.rows) if r.strike == direct.atm_strike)
    assert (
        page.model.data(page.model.index(atm, 6), Qt.ItemDataRole.BackgroundRole)
        is page.model.atm_brush
    )
    # the slider is the same minute, and moving it moves the chain
    page.slider.setValue(page.slider.value() + 30)
    qtbot.waitUntil(lambda: page.snap.when.minute == at + timedelta(minutes=30), timeout=5000)
    out = tmp_path / "chain.csv"
    done = page.controller.schedule(page.export_csv(out))
    qtbot.waitUntil(done.done, timeout=5000)
    with out.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert [float(r["strike"]) for r in rows] == [r.strike for r in page.snap.rows]


def test_chain_page_moves_a_holiday_to_the_last_trading_minute(qtbot, viewer):
    window, _ = viewer
    page = window.chain_page
    window.tabs.setCurrentWidget(page)
    qtbot.waitUntil(lambda: page.snap is not None and bool(page.snap.rows), timeout=10000)
    saturday = datetime(2025, 9, 27, 10, 30, tzinfo=IST)
    page.request(saturday)
    qtbot.waitUntil(lambda: "not a trading day" in page.header.text(), timeout=5000)
    assert page.snap.when.minute == datetime(2025, 9, 26, 15, 29, tzinfo=IST)
    assert page.day.date() == QtCore.QDate(2025, 9, 26) and page.time_label.text() == "15:29"


def test_an_expiry_without_candles_offers_collect_it(qtbot, viewer, collected):
    window, controller = viewer
    db = controller.runtime.db
    db.execute("DELETE FROM candle")  # contracts known, nothing collected
    page = window.chain_page
    window.tabs.setCurrentWidget(page)
    qtbot.waitUntil(lambda: page.picker.loaded and page.expiry.count() > 0, timeout=10000)
    qtbot.waitUntil(lambda: page.collect_button.isVisibleTo(page), timeout=5000)
    assert "No candles stored" in page.header.text()
    assert page.model.rowCount() == 0
    assert date.fromisoformat(page.expiry.currentText()) == MONTHLY


def test_quality_page_lists_contracts_gaps_and_opens_the_chart(qtbot, viewer, collected):
    window, _ = viewer
    page = window.quality_page
    window.tabs.setCurrentWidget(page)
    qtbot.waitUntil(lambda: page.model.rowCount() > 0, timeout=10000)
    with open_database(collected, create=False, check_writable=False) as db:
        from expirytrack_desktop.analysis.quality import contract_timeline, expiry_quality

        expected = expiry_quality(db, NIFTY, MONTHLY)
        option = next(q for q in expected if q.contract_type != "FUT" and q.missing_minutes)
        timeline = contract_timeline(db, option.contract_id)
    assert page.model.rows == expected
    assert "contracts" in page.summary.text() and "session minutes" in page.summary.text()
    row = expected.index(option)
    page.tabs.setCurrentWidget(page.table)
    page.table.selectRow(row)
    qtbot.waitUntil(lambda: page.shown == timeline, timeout=5000)
    # the timeline marks the minutes the table counts as missing, run by run
    assert [s.run for s in page.timeline.spans] == timeline.runs
    assert timeline.missing_minutes == option.missing_minutes
    longest = max(timeline.runs, key=lambda r: (r.minutes, -r.start_ts))
    assert f"the longest {gap_lines([longest])[0]}" in page.timeline_title.text()
    index = page.model.index(row, 0)
    page.table.doubleClicked.emit(index)
    chart = window.chart_page
    qtbot.waitUntil(lambda: window.tabs.currentWidget() is chart, timeout=5000)
    qtbot.waitUntil(lambda: chart.contract.currentData() == option.contract_id, timeout=10000)
    qtbot.waitUntil(lambda: chart.chart is not None and chart.chart.series != [], timeout=10000)


def test_coverage_by_month_fits_and_a_click_opens_the_expiry(qtbot, viewer):
    window, _ = viewer
    window.resize(1280, 800)
    page = window.dashboard_page
    window.tabs.setCurrentWidget(page)
    done = page.controller.schedule(page.refresh())
    qtbot.waitUntil(done.done, timeout=10000)
    grid = page.grid
    model = grid.months_model
    assert model.rowCount() == 1 and model.columnCount() == 6
    assert model.headerData(5, Qt.Orientation.Horizontal) == "Sep 2025"
    assert not grid.horizontalScrollBar().isVisible()  # six months at 1280 px, no sideways scroll
    cell = model.index(0, 5)
    chips = model.data(cell, model.ChipsRole)
    target = next(i for i, c in enumerate(chips) if c.expiry == MONTHLY)
    assert chips[target].state == "complete" and "✔ complete" in chips[target].text
    rect = grid.visualRect(cell)
    point = QtCore.QPoint(rect.left() + 20, rect.top() + 3 + 18 * target + 9)
    qtbot.mouseClick(grid.viewport(), Qt.MouseButton.LeftButton, pos=point)
    quality = window.quality_page
    qtbot.waitUntil(lambda: window.tabs.currentWidget() is quality, timeout=5000)
    qtbot.waitUntil(lambda: quality.model.rowCount() > 0, timeout=10000)
    assert quality.expiry.currentData() == MONTHLY


def test_chart_strangle_and_atm_straddle_overlays(qtbot, viewer, collected):
    from expirytrack_desktop.analysis.series import straddle_series

    window, _ = viewer
    page = window.chart_page
    window.tabs.setCurrentWidget(page)
    qtbot.waitUntil(lambda: page.chart is not None and len(page.chart.series) > 0, timeout=10000)
    page.overlay.setChecked(True)
    page.mode.setCurrentIndex(page.mode.findData("strangle"))
    assert page.strike2.isEnabled()
    page.strike.setCurrentIndex(0)
    page.strike2.setCurrentIndex(page.strike2.count() - 1)
    k1, k2 = page.strike.currentData(), page.strike2.currentData()
    name = f"strangle {k1:g}/{k2:g}"
    qtbot.waitUntil(lambda: name in page.chart.overlays, timeout=10000)
    assert set(page.chart.overlays) == {f"CE {k1:g}", f"PE {k2:g}", name}
    page.mode.setCurrentIndex(page.mode.findData("atm"))
    assert not page.strike.isEnabled()
    qtbot.waitUntil(lambda: "ATM straddle" in page.chart.overlays, timeout=20000)
    with open_database(collected, create=False, check_writable=False) as db:
        source = DbCandleSource(db, cache=True)
        day = max(datetime.fromtimestamp(c.ts, IST).date() for c in page.chart.series)
        expect = straddle_series(source, NIFTY, MONTHLY, day)
    _, ys = page.chart.overlays["ATM straddle"].getData()
    assert list(ys[-len(expect) :]) == pytest.approx([p.premium for p in expect])


def test_viewer_models_pass_the_model_tester(qtmodeltester, viewer, collected):
    from expirytrack_desktop.analysis.quality import expiry_quality
    from expirytrack_desktop.ui.chain_page import ChainModel
    from expirytrack_desktop.ui.quality_page import QualityModel

    with open_database(collected, create=False, check_writable=False) as db:
        snap = build_chain(
            DbCandleSource(db), NIFTY, MONTHLY, datetime(2025, 9, 24, 10, 30, tzinfo=IST)
        )
        rows = expiry_quality(db, NIFTY, MONTHLY)
    chain = ChainModel()
    chain.set_snapshot(snap)
    qtmodeltester.check(chain)
    assert chain.headerData(0, Qt.Orientation.Horizontal) == "CE OI"
    assert chain.headerData(6, Qt.Orientation.Horizontal) == "Strike"
    quality = QualityModel()
    quality.set_rows(rows)
    qtmodeltester.check(quality)
    assert quality.rowCount() == len(rows)


def test_at_risk_panel_lists_incomplete_expiries_before_they_vanish(qtbot, viewer, collected):
    from expirytrack_desktop.collect.atrisk import at_risk
    from expirytrack_desktop.schedule.manage import chosen_everywhere
    from expirytrack_desktop.ui.atrisk_panel import at_risk_line

    window, controller = viewer
    db = controller.runtime.db
    # half of the monthly's windows lost: the expiry is partial again
    db.execute(
        "DELETE FROM fetch_window WHERE contract_id IN (SELECT id FROM contract WHERE "
        "contract_type = 'CE')"
    )
    chosen = chosen_everywhere(db, controller.services.paths)
    probe = at_risk(db, chosen, today=MONTHLY, within_days=10_000)
    [gone] = [r for r in probe if r.expiry == MONTHLY]
    controller.analysis.today = lambda: gone.last_day - timedelta(days=3)
    page = window.dashboard_page
    window.tabs.setCurrentWidget(page)
    done = page.controller.schedule(page.refresh())
    qtbot.waitUntil(done.done, timeout=10000)
    panel = page.at_risk
    expected = at_risk(db, chosen, today=gone.last_day - timedelta(days=3), within_days=14)
    assert [r.expiry for r in panel.found] == [r.expiry for r in expected] and panel.found
    assert panel.list.item(0).text() == at_risk_line(expected[0])
    assert "3 days left" in panel.list.item(0).text() and "◐ partial" in panel.list.item(0).text()
    assert panel.collect_button.isVisibleTo(panel)
    n = len(expected)
    said = "expiry" if n == 1 else "expiries"
    message = window.statusBar().currentMessage()
    assert message.startswith(f"At risk: {n} {said} vanish incomplete within 14 days; first ")
    # whole beside the status bar's permanent fields at 1280 px (it was cut after "on")
    window.resize(1280, 800)
    sb = window.statusBar()
    fields = sum(w.sizeHint().width() for w in (window.lbl_wait, window.lbl_rate, window.lbl_db))
    assert sb.fontMetrics().horizontalAdvance(message) < 1280 - fields - 40
    assert panel.list.height() < 2 * panel.list.sizeHintForRow(0) * n + 20  # no empty rows below
    # two weeks earlier it is not at risk yet
    controller.analysis.today = lambda: gone.last_day - timedelta(days=30)
    done = page.controller.schedule(page.refresh())
    qtbot.waitUntil(done.done, timeout=10000)
    assert panel.found == [] and "Nothing at risk" in panel.summary.text()
