"""The one atomic-write helper: whole new content or the old file, no temporary left over,
secrets never readable by others, and the Windows rename retry."""

from __future__ import annotations

import json
import os
import stat
import sys
from pathlib import Path

import pytest

from expirytrack_desktop import fsutil
from expirytrack_desktop.fsutil import (
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    replace,
    sibling_temp,
)
from expirytrack_desktop.schedule.model import Schedule, ScheduleError, ScheduleStore
from expirytrack_desktop.settings import Settings


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


def test_write_creates_folders_and_replaces_whole_content(tmp_path):
    target = tmp_path / "a" / "b" / "state.json"
    atomic_write_json(target, {"n": 1})
    assert json.loads(target.read_text(encoding="utf-8")) == {"n": 1}
    atomic_write_text(target, "second ₹ version")
    assert target.read_bytes() == "second ₹ version".encode()
    assert leftovers(target.parent) == []


def test_failed_rename_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    target = tmp_path / "settings.json"
    target.write_text("old", encoding="utf-8")

    def disk_full(src: Path, dst: Path) -> None:
        assert src.read_bytes() == b"new"  # the temporary was complete before the rename
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(fsutil, "replace", disk_full)
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(target, b"new")
    assert target.read_text(encoding="utf-8") == "old"
    assert leftovers(tmp_path) == []


def test_a_folder_in_the_way_is_an_error_and_nothing_is_left(tmp_path):
    target = tmp_path / "schedules.json"
    target.mkdir()
    with pytest.raises(OSError):
        atomic_write_text(target, "x")
    assert target.is_dir() and list(target.iterdir()) == []
    assert leftovers(tmp_path) == []


@pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX permission bits")
def test_secret_mode_from_creation_and_private_folder(tmp_path):
    target = tmp_path / "cfg" / "secrets.enc"
    atomic_write_bytes(target, b"cipher", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert stat.S_IMODE(target.parent.stat().st_mode) & 0o077 == 0
    os.chmod(target, 0o644)  # a looser file replaced: the new one is private again
    atomic_write_bytes(target, b"cipher2", mode=0o600)
    assert stat.S_IMODE(target.stat().st_mode) == 0o600


def test_temporary_names_are_hidden_siblings_and_unique(tmp_path):
    final = tmp_path / "out.csv"
    a, b = sibling_temp(final, ".part"), sibling_temp(final, ".part")
    assert a != b and a.parent == final.parent
    assert a.name.startswith(".out.csv.") and a.name.endswith(".part")


def test_windows_rename_is_retried_while_the_target_is_held_open(tmp_path):
    src, dst = tmp_path / "src", tmp_path / "dst"
    src.write_text("new")
    dst.write_text("old")
    refusals = iter([PermissionError(13, "in use"), PermissionError(13, "in use")])
    waits: list[float] = []

    def flaky(a: Path, b: Path) -> None:
        err = next(refusals, None)
        if err is not None:
            raise err
        os.replace(a, b)

    replace(src, dst, windows=True, sleep=waits.append, rename=flaky)
    assert dst.read_text() == "new" and not src.exists()
    assert waits == [0.01, 0.02]


def test_windows_gives_up_after_the_last_attempt_and_posix_does_not_retry(tmp_path):
    calls: list[int] = []

    def always(a: Path, b: Path) -> None:
        calls.append(1)
        raise PermissionError(13, "in use")

    with pytest.raises(PermissionError):
        replace(tmp_path / "a", tmp_path / "b", windows=True, sleep=lambda _s: None, rename=always)
    assert len(calls) == fsutil.REPLACE_ATTEMPTS
    calls.clear()
    with pytest.raises(PermissionError):
        replace(tmp_path / "a", tmp_path / "b", windows=False, rename=always)
    assert len(calls) == 1


def test_settings_and_schedules_use_it(tmp_path):
    settings = tmp_path / "config" / "settings.json"
    Settings(concurrency=3).save(settings)
    assert Settings.load(settings).concurrency == 3
    store = ScheduleStore(tmp_path / "config" / "schedules.json")
    store.put(Schedule("nifty", ["NSE_INDEX|Nifty 50"], ["16:30"]).validate())
    assert [s.name for s in store.load()] == ["nifty"]
    assert leftovers(tmp_path / "config") == []


def test_unwritable_schedules_file_is_one_clear_error(tmp_path):
    path = tmp_path / "schedules.json"
    path.mkdir()  # a folder where the file belongs
    with pytest.raises(ScheduleError, match=r"cannot write .*schedules\.json"):
        ScheduleStore(path).save_all([])
