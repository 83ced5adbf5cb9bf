"""Clean-up of old exports: by age and size, never a file the app did not write as it is."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from expirytrack_desktop.cli.main import main
from expirytrack_desktop.export.api import ExportOptions, list_export_history, run_export
from expirytrack_desktop.export.cleanup import clean_exports, parse_size
from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.settings import Settings
from tests._export_db import build_db

ALL = ("NSE_INDEX|Nifty 50", "BSE_INDEX|SNSX50", "NSE_EQ|INE205A01025")
T0 = datetime(2025, 9, 1, 10, 0, tzinfo=UTC)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_db(tmp_path / "store.sqlite3")


def export_at(db: Path, path: Path, days: int, **kw: object) -> Path:
    run_export(db, ExportOptions(ALL, **kw), path, clock=lambda: T0 + timedelta(days=days))
    return path


def test_by_age_and_size_only_what_the_app_wrote_unchanged(db, tmp_path):
    out = tmp_path / "exports"
    old = export_at(db, out / "old.csv", 0)
    folder = export_at(db, out / "folder", 1, per_contract=True)
    changed = export_at(db, out / "changed.csv", 2)
    changed.write_text(changed.read_text() + "my note\n")  # the user's edit
    replaced = export_at(db, out / "replaced.csv", 3)
    replaced.unlink()
    replaced.write_text("another file, same name\n")
    newest = export_at(db, out / "newest.zip", 10, format="zip")
    foreign = out / "not-ours.csv"
    foreign.write_text("x")
    now = T0 + timedelta(days=11)
    dry = clean_exports(db, older_than_days=5, now=now, dry_run=True)
    assert [r.path for r in dry.removed] == [old, folder]
    assert old.exists() and folder.exists()
    result = clean_exports(db, older_than_days=5, now=now)
    assert [r.path for r in result.removed] == [old, folder]
    assert not old.exists() and not folder.exists()
    assert set(result.kept_changed) == {changed, replaced}
    assert changed.exists() and replaced.exists() and newest.exists() and foreign.exists()
    assert str(old) not in {h.path for h in list_export_history(db)}
    # by size: the oldest unchanged export goes first, until the rest fits
    second = export_at(db, out / "second.zip", 9, format="zip")
    size = newest.stat().st_size
    result = clean_exports(db, max_total_bytes=size, now=now)
    assert [r.path for r in result.removed] == [second]
    assert newest.exists() and foreign.exists() and changed.exists()


def test_cli_clean(db, tmp_path, capsys):
    out = tmp_path / "a.csv"
    run_export(db, ExportOptions(ALL), out, clock=lambda: datetime.now(UTC) - timedelta(days=40))
    assert main(["export", "--db", str(db), "--clean-older-than", "30", "--dry-run"]) == 0
    assert "would remove" in capsys.readouterr().out and out.exists()
    assert main(["export", "--db", str(db), "--clean-older-than", "30"]) == 0
    assert "removed 1 export, " in capsys.readouterr().out and not out.exists()
    assert main(["export", "--db", str(db), "--clean-max-size", "lots"]) == 2


def test_a_relative_out_is_recorded_whole_and_cleaned_from_another_folder(
    db, tmp_path, monkeypatch, capsys
):
    """The history outlives the working folder: ``-o a.csv`` is recorded as the full path, so
    the clean-up (run from anywhere, or the window) finds that file and no other a.csv."""
    work, elsewhere = tmp_path / "work", tmp_path / "elsewhere"
    work.mkdir()
    elsewhere.mkdir()
    monkeypatch.chdir(work)
    assert main(["export", "--db", str(db), "-i", "NIFTY", "-o", "a.csv", "-q"]) == 0
    assert f"to {work / 'a.csv'}" in capsys.readouterr().out
    assert [h.path for h in list_export_history(db)] == [str(work / "a.csv")]
    monkeypatch.chdir(elsewhere)
    (elsewhere / "a.csv").write_text("someone else's\n")
    assert main(["export", "--db", str(db), "--clean-older-than", "0"]) == 0
    assert f"removed {work / 'a.csv'}" in capsys.readouterr().out
    assert not (work / "a.csv").exists() and (elsewhere / "a.csv").exists()


def test_parse_size():
    assert parse_size("500M") == 500 * 2**20
    assert parse_size("1.5GB") == int(1.5 * 2**30)
    assert parse_size("1000") == 1000


def test_history_rows_with_other_paths_untouched(db, tmp_path):
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute(
            "INSERT INTO export_history (created_at, format, selection, path, rows, bytes)"
            " VALUES ('2000-01-01 00:00:00', 'csv', '{}', ?, 1, 1)",
            (str(tmp_path / "missing.csv"),),
        )
    result = clean_exports(db, older_than_days=1)
    assert result.removed == [] and result.kept_changed == []


def test_automatic_clean_up_never_removes_the_export_just_written(db, tmp_path):
    from expirytrack_desktop.export.cleanup import auto_clean

    out = tmp_path / "exports"
    old = export_at(db, out / "old.csv", 0)
    mid = export_at(db, out / "mid.zip", 5, format="zip")
    new = export_at(db, out / "new.csv", 10)
    now = T0 + timedelta(days=10, hours=1)
    assert auto_clean(db, 0, 0, keep=[new], now=now) is None  # both limits off: nothing done
    by_age = auto_clean(db, 7, 0, keep=[new], now=now)
    assert by_age is not None and [r.path for r in by_age.removed] == [old]
    # a size below the newest export alone: every other one goes, never the one just written
    by_size = auto_clean(db, 0, new.stat().st_size / 2**20 / 2, keep=[new], now=now)
    assert by_size is not None and [r.path for r in by_size.removed] == [mid]
    assert new.exists() and not mid.exists() and not old.exists()


def test_clean_after_export_never_fails_the_export(db, tmp_path, monkeypatch):
    from expirytrack_desktop.export import cleanup

    said: list[str] = []
    export_at(db, tmp_path / "old.csv", 0)

    def broken(*_a, **_k):
        raise PermissionError(13, "Permission denied", str(tmp_path / "old.csv"))

    monkeypatch.setattr(cleanup, "clean_exports", broken)
    assert cleanup.clean_after_export(db, 1, 0, None, said.append) is None
    assert said == [
        "warning: the automatic clean-up of old exports failed: [Errno 13] Permission denied:"
        f" '{tmp_path / 'old.csv'}'"
    ]


def test_cli_export_cleans_up_by_the_settings(db, tmp_path, capsys):
    paths = AppPaths.default()
    Settings(export_keep_days=30).save(paths.settings_path)
    old = export_at(db, tmp_path / "old.csv", 0)  # T0: long ago
    out = tmp_path / "new.csv"
    assert main(["export", "--db", str(db), "-i", "NIFTY", "-o", str(out), "-q"]) == 0
    assert "removed 1 old export (" in capsys.readouterr().err
    assert out.exists() and not old.exists()
    assert [h.path for h in list_export_history(db)] == [str(out)]


def test_scheduled_export_cleans_up_by_the_settings(db, tmp_path):
    from expirytrack_desktop.export.presets import Preset, presets_path, save_preset
    from expirytrack_desktop.schedule import Schedule
    from expirytrack_desktop.schedule.exports import run_exports

    config, exports = tmp_path / "config", tmp_path / "exports"
    config.mkdir()
    exports.mkdir()
    save_preset(presets_path(config), Preset("p", ExportOptions(ALL), str(exports) + "/"))
    old = export_at(db, tmp_path / "old.csv", 0)
    said: list[str] = []
    s = Schedule("nightly", ["NIFTY"], ["16:30"], export_preset="p")
    assert run_exports(s, db, config, exports, said.append, keep=(30.0, 0.0))
    [made] = exports.iterdir()
    assert not old.exists() and made.exists()
    assert said[-1].startswith("removed 1 old export (")
