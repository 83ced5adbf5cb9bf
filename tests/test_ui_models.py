"""Every table model passes pytest-qt's model tester; batching and labels behave."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")


import sys

from expirytrack_desktop.ui.models import (
    JobRow,
    JobsModel,
    ProgressRole,
    RecordsModel,
    fmt_bytes,
    fmt_duration,
)
from expirytrack_desktop.ui.qt import Qt, QtCore


def test_signals_do_not_leak_singleton_references(qapp):
    """PySide6 6.12.0 lost a reference to True per emit (and to None per slot call) until the
    interpreter aborted; pyproject.toml excludes it. This catches such a release again."""

    class Probe(QtCore.QObject):
        ping = QtCore.Signal()

    probe = Probe()
    calls = []
    probe.ping.connect(lambda: calls.append(1) and None)
    true_before, none_before = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(200):
        probe.ping.emit()
    assert len(calls) == 200
    assert sys.getrefcount(True) >= true_before - 5
    assert sys.getrefcount(None) >= none_before - 5


def rows(n: int) -> list[JobRow]:
    return [
        JobRow(id=i, underlyings="NIFTY", expiries="2025-11-18", status="running", total=10, done=i)
        for i in range(n, 0, -1)
    ]


def test_jobs_model_passes_the_model_tester(qtmodeltester):
    model = JobsModel()
    model.set_rows(rows(3))
    qtmodeltester.check(model)
    model.upsert(JobRow(id=9, status="pending"))
    model.set_rows(rows(5))
    qtmodeltester.check(model)


def test_jobs_model_batches_live_updates(qtbot):
    model = JobsModel()
    model.set_rows(rows(2))
    changed = []
    model.dataChanged.connect(lambda a, b: changed.append((a.row(), b.row())))
    for done in range(1, 8):  # many engine events ...
        model.post(1, lambda r, d=done: setattr(r, "done", d))
    assert changed == []  # ... nothing repainted yet
    assert model.flush() == 1  # one timer tick: one dataChanged for the row
    assert changed == [(1, 1)]
    assert model.job(1).done == 7
    assert model.data(model.index(1, JobsModel.PROGRESS_COLUMN), ProgressRole) == 70
    assert model.flush() == 0


def test_jobs_model_labels_resumable_states():
    model = JobsModel()
    model.set_rows([JobRow(id=1, status="interrupted"), JobRow(id=2, status="needs_login")])
    assert model.data(model.index(0, 3)) == "interrupted (resumable)"
    assert model.data(model.index(1, 3)) == "paused: log in again"
    assert model.job(1).resumable and model.job(2).resumable


def test_jobs_table_shows_what_a_long_run_waits_for():
    """A running job waiting for the network shows the engine's line; one waiting for a login
    shows "paused: log in again" (README "Long runs")."""
    from expirytrack_desktop.collect import JobState, Phase, Progress
    from expirytrack_desktop.ui.jobs_service import live_status

    def progress(kind: str | None, text: str | None) -> Progress:
        return Progress(1, JobState.RUNNING, Phase.CANDLES, 10, 4, 0, 9, 100, 0.0, None, "", 0,
                        None, waiting_for=kind, waiting=text)  # fmt: skip

    net = "waiting for the network since 14:02, next try in 8 s"
    model = JobsModel()
    model.set_rows(
        [
            JobRow(id=1, status=live_status(progress("network", net)), extra={"waiting": net}),
            JobRow(id=2, status=live_status(progress("login", "needs login: ..."))),
            JobRow(id=3, status=live_status(progress(None, None))),
        ]
    )
    assert model.data(model.index(0, 3)) == net
    assert model.data(model.index(1, 3)) == "paused: log in again"
    assert model.data(model.index(2, 3)) == "running"


def test_a_job_waiting_for_a_login_asks_for_it_once_per_wait(qtbot):
    from expirytrack_desktop.collect import JobState, Phase, Progress
    from expirytrack_desktop.ui.jobs_service import JobsService
    from expirytrack_desktop.ui.signals import ControllerSignals

    def progress(kind: str | None) -> Progress:
        return Progress(7, JobState.RUNNING, Phase.CANDLES, 10, 4, 0, 9, 100, 0.0, None, "", 0,
                        None, waiting_for=kind, waiting=kind and f"{kind} ...")  # fmt: skip

    service = JobsService(None, None, ControllerSignals(), JobsModel())  # type: ignore[arg-type]
    asked: list[str] = []
    service.signals.loginNeeded.connect(asked.append)
    for _ in range(3):  # progress events while it waits
        service.on_progress(progress("login"))
    assert len(asked) == 1 and "continue by themselves" in asked[0]
    service.on_progress(progress(None))  # logged in: it goes on
    service.on_progress(progress("login"))  # the next day's expiry
    assert len(asked) == 2


def test_coverage_months_model_passes_the_model_tester_and_keeps_each_axis(qtmodeltester):
    from datetime import date

    from expirytrack_desktop.ui.coverage_view import CoverageMonthsModel, ExpiryChip

    nifty, reliance = "NSE_INDEX|Nifty 50", "NSE_EQ|INE002A01018"
    model = CoverageMonthsModel()
    model.set_chips(
        {nifty: "NIFTY", reliance: "RELIANCE"},
        [
            ExpiryChip(nifty, date(2025, 11, 18), "complete", 10, 10),
            ExpiryChip(nifty, date(2025, 11, 11), "partial", 4, 10),
            ExpiryChip(nifty, date(2025, 5, 29), "failed", 2, 10),
            ExpiryChip(nifty, date(2025, 4, 24), "complete", 9, 9),  # 7 months back: not shown
            ExpiryChip(reliance, date(2025, 10, 28), "none"),
        ],
    )
    qtmodeltester.check(model)
    assert model.rowCount() == 2 and model.columnCount() == 6
    assert [model.headerData(c, Qt.Orientation.Horizontal) for c in (0, 5)] == [
        "Jun 2025",
        "Nov 2025",
    ]
    assert model.headerData(0, Qt.Orientation.Vertical) == "NIFTY"
    assert model.data(model.index(0, 5)) == "11 ◐ partial 4/10\n18 ✔ complete"
    assert model.data(model.index(1, 4)) == "28 ○ no data"
    assert model.data(model.index(0, 0)) == ""  # the failed 29 May is outside the six months


def test_records_model_passes_the_model_tester(qtmodeltester):
    model = RecordsModel([("path", "Where"), ("rows", "Rows")], {"rows": lambda v: f"{v:,}"})
    model.set_rows([{"path": "/tmp/a.csv", "rows": 1234}, {"path": "/tmp/b.csv", "rows": 5}])
    qtmodeltester.check(model)
    assert model.data(model.index(0, 1)) == "1,234"


def test_formatters():
    assert fmt_duration(59) == "59s" and fmt_duration(125) == "2m 05s"
    assert fmt_duration(3 * 3600 + 60) == "3h 01m" and fmt_duration(None) == ""
    assert fmt_bytes(512) == "512 B" and fmt_bytes(3 * 1024 * 1024) == "3.0 MB"
