"""Export defects found by probing: races for one name, what --overwrite may replace,
read-only targets, temporary files of killed exports, WAL databases on read-only media."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.export.api import (
    ExportOptions,
    OutputExistsError,
    list_export_history,
    run_export,
)
from expirytrack_desktop.export.atomic import clean_stale_parts
from tests._export_db import build_db

ALL = ("NSE_INDEX|Nifty 50", "BSE_INDEX|SNSX50", "NSE_EQ|INE205A01025")
CSV = ExportOptions(ALL)


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_db(tmp_path / "store.sqlite3")


def reference_csv(db: Path, tmp_path: Path) -> bytes:
    run_export(db, CSV, tmp_path / "reference.csv", record_history=False)
    return (tmp_path / "reference.csv").read_bytes()


def race(db: Path, target: Path, **kwargs: object) -> list[object]:
    """Two exports to one name, both held just before their commit until both are there."""
    barrier = threading.Barrier(2, timeout=30)
    results: list[object] = [None, None]

    held = threading.local()

    def progress(p) -> None:
        # once per export: how many "finishing" reports an export sends depends on timing
        if p.phase == "finishing" and not getattr(held, "done", False):
            held.done = True
            barrier.wait()

    def one(i: int) -> None:
        try:
            results[i] = run_export(db, CSV, target, progress=progress, **kwargs)
        except Exception as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


def test_two_exports_with_one_default_name_both_keep_their_file(db, tmp_path):
    out = tmp_path / "exports"
    target = out / "OpenAlgo_ExpiryTrack_All_20250919_091456.csv"
    results = race(db, target, unique=True)
    paths = sorted(str(r.path) for r in results)  # type: ignore[union-attr]
    assert paths == [str(target), str(out / "OpenAlgo_ExpiryTrack_All_20250919_091456_2.csv")]
    want = reference_csv(db, tmp_path)
    assert all(Path(p).read_bytes() == want for p in paths)
    assert sorted(h.path for h in list_export_history(db)) == paths
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(p).name for p in paths)


def test_two_exports_to_one_explicit_name_the_second_fails(db, tmp_path):
    target = tmp_path / "mine.csv"
    results = race(db, target)
    errors = [r for r in results if isinstance(r, Exception)]
    assert len(errors) == 1 and isinstance(errors[0], OutputExistsError)
    assert target.read_bytes() == reference_csv(db, tmp_path)
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_second_identical_out_exits_2(db, tmp_path, capsys):
    out = str(tmp_path / "x.csv")
    assert main(["export", "--db", str(db), "-i", "NIFTY", "-o", out, "-q"]) == exitcodes.OK
    before = Path(out).read_bytes()
    assert main(["export", "--db", str(db), "-i", "NIFTY", "-o", out, "-q"]) == 2
    assert "exists" in capsys.readouterr().err
    assert Path(out).read_bytes() == before


def test_default_names_in_one_folder_never_collide(db, tmp_path):
    folder = tmp_path / "f"
    folder.mkdir()
    names = set()
    for _ in range(3):
        r = run_export(db, CSV, folder / "OpenAlgo_ExpiryTrack_All_1_2.csv", unique=True)
        names.add(r.path.name)
    assert names == {
        "OpenAlgo_ExpiryTrack_All_1_2.csv",
        "OpenAlgo_ExpiryTrack_All_1_2_2.csv",
        "OpenAlgo_ExpiryTrack_All_1_2_3.csv",
    }


def _special_files(tmp_path: Path) -> Iterator[Path]:
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    yield fifo
    if os.geteuid() == 0:
        dev = tmp_path / "null.csv"
        with contextlib.suppress(PermissionError):
            os.mknod(dev, stat.S_IFCHR | 0o600, os.makedev(1, 3))
            yield dev
    link = tmp_path / "link.csv"
    (tmp_path / "real.csv").write_text("keep me\n")
    link.symlink_to(tmp_path / "real.csv")
    yield link


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs on this platform")
def test_overwrite_refuses_anything_but_a_regular_file(db, tmp_path, capsys):
    for special in list(_special_files(tmp_path)):
        mode = special.lstat().st_mode
        with pytest.raises(OutputExistsError, match="not a regular file"):
            run_export(db, CSV, special, overwrite=True)
        assert special.lstat().st_mode == mode
    assert (tmp_path / "real.csv").read_text() == "keep me\n"
    code = main(["export", "--db", str(db), "-i", "NIFTY", "-o", str(tmp_path / "pipe.csv"),
                 "--overwrite", "-q"])  # fmt: skip
    assert code == exitcodes.BAD_INPUT
    err = capsys.readouterr().err  # no advice to use the flag that was just refused
    assert "not a regular file; will not replace it" in err and "--overwrite" not in err


@contextlib.contextmanager
def read_only_folder(tmp_path: Path) -> Iterator[Path]:
    """A read-only tmpfs mount as root (where permission bits mean nothing), else chmod 555."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if os.geteuid() == 0:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
            capture_output=True,
        )
        if done.returncode != 0:
            pytest.skip(f"cannot mount a read-only tmpfs here: {done.stderr.decode().strip()}")
        try:
            yield folder
        finally:
            subprocess.run(["umount", str(folder)], check=True)
        return
    folder.chmod(0o555)
    try:
        yield folder
    finally:
        folder.chmod(0o755)


@pytest.mark.parametrize("fmt", ["csv", "parquet", "zip", "json", "historify"])
def test_read_only_target_is_one_line_exit_5(db, tmp_path, fmt):
    with read_only_folder(tmp_path) as ro:
        outs = [str(ro / f"x.{fmt}"), str(ro) + "/"]
        if fmt == "historify":
            outs.append(str(ro / "historify.duckdb"))  # the direct load
        for out in outs:
            done = subprocess.run(
                [sys.executable, "-m", "expirytrack_desktop", "export", "--db", str(db),
                 "-i", "NIFTY", "-f", fmt, "-o", out, "-q"],
                capture_output=True, text=True, env={**os.environ, "PYTHONPATH": os.getcwd()},
            )  # fmt: skip
            assert done.returncode == exitcodes.STORAGE, done.stderr
            lines = done.stderr.strip().splitlines()
            assert len(lines) == 1 and lines[0].startswith("error: cannot "), done.stderr
            assert "Traceback" not in done.stderr
            assert list(ro.iterdir()) == []


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_part_files_of_dead_exports_are_removed(db, tmp_path):
    folder = tmp_path / "exports"
    folder.mkdir()
    dead = _dead_pid()
    live = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale_file = folder / f".old.csv.{dead}.0123abcd.part"
        stale_dir = folder / f".old_dir.{dead}.89abcdef.part"
        running = folder / f".busy.csv.{live.pid}.0123abcd.part"
        foreign = [folder / ".notes.part", folder / f"report.{dead}.0123abcd.part",
                   folder / f".x.csv.{dead}.XYZ.part"]  # fmt: skip
        stale_file.write_text("half")
        stale_dir.mkdir()
        (stale_dir / "a.csv").write_text("half")
        running.write_text("busy")
        for f in foreign:
            f.write_text("not ours")
        run_export(db, CSV, folder / "new.csv")
        assert not stale_file.exists() and not stale_dir.exists()
        assert running.read_text() == "busy"
        assert all(f.read_text() == "not ours" for f in foreign)
        assert clean_stale_parts(folder) == 0
    finally:
        live.kill()
        live.wait()


@contextlib.contextmanager
def made_read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` (already filled) read-only: remount its tmpfs as root, else chmod."""
    if os.geteuid() == 0:
        subprocess.run(["mount", "-o", "remount,ro", str(folder)], check=True)
        try:
            yield
        finally:
            subprocess.run(["mount", "-o", "remount,rw", str(folder)], check=True)
        return
    folder.chmod(0o555)
    try:
        yield
    finally:
        folder.chmod(0o755)


@contextlib.contextmanager
def scratch_mount(tmp_path: Path) -> Iterator[Path]:
    folder = tmp_path / "media"
    folder.mkdir()
    if os.geteuid() != 0:
        yield folder
        return
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(folder)], capture_output=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], check=True)


def test_wal_database_on_read_only_media_exports_and_verifies(tmp_path):
    import sqlite3

    from expirytrack_desktop.store import open_database

    with scratch_mount(tmp_path) as media:
        db = build_db(media / "export.sqlite3")
        with closing(sqlite3.connect(db)) as conn:
            assert conn.execute("PRAGMA journal_mode = WAL").fetchone() == ("wal",)
        with closing(open_database(media / "app.sqlite3")):  # a real app database, WAL
            pass
        assert sorted(p.name for p in media.iterdir()) == ["app.sqlite3", "export.sqlite3"]
        with made_read_only(media):
            out = tmp_path / "x.csv"
            assert main(["export", "--db", str(db), "-i", "NIFTY", "-o", str(out), "-q"]) == 0
            assert out.read_text().count("\n") == 25  # header + 24 rows
            code = main(["verify", "--db", str(media / "app.sqlite3")])
            assert code == exitcodes.OK
            assert sorted(p.name for p in media.iterdir()) == ["app.sqlite3", "export.sqlite3"]
