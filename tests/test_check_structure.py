"""scripts/check_structure.py finds what it promises: long modules and every import cycle."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_SCRIPT = Path(__file__).resolve().parent.parent / "scripts" / "check_structure.py"
_spec = importlib.util.spec_from_file_location("check_structure", _SCRIPT)
assert _spec is not None and _spec.loader is not None
check_structure = importlib.util.module_from_spec(_spec)
sys.modules["check_structure"] = check_structure
_spec.loader.exec_module(check_structure)


def test_cycles_are_found_with_one_path_through_each() -> None:
    imports = {
        "p.a": {"p.b"},
        "p.b": {"p.c"},
        "p.c": {"p.a", "p.d"},  # a -> b -> c -> a
        "p.d": {"p.e"},
        "p.e": {"p.d"},  # d <-> e, reached from the first cycle but not part of it
        "p.f": {"p.a", "p.g"},
        "p.g": set(),
    }
    assert check_structure.import_cycles(imports) == [["p.a", "p.b", "p.c"], ["p.d", "p.e"]]


def test_no_cycle_in_a_tree_or_a_diamond() -> None:
    imports = {"a": {"b", "c"}, "b": {"d"}, "c": {"d"}, "d": set()}
    assert check_structure.import_cycles(imports) == []


def test_a_long_chain_does_not_hit_the_recursion_limit() -> None:
    n = sys.getrecursionlimit() * 2
    imports = {f"m{i}": {f"m{i + 1}"} for i in range(n)}
    imports[f"m{n}"] = {"m0"}
    (cycle,) = check_structure.import_cycles(imports)
    assert len(cycle) == n + 1 and cycle[0] == "m0"


def test_long_modules_counts_lines(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "ok.py").write_text("x = 1\n" * 600)
    (pkg / "sub" / "long.py").write_text("x = 1\n" * 601)
    assert check_structure.long_modules(pkg) == {"pkg/sub/long.py": 601}


def test_the_package_itself_is_checked() -> None:
    """The real graph is read (a cycle-free run over nothing would prove nothing)."""
    imports = check_structure.package_imports()
    assert "expirytrack_desktop.upstox.client" in imports
    assert "expirytrack_desktop.upstox.limiter" in imports["expirytrack_desktop.upstox.client"]


def test_a_top_level_module_left_out_of_the_qt_contract_is_named(tmp_path: Path) -> None:
    pkg = tmp_path / "expirytrack_desktop"
    (pkg / "ui").mkdir(parents=True)
    (pkg / "ui" / "__init__.py").write_text("")
    (pkg / "engine").mkdir()
    (pkg / "engine" / "__init__.py").write_text("")
    (pkg / "notes").mkdir()  # not a package: no __init__.py
    for name in ("__init__", "__main__", "app", "helper", "newcomer"):
        (pkg / f"{name}.py").write_text("")
    tool = {
        "check-structure": {"window_modules": ["ui", "app", "__main__"]},
        "importlinter": {
            "contracts": [
                {
                    "id": "qt-only-in-window",
                    "source_modules": ["expirytrack_desktop.engine", "expirytrack_desktop.helper"],
                }
            ]
        },
    }
    gaps = check_structure.qt_contract_gaps(tool, pkg)
    assert len(gaps) == 1 and gaps[0].startswith("expirytrack_desktop.newcomer: ")


def _load(name: str):  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(name, _SCRIPT.with_name(f"{name}.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_constraints_must_pin_every_dependency_within_its_range() -> None:
    check = _load("check_constraints")
    pinned = check.pins("# header\nhttpx==0.28.1\n    # via x\nPyYAML==6.0.2\nzz-old==1.0\n")
    assert pinned == {"httpx": "0.28.1", "pyyaml": "6.0.2", "zz-old": "1.0"}
    project = {
        "dependencies": ["httpx>=0.27,<0.29", "pyyaml", "keyring>=25"],
        "optional-dependencies": {
            "test": ["zz-old>=2", "pywin32; sys_platform == 'win32'"],
        },
    }
    assert check.gaps(project, pinned) == [
        "keyring: not pinned in constraints.txt",
        "zz-old: pinned 1.0, pyproject.toml wants >=2",
    ]
