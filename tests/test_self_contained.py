"""The repository speaks for itself: no tracked file points at one machine's folders or at
notes kept outside the repository (CONTRIBUTING.md, "House rules")."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(
    r"/work/(?:main|shared|wt)\b"  # one machine's checkout, notes and worktrees
    r"|\.\./shared/"  # the notes folder beside a checkout
    r"|\b(?:qt-notes|openalgo-historify)\.md\b"  # notes that live there
    r"|\bissues (?:show|note|resolved)\b"  # a task tracker's commands
)


def tracked_text_files() -> list[Path]:
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True, timeout=60
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout")
    files = []
    for name in out.decode("utf-8", "surrogateescape").split("\0"):
        path = ROOT / name
        if name and path.is_file() and path.suffix not in {".png", ".ico", ".icns", ".svg"}:
            files.append(path)
    return files


def test_no_file_points_outside_the_repository():
    me = Path(__file__).resolve()
    found = []
    for path in tracked_text_files():
        if path.resolve() == me:
            continue
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        for number, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line):
                found.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()[:120]}")
    assert found == []


def test_the_pattern_catches_what_it_is_for():
    for bad in ("see /work/shared/DESIGN.md", "../shared/upstox-api.md", "run `issues show 3`",
                "/work/main/.venv/bin/python", "qt-notes.md"):  # fmt: skip
        assert OUTSIDE.search(bad), bad
    for fine in ("docs/upstox-api.md", "shared by every process", "/workspace/x"):
        assert not OUTSIDE.search(fine), fine
