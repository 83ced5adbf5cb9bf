"""Every table model passes pytest-qt's model tester; batching and labels behave."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("QT_API", "pyside6")


import sys

from expirytrack_desktop.ui.models import (
    CoverageCell,
    CoverageModel,
    JobRow,
    JobsModel,
    ProgressRole,
    RecordsModel,
    fmt_bytes,
    fmt_duration,
)
from expirytrack_desktop.ui.qt import QtCore


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


def test_coverage_model_passes_the_model_tester_and_says_the_state_in_words(qtmodeltester):
    model = CoverageModel()
    model.set_cells(
        {
            ("NIFTY", "2025-11-18"): CoverageCell("complete", 10, 10, 5000),
            ("NIFTY", "2025-11-11"): CoverageCell("partial", 4, 10, 100),
            ("SENSEX", "2025-11-13"): CoverageCell("failed", 2, 10, 10, failed=3),
        }
    )
    qtmodeltester.check(model)
    assert model.rowCount() == 2 and model.columnCount() == 3
    texts = {model.data(model.index(r, c)) for r in range(2) for c in range(3)}
    assert "✔ complete" in texts and "◐ partial 4/10" in texts and "✖ failed" in texts


def test_records_model_passes_the_model_tester(qtmodeltester):
    model = RecordsModel([("path", "Where"), ("rows", "Rows")], {"rows": lambda v: f"{v:,}"})
    model.set_rows([{"path": "/tmp/a.csv", "rows": 1234}, {"path": "/tmp/b.csv", "rows": 5}])
    qtmodeltester.check(model)
    assert model.data(model.index(0, 1)) == "1,234"


def test_formatters():
    assert fmt_duration(59) == "59s" and fmt_duration(125) == "2m 05s"
    assert fmt_duration(3 * 3600 + 60) == "3h 01m" and fmt_duration(None) == ""
    assert fmt_bytes(512) == "512 B" and fmt_bytes(3 * 1024 * 1024) == "3.0 MB"
