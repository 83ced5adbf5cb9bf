"""`expirytrack status` as a user runs it: a new process each time, wall and CPU, median of N.

    .venv/bin/python bench/bench_status.py --db bench/out/scale_100m.sqlite3 [--tree DIR]...
        [--runs 7] [--cold] [--no-pyc]

Each ``--tree`` is a source tree, run from its folder with ``PYTHONPATH=DIR`` (give two, e.g.
a checkout of the commit before and this one, to compare them side by side; runs alternate
between trees so both see the same machine load). ``--cold`` drops the database file's pages
from the OS cache before every run (``posix_fadvise(DONTNEED)``, no root needed), so SQLite
reads it from disk as after a reboot. By default each tree's modules are compiled to
``__pycache__`` first (an installed package ships them); ``--no-pyc`` runs without (every
import compiles its source). The database is opened by `status` as usual; run it on a copy if
the file must stay unchanged.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path


def drop_cache(path: Path) -> None:
    for p in (path, path.with_name(path.name + "-wal")):
        if p.exists() and hasattr(os, "posix_fadvise"):
            fd = os.open(p, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def one_run(tree: Path, db: Path, pyc: bool) -> tuple[float, float, int]:
    """(wall seconds, CPU seconds, lines printed) of one `status` process."""
    env = dict(os.environ, PYTHONPATH=str(tree))
    if pyc:
        env.pop("PYTHONDONTWRITEBYTECODE", None)
    else:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    cmd = [sys.executable, "-m", "expirytrack_desktop", "status", "--db", str(db.resolve())]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    out = subprocess.run(cmd, env=env, cwd=tree, capture_output=True, text=True, check=True).stdout
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, out.count("\n")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--db", type=Path, required=True)
    ap.add_argument("--tree", type=Path, action="append", help="source tree (repeatable)")
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--cold", action="store_true", help="drop the file from the OS cache first")
    ap.add_argument("--no-pyc", action="store_true", help="no compiled modules")
    args = ap.parse_args()
    trees = [t.resolve() for t in (args.tree or [Path(__file__).resolve().parents[1]])]
    for tree in trees:
        pycache = list((tree / "expirytrack_desktop").rglob("__pycache__"))
        if args.no_pyc:
            for d in pycache:
                for f in d.glob("*.pyc"):
                    f.unlink()
        else:
            subprocess.run(
                [sys.executable, "-m", "compileall", "-q", str(tree / "expirytrack_desktop")],
                check=True,
            )
    results: dict[Path, list[tuple[float, float, int]]] = {t: [] for t in trees}
    one_run(trees[0], args.db, not args.no_pyc)  # warm the interpreter's own files
    for _ in range(args.runs):
        for tree in trees:
            if args.cold:
                drop_cache(args.db)
            results[tree].append(one_run(tree, args.db, not args.no_pyc))
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    mode = f"{'cold' if args.cold else 'warm'} file, {'no .pyc' if args.no_pyc else '.pyc'}"
    print(f"status on {args.db} ({mode}; median of {args.runs}; load average {load:.1f})")
    for tree, runs in results.items():
        walls = [r[0] for r in runs]
        cpus = [r[1] for r in runs]
        print(
            f"  {tree}: {statistics.median(walls):.2f} s wall (min {min(walls):.2f}), "
            f"{statistics.median(cpus):.2f} s CPU, {runs[0][2]} lines"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
