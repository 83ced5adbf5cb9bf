"""The rate-limit ledger file when it cannot be used: garbage bytes are moved
aside and rebuilt conservatively; a folder, an unwritable file and a full disk (a real, tiny
tmpfs when the tests run as root) stop with one line naming the file, exit code 5."""

from __future__ import annotations

import logging
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path

import pytest

from expirytrack_desktop.upstox.ledger import LedgerError, SqliteLedger

WINDOWS = ((50, 1.0), (500, 60.0), (2000, 1800.0))


def _mount(target: Path, options: str) -> bool:
    if sys.platform != "linux" or os.geteuid() != 0:
        return False
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(target)], capture_output=True
    )
    return done.returncode == 0


@pytest.fixture
def tiny_fs(tmp_path: Path) -> Iterator[Path]:
    """A real 256 kB file system (tmpfs): root only, else the test is skipped."""
    target = tmp_path / "tiny"
    if not _mount(target, "size=256k,mode=0777"):
        pytest.skip("needs root to mount a tiny tmpfs")
    try:
        yield target
    finally:
        subprocess.run(["umount", "-l", str(target)], check=True)


def fill(fs: Path) -> None:
    """Take every free byte of the file system."""
    fd = os.open(fs / "filler", os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        while True:
            os.write(fd, b"\0" * 512)
    except OSError:
        pass
    finally:
        os.close(fd)


def garbage(path: Path, age_s: float = 0.0) -> bytes:
    data = bytes(range(256)) * 40
    path.write_bytes(data)
    if age_s:
        t = time.time() - age_s
        os.utime(path, (t, t))
    return data


def test_garbage_is_moved_aside_and_rebuilt_assuming_the_budget_spent(tmp_path, caplog):
    path = tmp_path / "ratelimit.sqlite3"
    data = garbage(path)
    with caplog.at_level(logging.WARNING, "expirytrack_desktop.upstox.ledger"):
        led = SqliteLedger(path)
    with closing(led):
        (record,) = caplog.records
        assert str(path) in record.getMessage() and "damaged" in record.getMessage()
        assert "ratelimit.sqlite3.damaged" in record.getMessage()
        assert (tmp_path / "ratelimit.sqlite3.damaged").read_bytes() == data  # kept
        # Its sends are unknown and it changed just now: every window counts as full.
        refused = led.reserve(time.time(), WINDOWS)
        assert refused.ticket is None and refused.wait > 1700
        assert led.counts(time.time(), [1.0, 60.0, 1800.0]) == [2000, 2000, 2000]
    # Another process opening the rebuilt file sees the same (the assumption is shared).
    with closing(SqliteLedger(path)) as again:
        assert again.reserve(time.time(), WINDOWS).ticket is None


def test_old_garbage_costs_no_budget(tmp_path, caplog):
    """Damaged longer ago than any window: nothing in it can still count."""
    path = tmp_path / "ratelimit.sqlite3"
    garbage(path, age_s=3 * 3600)
    with caplog.at_level(logging.WARNING):
        led = SqliteLedger(path)
    with closing(led):
        assert "counts as used" not in caplog.text
        assert led.reserve(time.time(), WINDOWS).ticket is not None


def test_a_damaged_write_ahead_log_is_not_carried_into_the_new_ledger(tmp_path):
    path = tmp_path / "l.sqlite3"
    garbage(path, age_s=3 * 3600)
    Path(f"{path}-wal").write_bytes(b"not a wal either" * 100)
    with closing(SqliteLedger(path)) as led:
        assert led.reserve(time.time(), WINDOWS).ticket is not None
    with closing(sqlite3.connect(path)) as conn, conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM sent_requests").fetchone()[0] == 1


def test_a_foreign_sqlite_file_is_not_used(tmp_path):
    """A valid SQLite file with another table of that name is refused, never altered."""
    path = tmp_path / "l.sqlite3"
    with closing(sqlite3.connect(path)) as conn, conn:
        conn.execute("CREATE TABLE sent_requests (name TEXT)")
        conn.execute("INSERT INTO sent_requests VALUES ('mine')")
    with pytest.raises(LedgerError) as err:
        SqliteLedger(path)
    assert str(path) in str(err.value) and "remove the file" in str(err.value)
    with closing(sqlite3.connect(path)) as conn, conn:
        assert conn.execute("SELECT name FROM sent_requests").fetchall() == [("mine",)]


def test_a_folder_at_the_path(tmp_path):
    path = tmp_path / "ratelimit.sqlite3"
    (path / "inside").mkdir(parents=True)
    with pytest.raises(LedgerError) as err:
        SqliteLedger(path)
    assert str(err.value) == (
        f"the rate-limit ledger {path} is a folder, not a file: move it away "
        "(the file is recreated)"
    )
    assert (path / "inside").is_dir()


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[Path]:
    """A folder this process cannot write: a read-only tmpfs as root, chmod otherwise."""
    target = tmp_path / "ro"
    if os.name == "posix" and os.geteuid() == 0:
        if not _mount(target, "size=256k,mode=0777"):
            pytest.skip("needs permission to mount a tmpfs")
        try:
            SqliteLedger(target / "ratelimit.sqlite3").close()
            subprocess.run(["mount", "-o", "remount,ro", str(target)], check=True)
            yield target
        finally:
            subprocess.run(["umount", "-l", str(target)], check=True)
    else:
        target.mkdir()
        SqliteLedger(target / "ratelimit.sqlite3").close()
        (target / "ratelimit.sqlite3").chmod(0o444)
        target.chmod(0o555)
        try:
            yield target
        finally:
            target.chmod(0o755)


def test_unwritable(read_only_dir):
    path = read_only_dir / "ratelimit.sqlite3"
    with pytest.raises(LedgerError) as err:
        SqliteLedger(path)
    assert f"the rate-limit ledger {path} cannot be written" in str(err.value)


def test_full_disk_at_start(tiny_fs):
    path = tiny_fs / "ratelimit.sqlite3"
    SqliteLedger(path).close()
    fill(tiny_fs)
    with pytest.raises(LedgerError) as err:
        SqliteLedger(path)
    assert str(err.value) == (
        f"the disk holding the rate-limit ledger {path} is full: free some space, then run again"
    )


def test_disk_fills_while_in_use(tiny_fs):
    """The real error, not "cannot rollback - no transaction is active"; no half-written
    send: what was granted before is still there."""
    path = tiny_fs / "ratelimit.sqlite3"
    with closing(SqliteLedger(path)) as led:
        fill(tiny_fs)
        granted = 0
        with pytest.raises(LedgerError) as err:
            for i in range(100000):
                r = led.reserve(1000.0 + i, ((10**9, 1.0),))
                assert r.ticket is not None
                granted += 1
    assert "is full: free some space" in str(err.value) and str(path) in str(err.value)
    (tiny_fs / "filler").unlink()
    with closing(sqlite3.connect(path)) as conn, conn:
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert conn.execute("SELECT COUNT(*) FROM sent_requests").fetchone()[0] == granted


def test_page_limit_full_while_in_use(tmp_path):
    """The same path without root: SQLite's own page limit gives the same SQLITE_FULL."""
    path = tmp_path / "l.sqlite3"
    with closing(SqliteLedger(path)) as led:
        (pages,) = led._conn.execute("PRAGMA page_count").fetchone()
        led._conn.execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(LedgerError) as err:
            for i in range(100000):
                led.reserve(1000.0 + i, ((10**9, 1.0),))
        assert "is full" in str(err.value) and "cannot rollback" not in str(err.value)
        led.complete(1, 2000.0)  # recording an answer never raises (it stays "in flight")


# ---- the real command ------------------------------------------------------------------------


def run_cli(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env.update(EXPIRYTRACK_HOME=str(home), PYTHONPATH=os.getcwd())
    return subprocess.run(
        [sys.executable, "-m", "expirytrack_desktop.cli.main", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def estimate(home: Path, db: Path) -> subprocess.CompletedProcess[str]:
    return run_cli(
        home,
        "collect",
        "--demo",
        "-i",
        "NIFTY",
        "--all-expiries",
        "--estimate-only",
        "--db",
        str(db),
    )


def test_cli_folder_at_the_ledger_path_exits_5_with_one_line(tmp_path):
    ledger = tmp_path / "home" / "data" / "ratelimit-demo.sqlite3"
    ledger.mkdir(parents=True)
    done = estimate(tmp_path / "home", tmp_path / "d.sqlite3")
    assert done.returncode == 5
    assert done.stderr.splitlines() == [
        f"error: the rate-limit ledger {ledger} is a folder, not a file: move it away "
        "(the file is recreated)"
    ]


def test_cli_damaged_ledger_is_rebuilt_and_the_command_works(tmp_path):
    ledger = tmp_path / "home" / "data" / "ratelimit-demo.sqlite3"
    ledger.parent.mkdir(parents=True)
    garbage(ledger, age_s=3 * 3600)
    done = estimate(tmp_path / "home", tmp_path / "d.sqlite3")
    assert done.returncode == 0, done.stderr
    (warning,) = done.stderr.splitlines()
    assert "was damaged" in warning and str(ledger) in warning
    assert "Plan:" in done.stdout


def test_cli_full_disk_exits_5_with_one_line(tiny_fs, tmp_path):
    home = tiny_fs / "home"
    (home / "data").mkdir(parents=True)
    SqliteLedger(home / "data" / "ratelimit-demo.sqlite3").close()
    fill(tiny_fs)
    done = estimate(home, tmp_path / "d.sqlite3")
    assert done.returncode == 5, done.stderr
    (line,) = done.stderr.splitlines()
    assert line.startswith("error: the disk holding the rate-limit ledger") and "full" in line


def test_cli_disk_fills_mid_run_stops_with_exit_5_and_keeps_what_was_stored(tmp_path):
    """The ledger's disk fills while candles are being fetched: the run stops (storage), every
    window stored so far is whole, and the message names the ledger file."""
    fs = tmp_path / "fs"
    if not _mount(fs, "size=1m,mode=0777"):
        pytest.skip("needs root to mount a tiny tmpfs")
    try:
        ledger = fs / "ratelimit-demo.sqlite3"
        SqliteLedger(ledger).close()
        home = tmp_path / "home"
        (home / "data").mkdir(parents=True)
        (home / "data" / "ratelimit-demo.sqlite3").symlink_to(ledger)
        fill(fs)
        (fs / "filler").unlink()
        free = os.statvfs(fs).f_bavail * os.statvfs(fs).f_frsize
        with open(fs / "filler", "wb") as f:  # leave ~200 kB: room for a dozen requests
            f.write(b"\0" * max(0, free - 200 * 1024))
        from expirytrack_desktop.runtime import demo_app

        market = demo_app().market
        expiry = market.expiries("NSE_INDEX|Nifty 50")[-1].isoformat()
        db = tmp_path / "d.sqlite3"
        args = ["collect", "--demo", "-i", "NIFTY", "-e", expiry, "--months", "1"]
        done = run_cli(home, *args, "--db", str(db))
        assert done.returncode == 5, done.stderr
        assert "Traceback" not in done.stderr
        errors = [line for line in done.stderr.splitlines() if line.startswith("error:")]
        assert errors == [
            f"error: the disk holding the rate-limit ledger {ledger} is full: "
            "free some space, then run again"
        ]
        with closing(sqlite3.connect(db)) as conn, conn:
            assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            stored = conn.execute("SELECT count(*) FROM fetch_window").fetchone()[0]
            windows = "SELECT contract_id, sum(candles) FROM fetch_window GROUP BY 1"
            for cid, n in conn.execute(windows).fetchall():
                count = "SELECT count(*) FROM candle WHERE contract_id = ?"
                assert conn.execute(count, (cid,)).fetchone()[0] == n  # whole windows only
        assert stored >= 1, done.stderr  # it failed mid-run, after storing windows
    finally:
        subprocess.run(["umount", "-l", str(fs)], check=True)


def test_processes_starting_at_once_on_a_fresh_ledger_all_open_it(tmp_path):
    """Six openers at once on a new file, forty times: SQLite answers "locked" at once (no
    busy handler) to some of them while another sets the file up; each must wait its turn.
    Threads with their own connections stand for processes (the locks are the file's)."""
    import threading

    failed: list[str] = []
    for round_ in range(40):
        path = tmp_path / f"r{round_}" / "ratelimit.sqlite3"
        start = threading.Barrier(6)

        def open_it(path=path, start=start) -> None:
            start.wait()
            try:
                SqliteLedger(path).close()
            except LedgerError as exc:
                failed.append(str(exc))

        threads = [threading.Thread(target=open_it) for _ in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert failed == []
