"""The entry point as a user (and the packaging smoke test) runs it: a fresh process."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from expirytrack_desktop.app import PAGES, build_parser


def run_app(tmp_path, *args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", EXPIRYTRACK_HOME=str(tmp_path / "home"))
    return subprocess.run(
        [sys.executable, "-m", "expirytrack_desktop", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_flags():
    args = build_parser().parse_args(
        ["--demo", "--db", "x.sqlite3", "--api-base", "http://127.0.0.1:9", "--page", "jobs"]
    )
    assert args.demo and args.db == "x.sqlite3" and args.api_base == "http://127.0.0.1:9"
    assert set(PAGES) >= {"main", "wizard-1", "wizard-4", "jobs", "dashboard", "export-4"}
    with pytest.raises(SystemExit):
        build_parser().parse_args(["--page", "nope"])


def test_smoke_test_exits_0_and_creates_the_database(tmp_path):
    db = tmp_path / "own.sqlite3"
    r = run_app(tmp_path, "--smoke-test", "--db", str(db))
    assert r.returncode == 0, r.stderr
    assert db.exists()


def test_smoke_test_fails_when_the_database_cannot_be_opened(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    r = run_app(tmp_path, "--smoke-test", "--db", str(blocker / "x.sqlite3"))
    assert r.returncode == 1
    assert "database" in r.stderr.lower()


def test_screenshot_of_the_main_window(tmp_path):
    out = tmp_path / "main.png"
    r = run_app(tmp_path, "--screenshot", str(out), "--db", str(tmp_path / "db.sqlite3"))
    assert r.returncode == 0, r.stderr
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
