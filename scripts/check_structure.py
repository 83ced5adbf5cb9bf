"""House rules that no linter checks: no module over 600 lines, no import cycles.

Run by .ci/run and pre-commit: ``python scripts/check_structure.py`` (exit 1 on a breach).

- Size: every ``.py`` file of the package has at most ``MAX_LINES`` lines; a longer one holds
  more than one thing and should be split by what it holds.
- Qt coverage: every top-level module but the window's (``window_modules``) is a source of the
  import contract that forbids Qt, so a new package cannot slip past it.
- Cycles: no two modules of the package import each other, directly or through others. Every
  import counts, including those under ``TYPE_CHECKING`` and those inside functions: a cycle
  hidden in a function or an annotation is still two modules that cannot be read, tested or
  moved apart. The import graph is grimp's (the one import-linter checks the layers on).

Temporary exemptions live in pyproject.toml, ``[tool.check-structure]``, each with its reason;
one that is no longer needed fails the run too, so it is removed with the fix.
"""

from __future__ import annotations

import sys
import tomllib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import grimp

PACKAGE = "expirytrack_desktop"
MAX_LINES = 600
QT_CONTRACT = "qt-only-in-window"
ROOT = Path(__file__).resolve().parent.parent


def long_modules(package_dir: Path, limit: int = MAX_LINES) -> dict[str, int]:
    """The package-relative paths of ``.py`` files over ``limit`` lines, with their length."""
    found = {}
    for path in sorted(package_dir.rglob("*.py")):
        with path.open("rb") as f:
            n = sum(1 for _ in f)
        if n > limit:
            found[path.relative_to(package_dir.parent).as_posix()] = n
    return found


def import_cycles(imports: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Each set of modules that import each other (a strongly connected component of two or
    more), as one cycle through them: ``[a, b, c]`` means a imports b, b c, and c a."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    # Tarjan's algorithm, iterative (no recursion limit on a deep import chain).
    for start in sorted(imports):
        if start in index:
            continue
        work = [(start, iter(sorted(imports.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(imports.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node:
                        break
                if len(component) > 1:
                    components.append(component)
    return sorted((_cycle_through(c, imports) for c in components), key=lambda c: c[0])


def _cycle_through(component: set[str], imports: Mapping[str, Iterable[str]]) -> list[str]:
    """One cycle inside a strongly connected component, from its first module back to it."""
    start = min(component)
    # Breadth-first from start's imports, staying inside the component, until start is reached.
    previous: dict[str, str] = {}
    frontier = [start]
    while frontier:
        following = []
        for node in frontier:
            for child in sorted(imports.get(node, ())):
                if child not in component:
                    continue
                if child == start:
                    path = [node]
                    while path[-1] != start:
                        path.append(previous[path[-1]])
                    return path[::-1]
                if child not in previous:
                    previous[child] = node
                    following.append(child)
        frontier = following
    raise AssertionError(f"no cycle in component {sorted(component)}")  # pragma: no cover


def package_imports(package: str = PACKAGE) -> dict[str, set[str]]:
    """Module -> the package's modules it imports (every import statement, as grimp reads it)."""
    graph = grimp.build_graph(package, cache_dir=None)
    return {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}


def top_level_modules(package_dir: Path) -> set[str]:
    """The names of the package's direct children: subpackages and ``.py`` modules."""
    names = {p.stem for p in package_dir.glob("*.py") if p.stem != "__init__"}
    names |= {p.name for p in package_dir.iterdir() if (p / "__init__.py").is_file()}
    return names


def qt_contract_gaps(tool: dict[str, Any], package_dir: Path) -> list[str]:
    """Top-level modules neither in the window nor among the Qt-free contract's sources."""
    window = set(tool.get("check-structure", {}).get("window_modules", []))
    contracts = tool.get("importlinter", {}).get("contracts", [])
    contract = next((c for c in contracts if c.get("id") == QT_CONTRACT), None)
    if contract is None:
        return [f"pyproject.toml: no import contract with id {QT_CONTRACT!r}"]
    sources = {m.removeprefix(PACKAGE + ".") for m in contract.get("source_modules", [])}
    return [
        f"{PACKAGE}.{name}: not in the {QT_CONTRACT!r} import contract's source_modules "
        "(every module outside the window must be Qt-free)"
        for name in sorted(top_level_modules(package_dir) - window - sources)
    ]


def main() -> int:
    with (ROOT / "pyproject.toml").open("rb") as f:
        tool = tomllib.load(f).get("tool", {})
    config = tool.get("check-structure", {})
    exempt = {
        "long_modules": list(config.get("long_modules", [])),
        "cycles_in": list(config.get("cycles_in", [])),
    }
    problems = qt_contract_gaps(tool, ROOT / PACKAGE)

    long = long_modules(ROOT / PACKAGE)
    for path, n in long.items():
        if path not in exempt["long_modules"]:
            problems.append(f"{path}: {n} lines (at most {MAX_LINES}; split it by what it holds)")
    for path in exempt["long_modules"]:
        if path not in long:
            problems.append(f"{path}: no longer over {MAX_LINES} lines; remove its exemption")

    cycles = import_cycles(package_imports())
    used = set()
    for cycle in cycles:
        prefix = next((p for p in exempt["cycles_in"] if all(m.startswith(p) for m in cycle)), None)
        if prefix is not None:
            used.add(prefix)
            continue
        problems.append("import cycle: " + " -> ".join([*cycle, cycle[0]]))
    for prefix in exempt["cycles_in"]:
        if prefix not in used:
            problems.append(f"{prefix}: no import cycle left; remove its exemption")

    for line in problems:
        print(line)
    checked = f"{MAX_LINES}-line limit, import cycles, Qt contract coverage"
    if problems:
        print(f"check_structure: {len(problems)} problem(s) ({checked})")
        return 1
    print(f"check_structure: OK ({checked})")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT))  # the checkout's package, whatever is installed
    sys.exit(main())
