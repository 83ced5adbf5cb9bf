"""constraints.txt still covers pyproject.toml: every dependency (extras included) is pinned there,
at a version pyproject.toml allows. Offline and instant, so it runs with the other house rules;
a dependency added without `bash scripts/update-constraints.sh` fails here instead of being
installed unpinned.

Run by scripts/check.sh: ``python scripts/check_constraints.py`` (exit 1 on a gap).
"""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([^\s;#]+)")


def pins(text: str) -> dict[str, str]:
    """``name -> version`` for each ``name==version`` line (names canonicalised)."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        m = _PIN.match(line.strip())
        if m:
            found[canonicalize_name(m.group(1))] = m.group(2)
    return found


def gaps(project: dict[str, Any], pinned: dict[str, str]) -> list[str]:
    """What pyproject.toml's ``[project]`` requires that the pins do not satisfy, one line each."""
    specs = list(project.get("dependencies", []))
    for reqs in project.get("optional-dependencies", {}).values():
        specs += reqs
    problems = []
    for spec in specs:
        req = Requirement(spec)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue  # not for this platform (the pins are for CI's)
        name = canonicalize_name(req.name)
        version = pinned.get(name)
        if version is None:
            problems.append(f"{req.name}: not pinned in constraints.txt")
        elif not req.specifier.contains(version, prereleases=True):
            problems.append(f"{req.name}: pinned {version}, pyproject.toml wants {req.specifier}")
    return sorted(set(problems))


def main() -> int:
    with (ROOT / "pyproject.toml").open("rb") as f:
        project = tomllib.load(f)["project"]
    problems = gaps(project, pins((ROOT / "constraints.txt").read_text(encoding="utf-8")))
    for line in problems:
        print(line)
    if problems:
        print("check_constraints: run `bash scripts/update-constraints.sh` and commit the file")
        return 1
    print("check_constraints: OK (constraints.txt pins every dependency of pyproject.toml)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
