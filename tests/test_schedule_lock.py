"""One run of a schedule at a time, proved with real processes: of several started together
exactly one holds the lock; a lock whose holder was killed is free at once; a holder hung
past the run limit is stopped and its lock taken over; a run that stalls stops itself."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from expirytrack_desktop.schedule import AlreadyRunning, RunLock
from expirytrack_desktop.schedule.runner import Watchdog

pytestmark = pytest.mark.skipif(sys.platform.startswith("win"), reason="POSIX signals")

HOLDER = """
import signal, sys
from pathlib import Path
from expirytrack_desktop.schedule import AlreadyRunning, RunLock
if sys.argv[2] == "ignore-term":
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
try:
    with RunLock(Path(sys.argv[1]), stale_after=3600):
        print("got", flush=True)
        sys.stdin.read()  # hold it until the test closes stdin
except AlreadyRunning as exc:
    print("busy", exc, flush=True)
"""


def start_holder(lock: Path, mode: str = "plain") -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )


def first_line(p: subprocess.Popen[str]) -> str:
    assert p.stdout is not None
    return p.stdout.readline().strip()


def finish(p: subprocess.Popen[str]) -> None:
    """Let the holder go (or reap it) and close its pipes."""
    assert p.stdin is not None and p.stdout is not None
    with contextlib.suppress(BrokenPipeError):  # it was killed
        p.stdin.close()
    p.wait(timeout=60)
    p.stdout.close()


@pytest.fixture
def lock_path(tmp_path):
    return tmp_path / "schedules" / "nifty.lock"


@pytest.mark.parametrize("left_by_a_killed_run", [False, True])
def test_of_four_processes_started_together_exactly_one_holds_it(lock_path, left_by_a_killed_run):
    if left_by_a_killed_run:  # the takeover of a dead run's lock is where two could both win
        dead = start_holder(lock_path)
        assert first_line(dead) == "got"
        dead.kill()
        finish(dead)
    procs = [start_holder(lock_path) for _ in range(4)]
    try:
        lines = [first_line(p) for p in procs]  # every one has tried before any lets go
    finally:
        for p in procs:
            finish(p)
    assert sorted(line.split()[0] for line in lines) == ["busy", "busy", "busy", "got"]
    holder_pid = procs[[line.split()[0] for line in lines].index("got")].pid
    for line in lines:  # a loser names the winner, or came before it wrote its note
        if line.startswith("busy"):
            assert f"pid {holder_pid} " in line or "just started" in line, line


def test_a_live_holder_keeps_it_and_is_named(lock_path):
    p = start_holder(lock_path)
    try:
        assert first_line(p) == "got"
        busy = rf"already running \(pid {p.pid} on "
        with pytest.raises(AlreadyRunning, match=busy), RunLock(lock_path, stale_after=3600):
            pass
    finally:
        finish(p)
    with RunLock(lock_path, stale_after=3600) as lock:  # released on exit: free again
        assert lock.previous is None and lock.took_over is None


def test_a_lock_left_by_a_killed_process_is_taken_at_once(lock_path):
    p = start_holder(lock_path)
    assert first_line(p) == "got"
    p.kill()
    p.wait(timeout=60)
    assert lock_path.exists()  # the file stays; the OS lock went with the process
    with RunLock(lock_path, stale_after=3600) as lock:
        assert lock.previous is not None and lock.previous.pid == p.pid
        assert lock.took_over is None
    finish(p)


@pytest.mark.parametrize("mode", ["plain", "ignore-term"])
def test_a_holder_hung_past_the_limit_is_stopped_and_taken_over(lock_path, mode):
    p = start_holder(lock_path, mode)
    try:
        assert first_line(p) == "got"
        # stale_after=0: the holder has run longer than any run may; grace bounds each wait
        with RunLock(lock_path, stale_after=0, grace=5) as lock:
            assert lock.took_over is not None and lock.took_over.pid == p.pid
            assert p.wait(timeout=60) == (-signal.SIGTERM if mode == "plain" else -signal.SIGKILL)
    finally:
        finish(p)


def test_nobody_is_stopped_when_the_note_is_not_the_holders(lock_path):
    p = start_holder(lock_path)
    stopped: list[int] = []
    try:
        assert first_line(p) == "got"
        # the note names a process that is gone: the holder must be someone who has not
        # written its note yet, so it is not stalled and nothing is killed
        with (
            pytest.raises(AlreadyRunning),
            RunLock(
                lock_path,
                stale_after=0,
                pid_alive=lambda _pid: False,
                stop=lambda pid, wait: stopped.append(pid),
            ),
        ):
            pass
        assert p.poll() is None and stopped == []
    finally:
        finish(p)


def test_watchdog_fires_unless_cancelled():
    fired = threading.Event()
    with Watchdog(0.01, fired.set):
        assert fired.wait(timeout=60)
    quiet = threading.Event()
    dog = Watchdog(3600, quiet.set)
    with dog:
        pass
    dog._timer.join(timeout=60)
    assert not dog._timer.is_alive() and not quiet.is_set()
