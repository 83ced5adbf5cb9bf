"""The hosted-CI workflow (.github/workflows/build.yml) names files of this repository: they
must exist, or the Windows and macOS builds break where nobody here sees it. Its syntax is
checked by scripts/check_workflows.sh (actionlint)."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "build.yml"


def test_every_file_the_workflow_names_exists():
    text = WORKFLOW.read_text(encoding="utf-8")
    named = set(re.findall(r"\b((?:tests|build_spec|scripts)/[\w./-]+\.(?:py|sh))\b", text))
    assert {"build_spec/build.sh", "build_spec/smoke.sh"} <= named
    assert any(n.startswith("tests/test_platform_branches") for n in named)
    missing = sorted(n for n in named if not (ROOT / n).is_file())
    assert missing == []


def test_it_builds_on_the_three_systems():
    text = WORKFLOW.read_text(encoding="utf-8")
    (matrix,) = re.findall(r"os: \[([^\]]+)\]", text)
    assert sorted(o.strip() for o in matrix.split(",")) == [
        "macos-latest",
        "ubuntu-latest",
        "windows-latest",
    ]
