"""The incremental Parquet mirror: exact after every run, only changed partitions rewritten."""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import pytest

from expirytrack_desktop.cli.main import main
from expirytrack_desktop.export.api import ExportOptions
from expirytrack_desktop.export.mirror import STATE_FILE, update_mirror
from tests._export_db import CONTRACTS, build_db, stored_candles

duckdb = pytest.importorskip("duckdb")

ALL = ("NSE_INDEX|Nifty 50", "BSE_INDEX|SNSX50", "NSE_EQ|INE205A01025")
SYMBOL = {c.id: c.expected_symbol for c in CONTRACTS}
NIFTY_24 = "underlying=NIFTY/expiry=2025-04-24"


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return build_db(tmp_path / "store.sqlite3")


def db_rows(db: Path) -> list[tuple]:
    return stored_candles(db)


def mirror_rows(folder: Path) -> list[tuple]:
    with closing(duckdb.connect()) as con:
        return sorted(
            con.execute(
                "SELECT openalgo_symbol, epoch_ms(timestamp) // 1000, open, high, low, close,"
                " volume, oi FROM read_parquet(?, hive_partitioning = true)",
                [str(folder / "*" / "*" / "*.parquet")],
            ).fetchall()
        )


def inodes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder).parent): p.stat().st_ino for p in folder.rglob("*.parquet")}


def test_mirror_is_exact_and_incremental(db, tmp_path):
    folder = tmp_path / "mirror"
    first = update_mirror(db, ExportOptions(ALL), folder)
    assert len(first.written) == 4 and first.unchanged == 0 and first.rows == 32
    assert mirror_rows(folder) == db_rows(db)
    before = inodes(folder)
    again = update_mirror(db, ExportOptions(ALL), folder)
    assert again.written == [] and again.unchanged == 4 and inodes(folder) == before
    # a new candle for one contract, a corrected price in another expiry's contract
    with closing(sqlite3.connect(db)) as conn, conn:
        # paise, open/high/low relative to the close: O 5 H 6 L 4 C 5.5
        conn.execute("INSERT INTO candle VALUES (101, 1, 1745482500, 550, -50, 50, -150, 10, 20)")
    third = update_mirror(db, ExportOptions(ALL), folder)
    assert third.written == [NIFTY_24] and third.unchanged == 3
    after = inodes(folder)
    assert after[NIFTY_24] != before[NIFTY_24]
    assert {k: v for k, v in after.items() if k != NIFTY_24} == {
        k: v for k, v in before.items() if k != NIFTY_24
    }
    with closing(sqlite3.connect(db)) as conn, conn:
        conn.execute("UPDATE candle SET close = close + 5 WHERE contract_id = 106")  # +5 paise
    fourth = update_mirror(db, ExportOptions(ALL), folder)
    assert fourth.written == ["underlying=VEDL/expiry=2024-04-25"]
    assert mirror_rows(folder) == db_rows(db)
    assert (folder / STATE_FILE).is_file()
    assert [p.name for p in folder.rglob(".*")] == []  # no temporary file left


def test_expiry_no_longer_selected_is_removed_others_kept(db, tmp_path):
    from datetime import date

    folder = tmp_path / "mirror"
    update_mirror(db, ExportOptions(ALL), folder)
    only = ExportOptions(ALL[:1], expiries=(date(2025, 4, 24),))
    r = update_mirror(db, only, folder)
    assert r.removed == ["underlying=NIFTY/expiry=2025-04-17"] and r.written == []
    assert sorted(inodes(folder)) == [
        "underlying=NIFTY/expiry=2025-04-24", "underlying=SENSEX50/expiry=2025-04-24",
        "underlying=VEDL/expiry=2024-04-25",
    ]  # fmt: skip


def test_cli_mirror(db, tmp_path, capsys):
    folder = tmp_path / "m"
    assert main(["export", "--db", str(db), "-i", "NIFTY", "--mirror", str(folder), "-q"]) == 0
    assert "2 partitions written (24 rows), 0 unchanged" in capsys.readouterr().out
    assert main(["export", "--db", str(db), "-i", "NIFTY", "--mirror", str(folder), "-q"]) == 0
    assert "0 partitions written (0 rows), 2 unchanged" in capsys.readouterr().out
    # a damaged state: exit 2 naming the way out, which works (every partition written again)
    (folder / STATE_FILE).write_text("{bad")
    assert main(["export", "--db", str(db), "-i", "NIFTY", "--mirror", str(folder)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.rstrip().endswith("write every partition again")
    (folder / STATE_FILE).unlink()
    assert main(["export", "--db", str(db), "-i", "NIFTY", "--mirror", str(folder), "-q"]) == 0
    assert "2 partitions written (24 rows), 0 unchanged" in capsys.readouterr().out


def test_a_failed_partition_keeps_the_finished_ones_and_the_rerun_does_the_rest(
    db, tmp_path, monkeypatch
):
    """All partitions come from one read (export/parts.py); each is renamed into place and
    recorded as it completes, so a disk full on the third keeps the first two."""
    import errno

    from expirytrack_desktop.export import mirror
    from expirytrack_desktop.export.api import DiskFullError

    opened: list[Path] = []
    real = mirror._open_new

    def full_on_third(path: Path):
        opened.append(path)
        if len(opened) == 3:
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        return real(path)

    folder = tmp_path / "mirror"
    monkeypatch.setattr(mirror, "_open_new", full_on_third)
    with pytest.raises(DiskFullError):
        update_mirror(db, ExportOptions(ALL), folder)
    done = sorted(str(p.relative_to(folder).parent) for p in folder.rglob("*.parquet"))
    assert len(done) == 2 and [p.name for p in folder.rglob(".*")] == []
    monkeypatch.setattr(mirror, "_open_new", real)
    rerun = update_mirror(db, ExportOptions(ALL), folder)
    assert rerun.unchanged == 2 and len(rerun.written) == 2
    assert sorted(rerun.written + done) == sorted(str(p) for p in inodes(folder))
    assert mirror_rows(folder) == db_rows(db)


def test_each_partition_is_on_disk_before_it_is_renamed_and_recorded(db, tmp_path, monkeypatch):
    """A power cut after an update must not leave a partition that the state calls current
    but whose content never reached the disk: each file is fsynced before its rename."""
    import os

    from expirytrack_desktop.export import mirror

    synced: set[tuple[int, int]] = set()
    renamed: list[Path] = []
    real_fsync, real_replace = os.fsync, mirror.fs_replace

    def fsync(fd: int) -> None:
        st = os.fstat(fd)
        synced.add((st.st_dev, st.st_ino))
        real_fsync(fd)

    def replace(src: Path, dst: Path) -> None:
        st = os.stat(src)
        assert (st.st_dev, st.st_ino) in synced, f"{dst} renamed before its content was synced"
        renamed.append(dst)
        real_replace(src, dst)

    monkeypatch.setattr(os, "fsync", fsync)
    monkeypatch.setattr(mirror, "fs_replace", replace)
    folder = tmp_path / "mirror"
    result = update_mirror(db, ExportOptions(ALL), folder)
    assert result.written and len(renamed) == len(result.written)
    assert mirror_rows(folder) == db_rows(db)
