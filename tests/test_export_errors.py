"""Failures are one-line errors and leave nothing behind: temp files, cancels, overwrites."""

from __future__ import annotations

import errno
import threading
from pathlib import Path

import pytest

from expirytrack_desktop.export.api import (
    DatabaseError,
    DiskFullError,
    EmptySelectionError,
    ExportCancelled,
    ExportOptions,
    NoDataError,
    OutputExistsError,
    UnwritableOutputError,
    list_export_history,
    run_export,
)
from expirytrack_desktop.export.options import FORMATS
from tests._export_db import build_db

ALL = ("NSE_INDEX|Nifty 50", "BSE_INDEX|SNSX50", "NSE_EQ|INE205A01025")
SHAPES = [
    ExportOptions(ALL, format="csv"),
    ExportOptions(ALL, format="csv", per_contract=True),
    ExportOptions(ALL, format="json"),
    ExportOptions(ALL, format="zip"),
    ExportOptions(ALL, format="parquet"),
    ExportOptions(ALL, format="parquet", parquet_partitioned=True),
    ExportOptions(ALL, format="historify"),
    ExportOptions(ALL, format="json", per_contract=True),
    ExportOptions(ALL, format="parquet", per_contract=True),
]
IDS = ["csv", "csv-per-contract", "json", "zip", "parquet", "parquet-dataset", "historify",
       "json-per-contract", "parquet-per-contract"]  # fmt: skip


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_db(tmp_path / "store.sqlite3")


@pytest.fixture
def out_dir(tmp_path: Path) -> Path:
    d = tmp_path / "exports"
    d.mkdir()
    return d


def one_line(exc: BaseException) -> str:
    text = str(exc)
    assert text and "\n" not in text
    return text


class FillingFile:
    """A file that accepts ``budget`` bytes, then fails like a full disk."""

    def __init__(self, path: Path, budget: int) -> None:
        self.f = open(path, "xb")  # noqa: SIM115
        self.budget = budget

    def write(self, data) -> int:
        self.budget -= len(data)
        if self.budget < 0:
            raise OSError(errno.ENOSPC, "No space left on device")
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.f.close()


@pytest.mark.parametrize("opts", SHAPES, ids=IDS)
def test_disk_full_leaves_nothing(db, out_dir, opts):
    target = out_dir / ("x" + opts.extension)
    with pytest.raises(DiskFullError) as info:
        run_export(db, opts, target, open_file=lambda p: FillingFile(p, 700), chunk_rows=3)
    assert "disk full" in one_line(info.value)
    assert list(out_dir.iterdir()) == []
    assert list_export_history(db) == []


@pytest.mark.parametrize("opts", SHAPES, ids=IDS)
def test_cancel_leaves_nothing(db, out_dir, opts):
    cancel = threading.Event()
    seen = []

    def progress(p):
        seen.append(p)
        if p.rows_done >= 6:
            cancel.set()

    target = out_dir / ("x" + opts.extension)
    with pytest.raises(ExportCancelled) as info:
        run_export(db, opts, target, progress=progress, cancel=cancel, chunk_rows=3)
    one_line(info.value)
    assert list(out_dir.iterdir()) == []
    assert 6 <= seen[-1].rows_done < 32
    assert list_export_history(db) == []


def test_progress_reaches_the_end(db, out_dir):
    seen = []
    run_export(db, SHAPES[0], out_dir / "x.csv", progress=seen.append, chunk_rows=3)
    assert seen[0].phase == "counting" and seen[0].rows_total == 32
    assert seen[-1].phase == "finishing" and seen[-1].fraction == 1.0
    writing = [p.rows_done for p in seen if p.phase == "writing"]
    assert writing == sorted(writing) and writing[-1] == 32
    assert seen[-1].contracts_done == seen[-1].contracts_total == 7


@pytest.mark.parametrize("opts", SHAPES, ids=IDS)
def test_existing_output_needs_overwrite(db, out_dir, opts):
    target = out_dir / ("x" + opts.extension)
    first = run_export(db, opts, target)
    before = sorted(p.relative_to(out_dir) for p in out_dir.rglob("*"))
    seen: list[object] = []
    with pytest.raises(OutputExistsError) as info:
        run_export(db, opts, target, progress=seen.append)
    assert "exists" in one_line(info.value)
    assert seen == []  # refused before the planning counted a row
    assert sorted(p.relative_to(out_dir) for p in out_dir.rglob("*")) == before
    second = run_export(db, opts, target, overwrite=True)
    assert second.rows == first.rows == 32
    assert sorted(p.relative_to(out_dir) for p in out_dir.rglob("*")) == before  # no leftovers


def test_overwrite_replaces_old_content(db, out_dir):
    target = out_dir / "x.csv"
    target.write_text("old\n")
    run_export(db, ExportOptions(ALL, contract_types=("FUT",)), target, overwrite=True)
    assert target.read_text().startswith("openalgo_symbol,")


def test_overwrite_never_replaces_a_folder_with_a_file(db, out_dir):
    (out_dir / "x.csv").mkdir()
    with pytest.raises(OutputExistsError, match="folder"):
        run_export(db, SHAPES[0], out_dir / "x.csv", overwrite=True)


def test_failed_write_keeps_the_previous_file(db, out_dir):
    target = out_dir / "x.csv"
    target.write_text("previous\n")
    with pytest.raises(DiskFullError):
        run_export(db, SHAPES[0], target, overwrite=True, open_file=lambda p: FillingFile(p, 100))
    assert target.read_text() == "previous\n"
    assert list(out_dir.iterdir()) == [target]


def test_unwritable_folder(db, tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.raises(UnwritableOutputError) as info:
        run_export(db, SHAPES[0], blocker / "sub" / "x.csv")
    assert one_line(info.value).endswith(f"{blocker} is a file, not a folder")  # not "File exists"


def test_permission_denied_maps_to_unwritable(db, out_dir):
    def denied(path):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    with pytest.raises(UnwritableOutputError, match="permission denied"):
        run_export(db, SHAPES[0], out_dir / "x.csv", open_file=denied)
    assert list(out_dir.iterdir()) == []


def test_no_data_in_range(db, out_dir):
    from datetime import date

    opts = ExportOptions(ALL, date_from=date(2020, 1, 1), date_to=date(2020, 1, 31))
    with pytest.raises(NoDataError) as info:
        run_export(db, opts, out_dir / "x.csv")
    assert "no 1minute candles" in one_line(info.value)
    empty_only = ExportOptions(ALL[:1], strike_min=20450, strike_max=20450, contract_types=("CE",))
    with pytest.raises(NoDataError):  # the empty contract alone
        run_export(db, empty_only, out_dir / "x.csv")
    assert list(out_dir.iterdir()) == []


def test_selection_matching_no_contract(db, out_dir):
    with pytest.raises(EmptySelectionError, match="no stored contract"):
        run_export(db, ExportOptions(("BSE_INDEX|SNSX50",), contract_types=("PE",)), out_dir / "x")


def test_missing_database(tmp_path):
    with pytest.raises(DatabaseError, match="not found"):
        run_export(tmp_path / "nope.sqlite3", SHAPES[0], tmp_path / "x.csv")
    assert not (tmp_path / "nope.sqlite3").exists()


def test_every_format_is_covered():
    assert {o.format for o in SHAPES} == set(FORMATS)


@pytest.mark.parametrize("opts", SHAPES, ids=IDS)
def test_a_failed_export_leaves_no_reader_thread_behind(db, out_dir, opts, monkeypatch):
    """The reader threads are stopped by run_export itself, while the exception (whose
    traceback keeps the unfinished stream alive) is still held: left to the garbage collector,
    their clean-up ran in whatever thread allocated next, once inside threading's own start-up
    holding a lock the clean-up needs -- a deadlock seen in CI."""
    from expirytrack_desktop.export import arrow_read

    monkeypatch.setattr(arrow_read, "AHEAD", 1)  # readers still busy when the writer fails
    target = out_dir / ("x" + opts.extension)
    with pytest.raises(DiskFullError) as info:
        run_export(db, opts, target, open_file=lambda p: FillingFile(p, 300), chunk_rows=1)
    assert info.traceback  # still held
    readers = [t.name for t in threading.enumerate() if t.name.startswith("export-reader")]
    assert readers == []
