"""``--screenshot PATH --page NAME``: drive the app to a page and save it as PNG via ``grab()``.

Pages: main, wizard-1..4, jobs (a collection mid-run), dashboard, atrisk (the dashboard's At
risk panel), export-1..5, settings, settings-cloud, waiting (a collection held back by the rate
limiter), quit (the question Ctrl+Q asks while collections run), chart, chain, quality.
In demo mode an empty demo database is first filled with a small collection, so tables are
not empty in the pictures, and a keep-complete watchlist of NIFTY and BANKNIFTY is saved: their
oldest expiries, never collected, vanish from the simulated Upstox within days (At risk).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.store.coverage import months_before
from expirytrack_desktop.ui.choices import WizardSelection
from expirytrack_desktop.ui.qt import Qt, QtGui, QtWidgets

if TYPE_CHECKING:
    from expirytrack_desktop.ui.chain_page import ChainPage
    from expirytrack_desktop.ui.chart_page import ChartPage
    from expirytrack_desktop.ui.mainwindow import MainWindow
    from expirytrack_desktop.ui.quality_page import QualityPage

log = logging.getLogger(__name__)

DEMO_SEED = {"NSE_INDEX|Nifty 50": 2, "NSE_INDEX|Nifty Bank": 1}  # underlying -> expiries
DEMO_WATCH = "demo-indices"  # keeps NIFTY and BANKNIFTY complete: the oldest are at risk


async def settle(seconds: float = 0.3) -> None:
    """Let pending tasks and paints run (never processEvents() inside a coroutine)."""
    await asyncio.sleep(seconds)


async def wait_for(predicate, timeout: float = 60.0) -> bool:  # type: ignore[no-untyped-def]
    loop = asyncio.get_running_loop()
    end = loop.time() + timeout
    while loop.time() < end:
        if predicate():
            return True
        await asyncio.sleep(0.05)
    return bool(predicate())


def save(widget: QtWidgets.QWidget, path: Path) -> int:
    path.parent.mkdir(parents=True, exist_ok=True)
    if not widget.grab().save(str(path), "PNG"):
        log.error("could not save %s", path)
        return 1
    print(f"saved {path}")
    return 0


async def ensure_demo_data(window: MainWindow) -> None:
    """Demo: collect a little (1 month of history) when nothing was collected yet."""
    c = window.controller
    stats = await c.usage.database_stats()
    if stats.get("candles", 0) > 0:
        return
    for key, n in DEMO_SEED.items():
        choices = await c.catalog.list_expiries(key)
        expiries = [ch.expiry for ch in choices[-n:]]
        sel = WizardSelection(expiries={key: expiries}, months=1, concurrency=8)
        job_id = await c.jobs.start_collection(sel)
        await c.jobs.wait(job_id)
    await c.jobs.reload()


async def ensure_demo_watchlist(window: MainWindow) -> None:
    """Demo: a keep-complete watchlist of NIFTY and BANKNIFTY (1 month of history). The demo
    collected only their newest expiries; the oldest ones the simulated Upstox still lists
    vanish within days, so the dashboard's At risk panel has something to show."""
    from expirytrack_desktop.store.watchlists import Watchlist, list_watchlists, save_watchlist

    rt = await window.controller.host.ready()
    if await rt.db.run(list_watchlists, rt.db):
        return
    wl = Watchlist(DEMO_WATCH, "list", tuple(DEMO_SEED), months=1)
    await rt.db.run(save_watchlist, rt.db, wl)


async def _wider_history(window: MainWindow) -> tuple[str, Any]:
    """Demo: NIFTY's newest expiry as a two-month collection stopped before its first window
    leaves it (the target recorded, the windows not fetched): every contract misses its first
    month, which the data quality page finds."""
    c = window.controller
    key = "NSE_INDEX|Nifty 50"
    expiry = (await c.analysis.expiries(key))[0]
    rt = await c.host.ready()
    eid = await rt.db.run(rt.db.expiry_id, key, expiry)
    if eid is not None:
        first = months_before(expiry, 2)
        await rt.db.run(rt.db.set_coverage_target, eid, "1minute", first, expiry)
    return key, expiry


async def _walk(
    wiz: QtWidgets.QWizard,
    page: int,
    loaded: dict[int, Callable[[], bool]],
    then: dict[int, Callable[[], None]],
) -> None:
    """Press Next up to step ``page`` (from step 1); on each step wait until ``loaded[step]``
    holds, do ``then[step]``, and let it paint (longer on the last step, the busiest)."""
    for step in range(2, page + 1):
        wiz.next()
        if step in loaded:
            await wait_for(loaded[step])
        if step in then:
            then[step]()
        await settle(0.5 if step >= 4 else 0.3)


async def _wizard(window: MainWindow, page: int) -> QtWidgets.QWizard:
    window.on_new_collection()
    wiz = window.collect_wizard
    wiz.underlyings_page.set_checked(["NIFTY", "BANKNIFTY", "SENSEX"])
    await settle(0.3)

    def pick() -> None:
        picked: dict[str, int] = {}
        for key, item in wiz.expiries_page.expiry_items():  # the two newest missing ones each
            if item.text(2) == "new" and picked.get(key, 0) < 2:
                item.setCheckState(0, Qt.CheckState.Checked)
                picked[key] = picked.get(key, 0) + 1

    loaded = {
        2: lambda: not wiz.expiries_page.is_loading() and bool(wiz.expiries_page.expiry_items()),
        4: lambda: wiz.review_page.estimate is not None,
    }
    await _walk(wiz, page, loaded, {2: pick})
    return wiz


async def _export_wizard(window: MainWindow, page: int) -> QtWidgets.QWizard:
    window.on_export()
    wiz = window.export_wizard
    await wait_for(lambda: wiz.instruments_page.loaded)
    wiz.instruments_page.set_checked(["NSE_INDEX|Nifty 50"])
    await settle(0.3)
    loaded = {
        2: lambda: not wiz.expiries_page.is_loading() and bool(wiz.expiries_page.selected()),
        5: lambda: wiz.review_page.preview is not None,
    }

    def output() -> None:  # step 4: a shorter column list in another order, zstd, S3
        out = wiz.output_page
        for name in ("date", "time", "underlying", "strike", "option_type", "lot_size"):
            out.columns.item(name).setCheckState(Qt.CheckState.Unchecked)
        out.columns.list.setCurrentItem(out.columns.item("exchange"))
        for _ in range(8):
            out.columns.move_current(-1)
        out.codec.setCurrentIndex(out.codec.findData("zstd"))
        out.dest_s3.setChecked(True)
        out.s3_url.setText("s3://quant-data/fno/")

    then = {3: lambda: wiz.options_page.metadata.setChecked(True), 4: output}
    await _walk(wiz, page, loaded, then)
    return wiz


async def _jobs_mid_run(window: MainWindow, *, halfway: bool = True) -> Any:
    """Start a bigger collection and return once it is well under way."""
    c = window.controller
    key = "BSE_INDEX|SENSEX"
    choices = await c.catalog.list_expiries(key)
    sel = WizardSelection(
        expiries={key: [ch.expiry for ch in choices[-3:]]}, months=3, concurrency=8
    )
    job_id = await c.jobs.start_collection(sel)
    window.tabs.setCurrentWidget(window.jobs_page)
    window.jobs_page.select_job(job_id)
    model = c.jobs_model

    def midway() -> bool:
        row = model.job(job_id)
        if not halfway:
            return row is not None and row.status == "running" and row.done > 0
        return row is not None and row.total > 0 and 0.25 <= row.percent / 100 <= 0.8

    await wait_for(midway, timeout=120)
    window.jobs_page.select_job(job_id)
    await settle(1.2)
    return job_id


async def _waiting_for_budget(window: MainWindow) -> int:
    """A collection held back by the rate limiter: a tight limit (30 per minute) for it."""
    c = window.controller
    c.services.options.rate_limit = "30/60"
    c.usage.apply_settings()
    key = "NSE_INDEX|Nifty Bank"
    choices = await c.catalog.list_expiries(key)
    sel = WizardSelection(expiries={key: [ch.expiry for ch in choices[-2:]]}, months=2)
    job_id = await c.jobs.start_collection(sel)
    window.tabs.setCurrentWidget(window.jobs_page)
    await wait_for(lambda: window.lbl_wait.isVisible(), timeout=120)
    await settle(1.2)
    window.jobs_page.select_job(job_id)
    await settle(1.2)
    return job_id


def _schedule_dialog(window: MainWindow, path: Path) -> int:
    page = window.schedules_page
    window.tabs.setCurrentWidget(page)
    page.edit(None)
    dialog = page.dialog
    dialog.name.setText("nightly")
    dialog.times.setText("16:30")
    dialog.mirror.setText(str(Path.home() / "fno-mirror"))
    dialog.adjustSize()
    code = save(dialog, path)
    dialog.reject()
    return code


def _with_dialog(window: QtWidgets.QWidget, dialog: QtWidgets.QWidget) -> QtGui.QPixmap:
    """The window with a dialog drawn where it stands (``grab()`` sees one window only)."""
    shot = window.grab()
    painter = QtGui.QPainter(shot)
    top_left = window.mapFromGlobal(dialog.frameGeometry().topLeft())
    if not window.rect().contains(top_left):  # no window manager placed it: centre it
        top_left = window.rect().center() - dialog.rect().center()
    painter.drawPixmap(top_left, dialog.grab())
    painter.end()
    return shot


async def take_screenshot(window: MainWindow, page: str, path: Path) -> int:
    window.resize(1240, 760)
    await settle(0.3)
    c = window.controller
    if c.runtime is None:
        log.error("the engine did not start: %s", c.host.engine_error)
        return 1
    if c.services.demo:
        await ensure_demo_data(window)
        await ensure_demo_watchlist(window)
    window.refresh_all()
    await settle(0.6)
    if page in ("main", "dashboard", "atrisk"):
        if page in ("dashboard", "atrisk"):
            window.tabs.setCurrentWidget(window.dashboard_page)
            await window.dashboard_page.refresh()
        else:
            window.tabs.setCurrentWidget(window.jobs_page)
            if c.jobs_model.rowCount():
                window.jobs_page.table.selectRow(0)
        await settle(0.6)
        return save(window, path)
    if page == "jobs":
        await _jobs_mid_run(window)
        return save(window, path)
    if page == "wizard-search":  # step 1 with a search typed: indices and stocks matching
        wiz = await _wizard(window, 1)
        search = wiz.underlyings_page.search  # type: ignore[attr-defined]
        await wait_for(search.btn_all_stocks.isEnabled, timeout=60)
        search.field.setText("bank")
        await settle(0.4)
        return save(wiz, path)
    if page.startswith("wizard-"):
        wiz = await _wizard(window, int(page[-1]))
        return save(wiz, path)
    if page.startswith("export-"):
        wiz = await _export_wizard(window, int(page[-1]))
        return save(wiz, path)
    if page in ("chart", "chain", "quality"):
        return await _viewer(window, page, path)
    if page == "schedules":
        window.tabs.setCurrentWidget(window.schedules_page)
        await settle(0.6)
        return save(window, path)
    if page == "schedule-dialog":  # New…, filled in: a collection then its exports
        return _schedule_dialog(window, path)
    if page == "waiting":
        await _waiting_for_budget(window)
        return save(window, path)
    if page == "quit":
        await _jobs_mid_run(window, halfway=False)
        window.close()  # as Ctrl+Q: jobs are running, so it asks
        await wait_for(lambda: window.quit_box is not None and window.quit_box.isVisible())
        await settle(0.8)
        assert window.quit_box is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        ok = _with_dialog(window, window.quit_box).save(str(path), "PNG")
        print(f"saved {path}" if ok else f"could not save {path}")
        window.quit_box.reject()
        return 0 if ok else 1
    if page in ("settings", "settings-cloud"):
        window.on_settings()
        if page == "settings-cloud":
            window.settings_dialog.tabs.setCurrentIndex(1)
        await window.settings_dialog.loaded.wait()  # the stored secrets shown, fields enabled
        await settle(0.8)
        return save(window.settings_dialog, path)
    log.error("unknown page %s", page)
    return 2


async def _viewer(window: MainWindow, page: str, path: Path) -> int:
    """The chart (a future and a strike's straddle), the chain at 10:30, or data quality."""
    pages: dict[str, ChartPage | ChainPage | QualityPage] = {
        "chart": window.chart_page,
        "chain": window.chain_page,
        "quality": window.quality_page,
    }
    target = pages[page]
    window.tabs.setCurrentWidget(target)
    await settle(0.3)
    await target.refresh()
    if page == "chart":
        chart = window.chart_page
        chart.overlay.setChecked(True)
        await chart.draw()
    if page == "quality":
        await _quality(window)
    await settle(0.6)
    return save(window, path)


async def _quality(window: MainWindow) -> None:
    """Findings of a stopped collection, half of them fixed by "Collect missing"; the most
    traded option still with a finding opened, its gaps timeline drawn."""
    page = window.quality_page

    async def checked() -> None:
        await wait_for(
            lambda: (
                page.report is not None
                and page.report.expiries == (page.picker.chosen,)
                and page.check_button.isEnabled()
            )
        )
        await settle(0.5)

    if window.controller.services.demo:
        key, expiry = await _wider_history(window)
        await page.show_expiry(key, expiry)
        await checked()
        found = [f for f in page.report.findings if f.collectable] if page.report else []
        if len(found) > 1:
            await page.collect_missing(found[: len(found) // 2])
    await checked()
    tree, report = page.tree, page.report
    with_finding = {f.contract_id: f for f in (report.findings if report is not None else [])}
    options = [
        q
        for q in page.model.rows
        if q.contract_type != "FUT" and q.candles and q.contract_id in with_finding
    ]
    best = min(options, key=lambda q: q.missing_pct or 100.0, default=None)
    if best is None:
        return
    f = with_finding[best.contract_id]
    node = tree.find_item(f.symbol, f.expiry.isoformat(), f.contract)
    if node is not None:
        node.setExpanded(True)
        leaf = node.child(0)
        tree.setCurrentItem(leaf if leaf is not None else node)
        tree.scrollToItem(node)
    await page.load_timeline(best.contract_id)
