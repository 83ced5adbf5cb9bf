"""Heap slack while exports run (export/heap.py): set by the first export, given back by
the last, through glibc's mallopt/malloc_trim; nothing where there is no glibc."""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from expirytrack_desktop.export import heap
from expirytrack_desktop.export.api import ExportOptions, run_export
from tests._export_db import build_db


class FakeLibc:
    def __init__(self) -> None:
        self.calls: list[tuple[object, ...]] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


@pytest.fixture
def libc(monkeypatch) -> FakeLibc:
    fake = FakeLibc()
    monkeypatch.setattr(heap, "_glibc", lambda: fake)
    return fake


SET = ("mallopt", heap.M_TOP_PAD, heap.SLACK)
RESET = [("mallopt", heap.M_TOP_PAD, heap.DEFAULT_TOP_PAD), ("malloc_trim", 0)]


def test_the_slack_lasts_while_any_export_runs(libc):
    with heap.export_slack():
        assert libc.calls == [SET]
        with heap.export_slack():  # a second export meanwhile: no change
            pass
        assert libc.calls == [SET]
    assert libc.calls == [SET, *RESET]


def test_the_slack_is_given_back_when_an_export_fails(libc):
    with pytest.raises(RuntimeError), heap.export_slack():
        raise RuntimeError("disk full")
    assert libc.calls == [SET, *RESET]


def test_concurrent_exports_share_one_slack(libc):
    inside, release = threading.Barrier(3), threading.Event()

    def export() -> None:
        with heap.export_slack():
            inside.wait()
            release.wait()

    threads = [threading.Thread(target=export) for _ in range(2)]
    for t in threads:
        t.start()
    inside.wait()  # both exports are inside
    assert libc.calls == [SET]
    release.set()
    for t in threads:
        t.join()
    assert libc.calls == [SET, *RESET]


def test_run_export_keeps_the_slack_while_it_writes(libc, tmp_path: Path):
    db = build_db(tmp_path / "store.sqlite3")
    seen: list[list[tuple[object, ...]]] = []
    run_export(
        db, ExportOptions(("NSE_INDEX|Nifty 50",), format="csv"), tmp_path / "x.csv",
        record_history=False, progress=lambda p: seen.append(list(libc.calls)),
    )  # fmt: skip
    assert seen and all(calls == [SET] for calls in seen)
    assert libc.calls == [SET, *RESET]


@pytest.mark.parametrize("confstr", ["missing", "unknown name", "empty"])
def test_no_glibc_is_found_where_there_is_none(monkeypatch, confstr):
    """Windows has no os.confstr, macOS no CS_GNU_LIBC_VERSION (ValueError), and a libc
    that does not name itself gives None: each is 'not glibc', and an export still runs."""
    if confstr == "missing":
        monkeypatch.delattr(os, "confstr", raising=False)
    else:

        def fake(name: str) -> str | None:
            if confstr == "unknown name":
                raise ValueError("unrecognized configuration name")
            return None

        monkeypatch.setattr(os, "confstr", fake, raising=False)
    heap._glibc.cache_clear()
    try:
        assert heap._glibc() is None
        with heap.export_slack():
            pass
    finally:
        heap._glibc.cache_clear()


@pytest.mark.skipif(
    not hasattr(os, "confstr") or "CS_GNU_LIBC_VERSION" not in os.confstr_names,
    reason="not a glibc system",
)
def test_the_real_glibc_takes_both_calls():
    libc = heap._glibc()
    if libc is None:
        pytest.skip("not a glibc system")
    assert libc.mallopt(heap.M_TOP_PAD, heap.SLACK) == 1  # 1: the parameter was accepted
    assert libc.mallopt(heap.M_TOP_PAD, heap.DEFAULT_TOP_PAD) == 1
    libc.malloc_trim(0)
