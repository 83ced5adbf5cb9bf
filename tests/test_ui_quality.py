"""The Data quality page driven by clicks on collected demo data with known defects: verify's
findings grouped underlying → expiry → contract, the gaps timeline, "Collect missing"."""

from __future__ import annotations

import shutil
from datetime import date, datetime, timedelta

import pytest

from expirytrack_desktop.analysis.quality import GapRun, contract_timeline
from expirytrack_desktop.collect.plan import target_range
from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.store import open_database
from expirytrack_desktop.store.coverage import merge_ranges
from expirytrack_desktop.timeutil import IST
from expirytrack_desktop.ui.coverage_view import LINE_HEIGHT
from expirytrack_desktop.ui.qt import Qt, QtCore
from tests.analysis_helpers import MONTHLY, NIFTY, collect_chain_db
from tests.collect_helpers import make_app
from tests.test_ui_support import close_app, make_window

pytestmark = pytest.mark.qt_log_ignore("propagateSizeHints")

LOST_CE = "NIFTY30SEP2525100CE"  # its window and candles deleted: never fetched
FUTURE = "NIFTY30SEP25FUT"  # trades every minute; 30 of its minutes deleted


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    return collect_chain_db(tmp_path_factory.mktemp("quality"), (MONTHLY,), strikes=3)


def _cid(db, symbol: str) -> int:
    return int(db.execute("SELECT id FROM contract WHERE openalgo_symbol = ?", (symbol,))[0][0])


@pytest.fixture
def damaged(tmp_path, collected):
    """A copy of the collection with the two defects; returns (path, facts about them)."""
    paths = AppPaths.under(tmp_path).ensure()
    shutil.copy(collected, paths.demo_db_path)
    with open_database(paths.demo_db_path) as db:
        lost, fut = _cid(db, LOST_CE), _cid(db, FUTURE)
        fut_window = db.execute(
            "SELECT from_date, to_date FROM fetch_window WHERE contract_id = ?", (fut,)
        )
        assert len(fut_window) == 1  # one month: one window
        assert contract_timeline(db, fut).runs == []  # no gap before the damage
        day = contract_timeline(db, fut).days[2]
        start = int(
            datetime.combine(date(1970, 1, 1) + timedelta(days=day), datetime.min.time())
            .replace(hour=10, tzinfo=IST)
            .timestamp()
        )
        db.execute("DELETE FROM fetch_window WHERE contract_id = ?", (lost,))
        db.execute("DELETE FROM candle WHERE contract_id = ?", (lost,))
        db.execute(
            "DELETE FROM candle WHERE contract_id = ? AND ts >= ? AND ts < ?",
            (fut, start, start + 30 * 60),
        )
    facts = {
        "lost": lost,
        "future": fut,
        "future_window": (
            date.fromisoformat(fut_window[0][0]),
            date.fromisoformat(fut_window[0][1]),
        ),
        "gap": GapRun(start, 30),
    }
    return paths.demo_db_path, facts


@pytest.fixture
def quality(qtbot, qloop, tmp_path, damaged):
    window, controller = make_window(tmp_path, make_app(strikes=3))
    window.show()
    controller.schedule(controller.start(), name="start")
    qtbot.waitUntil(lambda: controller.runtime is not None, timeout=10000)
    page = window.quality_page
    window.tabs.setCurrentWidget(page)
    qtbot.waitUntil(lambda: page.report is not None, timeout=20000)
    yield window, controller, page
    close_app(qtbot, qloop, window, controller)


def _click(qtbot, tree, item) -> None:
    tree.scrollToItem(item)
    rect = tree.visualItemRect(item)
    qtbot.mouseClick(tree.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    assert tree.currentItem() is item


def test_findings_drill_down_to_a_contract_and_its_gaps_timeline(qtbot, quality, damaged):
    window, _, page = quality
    _, facts = damaged
    found = {(f.key, f.contract) for f in page.report.findings}
    assert found == {("no_windows", LOST_CE), ("missing_candles", FUTURE)}
    assert "2 findings" in page.summary.text()
    tree = page.tree
    assert tree.topLevelItemCount() == 1 and tree.topLevelItem(0).text(0) == "NIFTY"
    expiry = tree.find_item("NIFTY", MONTHLY.isoformat())
    assert expiry is not None and expiry.isExpanded()
    assert sorted(expiry.child(i).text(0) for i in range(expiry.childCount())) == sorted(
        [LOST_CE, FUTURE]
    )
    # drill down: the future's node, opened with →, then its finding
    node = tree.find_item("NIFTY", MONTHLY.isoformat(), FUTURE)
    _click(qtbot, tree, node)
    assert not node.isExpanded()
    qtbot.keyClick(tree, Qt.Key.Key_Right)
    assert node.isExpanded() and node.childCount() == 1
    leaf = node.child(0)
    _click(qtbot, tree, leaf)
    assert leaf.text(1) == "✖ error" and "8220 stored" in leaf.text(2)
    (a, b) = facts["future_window"]
    assert leaf.text(3) == f"Collect missing: {a}..{b} again"
    # the timeline marks exactly the 30 deleted minutes
    qtbot.waitUntil(
        lambda: page.shown is not None and page.shown.contract_id == facts["future"], timeout=5000
    )
    timeline = page.timeline
    assert [s.run for s in timeline.spans] == [facts["gap"]]
    assert len(timeline.days) == 22 and timeline.span_days == (timeline.days[0], timeline.days[-1])
    assert "1 runs, 30 minutes without a candle" in page.timeline_title.text()
    span = timeline.spans[0]
    centre = timeline.span_rect(span).center().toPoint()
    assert timeline.span_at(centre.x()) is span
    assert "10:00–10:29 IST: 30 minutes without a candle" in span.text
    assert timeline.span_at(timeline.span_rect(span).right() + 40) is None
    # a click on the red run charts the future around that time
    qtbot.mouseClick(timeline, Qt.MouseButton.LeftButton, pos=centre)
    chart = window.chart_page
    qtbot.waitUntil(lambda: window.tabs.currentWidget() is chart, timeout=5000)
    qtbot.waitUntil(lambda: chart.contract.currentData() == facts["future"], timeout=10000)
    slot = None

    def centred() -> bool:
        nonlocal slot
        if chart.chart is None or not chart.chart.series:
            return False
        slot = chart.chart.axis.slot(facts["gap"].start_ts)
        (x0, x1), _ = chart.chart.price.getViewBox().viewRange()
        return x0 <= slot <= x1 and x1 - x0 <= 130

    qtbot.waitUntil(centred, timeout=10000)


def test_collect_missing_plans_exactly_the_missing_windows(qtbot, quality, damaged):
    _window, controller, page = quality
    _, facts = damaged
    tree = page.tree
    # a contract on the Contracts tab: only its finding's range
    page.tabs.setCurrentWidget(page.table)
    row = next(i for i, q in enumerate(page.model.rows) if q.symbol == LOST_CE)
    page.table.selectRow(row)
    assert page.collect_button.text() == "Collect &missing (1 range)"
    assert [f.contract for f in page.targets()] == [LOST_CE]
    # the expiry on the Findings tab: both findings
    page.tabs.setCurrentWidget(tree)
    _click(qtbot, tree, tree.find_item("NIFTY", MONTHLY.isoformat()))
    assert page.collect_button.text() == "Collect &missing (2 ranges)"
    qtbot.mouseClick(page.collect_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: bool(page.started), timeout=10000)
    # when the job ends the page checks again: nothing left
    qtbot.waitUntil(
        lambda: page.report is not None and not page.report.findings,
        timeout=60000,
    )
    assert "no finding" in page.summary.text()
    assert not page.collect_button.isEnabled()
    _assert_fetched_exactly(controller.runtime.db, page.started, facts)
    with open_database(controller.services.db_path, create=False, check_writable=False) as ro:
        assert contract_timeline(ro, facts["future"]).runs == []
        lost = contract_timeline(ro, facts["lost"])
    assert lost.span is not None


def test_every_expiry_of_the_underlying_and_notes_without_a_fix(qtbot, quality, damaged):
    _window, controller, page = quality
    db = controller.runtime.db
    fut = damaged[1]["future"]
    # a candle at 16:00: a note (special sessions exist), nothing a collection fixes
    late = damaged[1]["gap"].start_ts + 6 * 3600
    db.execute(
        "INSERT INTO candle (contract_id, interval, ts, open, high, low, close, volume, oi) "
        "SELECT contract_id, interval, ?, open, high, low, close, volume, oi FROM candle "
        "WHERE contract_id = ? ORDER BY ts LIMIT 1",
        (late, fut),
    )
    page.scope.setCurrentIndex(1)  # every expiry of NIFTY
    qtbot.waitUntil(
        lambda: (
            page.report is not None
            and not page.report.expiries
            and any(f.key == "hours" for f in page.report.findings)
        ),
        timeout=20000,
    )
    tree = page.tree
    leaf = next(
        tree.find_item("NIFTY", MONTHLY.isoformat(), FUTURE).child(i)
        for i in range(2)
        if tree.find_item("NIFTY", MONTHLY.isoformat(), FUTURE).child(i).text(1) == "○ note"
    )
    _click(qtbot, tree, leaf)
    assert leaf.text(3).startswith("none: special sessions")
    assert not page.collect_button.isEnabled()
    assert "every expiry of the underlying" in page.summary.text()


def _assert_fetched_exactly(db, jobs: list[int], facts: dict) -> None:
    """The windows ``jobs`` stored are exactly the two defects' ranges, nothing else."""
    marks = ",".join("?" * len(jobs))
    rows = db.execute(
        "SELECT contract_id, from_date, to_date FROM fetch_window "
        f"WHERE job_id IN ({marks}) ORDER BY contract_id, from_date",
        jobs,
    )
    fetched: dict[int, list[tuple[date, date]]] = {}
    for cid, f0, t0 in rows:
        fetched.setdefault(cid, []).append((date.fromisoformat(f0), date.fromisoformat(t0)))
    target = db.execute(
        "SELECT from_date, to_date FROM coverage_target t JOIN expiry e ON e.id = t.expiry_id "
        "WHERE e.expiry_date = ?",
        (MONTHLY.isoformat(),),
    )[0]
    assert (date.fromisoformat(target[0]), date.fromisoformat(target[1])) == target_range(
        MONTHLY, 1
    )
    assert {cid: merge_ranges(r) for cid, r in fetched.items()} == {
        facts["lost"]: [target_range(MONTHLY, 1)],
        facts["future"]: [facts["future_window"]],
    }


def test_collect_missing_from_a_coverage_cell(qtbot, quality, damaged):
    window, controller, _page = quality
    facts = damaged[1]
    dash = window.dashboard_page
    window.tabs.setCurrentWidget(dash)
    done = controller.schedule(dash.refresh())
    qtbot.waitUntil(done.done, timeout=10000)
    grid = dash.grid
    model = grid.months_model
    cell = next(
        (r, c) for (r, c), chips in model.cells.items() if any(ch.expiry == MONTHLY for ch in chips)
    )
    index = model.index(*cell)
    chips = model.cells[cell]
    line = next(i for i, ch in enumerate(chips) if ch.expiry == MONTHLY)
    rect = grid.visualRect(index)
    pos = QtCore.QPoint(rect.center().x(), rect.top() + 3 + line * LINE_HEIGHT + 4)
    chip = grid.chip_at_pos(pos)
    assert chip is not None and chip.expiry == MONTHLY and chip.state == "partial"
    menu = grid.chip_menu(chip)
    [collect] = [a for a in menu.actions() if a.text() == "Collect missing"]
    assert collect.isEnabled()
    before = int(controller.runtime.db.execute("SELECT coalesce(max(id), 0) FROM job")[0][0])
    with qtbot.waitSignal(grid.collectRequested, timeout=5000) as sig:
        collect.trigger()
    assert sig.args == [NIFTY, MONTHLY]
    qtbot.waitUntil(lambda: bool(dash.started), timeout=30000)
    jobs = list(dash.started)
    assert min(jobs) > before
    for job in jobs:
        wait = controller.schedule(controller.jobs.wait(job))
        qtbot.waitUntil(wait.done, timeout=60000)
    _assert_fetched_exactly(controller.runtime.db, jobs, facts)
    # nothing missing any more: a second request starts nothing
    task = controller.schedule(dash.collect_missing(NIFTY, MONTHLY))
    qtbot.waitUntil(task.done, timeout=30000)
    assert task.result() == []


def test_the_demo_watchlist_puts_the_oldest_expiries_at_risk(qtbot, qloop, tmp_path):
    """--screenshot's demo seed: a watchlist of the demo's underlyings, of which only the newest
    expiries were collected, so the At risk panel shows the oldest (vanishing within days)."""
    from expirytrack_desktop.collect.atrisk import at_risk
    from expirytrack_desktop.schedule.manage import chosen_everywhere
    from expirytrack_desktop.store.watchlists import list_watchlists
    from expirytrack_desktop.ui.choices import WizardSelection
    from expirytrack_desktop.ui.screenshots import DEMO_WATCH, ensure_demo_watchlist
    from tests.test_ui_support import TODAY, small_simulator

    window, controller = make_window(tmp_path, small_simulator())
    window.show()
    controller.schedule(controller.start(), name="start")
    qtbot.waitUntil(lambda: controller.runtime is not None, timeout=10000)
    try:
        key = "NSE_INDEX|Nifty 50"

        async def seed() -> None:  # as ensure_demo_data: the newest expiry, one month
            choices = await controller.catalog.list_expiries(key)
            sel = WizardSelection(expiries={key: [choices[-1].expiry]}, months=1)
            await controller.jobs.wait(await controller.jobs.start_collection(sel))
            await ensure_demo_watchlist(window)
            await ensure_demo_watchlist(window)  # once only

        done = controller.schedule(seed())
        qtbot.waitUntil(done.done, timeout=60000)
        assert done.exception() is None
        db = controller.runtime.db
        assert [wl.name for wl in list_watchlists(db)] == [DEMO_WATCH]
        controller.analysis.today = lambda: TODAY  # the simulated market's today
        page = window.dashboard_page
        window.tabs.setCurrentWidget(page)
        done = controller.schedule(page.refresh())
        qtbot.waitUntil(done.done, timeout=10000)
        panel = page.at_risk
        expected = at_risk(db, chosen_everywhere(db, controller.services.paths), today=TODAY)
        assert panel.found == expected and len(expected) >= 1
        assert all(r.instrument_key == key and r.days_left <= 14 for r in expected)
        assert panel.list.count() == len(expected) and panel.collect_button.isVisibleTo(panel)
        assert "Nothing at risk" not in panel.summary.text()
    finally:
        close_app(qtbot, qloop, window, controller)
