"""Size and start-up time of the frozen (PyInstaller onedir) app.

    .venv/bin/python bench/bench_packaging.py [--build] [--runs 7]

Builds with build_spec/build.sh when the bundle is missing (or with --build, timing the
build), then prints:
- the bundle's size (``du`` of the onedir) and its largest parts;
- wall time of ``expirytrack-desktop --smoke-test`` offscreen (start, show the main window,
  quit): "first run" right after the build, "cold" with the bundle's files evicted from the
  page cache before each run (posix_fadvise DONTNEED on every file: dropping all caches needs
  root; shared system libraries stay cached), and "warm" (files cached), medians of --runs;
- the same for the unfrozen app (``python -m expirytrack_desktop --smoke-test``) and for two
  CLI starts (``--version``; ``status`` on an empty database), for comparison.
Each frozen process runs with its own temporary home and app folders.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BUNDLE = ROOT / "build" / "dist" / "expirytrack"
EXE = ".exe" if sys.platform == "win32" else ""
MIB = 2**20


def du(path: Path) -> int:
    """Bytes on disk (allocated blocks, symlinks not followed), like ``du -s``."""
    total = 0
    for dirpath, dirnames, filenames in os.walk(path):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            total += st.st_blocks * 512 if hasattr(st, "st_blocks") else st.st_size
    return total


def evict(path: Path) -> None:
    """Drop the page cache of every file under ``path`` (Linux; best effort elsewhere)."""
    if not hasattr(os, "posix_fadvise"):
        return
    for dirpath, _, filenames in os.walk(path):
        for name in filenames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                continue
            fd = os.open(p, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def env_for(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPIRYTRACK_")}
    env.update(
        HOME=str(home),
        XDG_DATA_HOME=str(home / "share"),
        XDG_CONFIG_HOME=str(home / "config"),
        XDG_CACHE_HOME=str(home / "cache"),
        EXPIRYTRACK_HOME=str(home / "expirytrack"),
        QT_QPA_PLATFORM="offscreen",
    )
    return env


def timed(cmd: list[str], env: dict[str, str]) -> float:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{cmd} -> {proc.returncode}\n{proc.stdout}\n{proc.stderr}")
    return elapsed


def series(cmd: list[str], env: dict[str, str], runs: int, cold: bool = False) -> list[float]:
    if not cold:
        timed(cmd, env)  # warm-up
    out: list[float] = []
    for _ in range(runs):
        if cold:
            evict(BUNDLE)
        out.append(timed(cmd, env))
    return out


def interleaved(cmds: list[list[str]], env: dict[str, str], runs: int) -> list[list[float]]:
    """Warm runs of several commands taken in turn, so background load hits them alike."""
    for cmd in cmds:
        timed(cmd, env)  # warm-up
    out: list[list[float]] = [[] for _ in cmds]
    for _ in range(runs):
        for i, cmd in enumerate(cmds):
            out[i].append(timed(cmd, env))
    return out


def fmt(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.2f} s "
        f"(min {min(values):.2f}, max {max(values):.2f}, n={len(values)})"
    )


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--build", action="store_true", help="rebuild and time the build")
    ap.add_argument("--runs", type=int, default=7)
    args = ap.parse_args()

    if args.build or not (BUNDLE / f"expirytrack{EXE}").exists():
        t0 = time.perf_counter()
        subprocess.run(["bash", str(ROOT / "build_spec" / "build.sh")], check=True)
        print(f"build (build_spec/build.sh): {time.perf_counter() - t0:.1f} s")

    total = du(BUNDLE)
    print(f"bundle {BUNDLE.relative_to(ROOT)}: {total / MIB:.0f} MiB on disk")
    internal = BUNDLE / "_internal"
    parts = sorted(((du(p), p.name) for p in internal.iterdir() if p.is_dir()), reverse=True)
    for size, name in parts[:6]:
        print(f"  {name:<14} {size / MIB:6.0f} MiB")
    top_files = sum(
        os.lstat(p).st_blocks * 512 for p in internal.iterdir() if not p.is_dir()
    ) + sum(os.lstat(p).st_blocks * 512 for p in BUNDLE.iterdir() if not p.is_dir())
    print(f"  {'top level':<14} {top_files / MIB:6.0f} MiB  (executable, libpython, OpenSSL, ...)")

    with tempfile.TemporaryDirectory(prefix="bench-packaging-") as tmp:
        home = Path(tmp)
        env = env_for(home)
        gui = [str(BUNDLE / f"expirytrack-desktop{EXE}"), "--smoke-test"]
        cli = str(BUNDLE / f"expirytrack{EXE}")
        evict(BUNDLE)
        print(f"frozen --smoke-test, first run (evicted): {timed(gui, env):.2f} s")
        print(f"frozen --smoke-test, cold (evicted):  {fmt(series(gui, env, args.runs, True))}")
        source = [sys.executable, "-m", "expirytrack_desktop", "--smoke-test"]
        warm, unfrozen = interleaved([gui, source], env, args.runs)
        print(f"frozen --smoke-test, warm:            {fmt(warm)}")
        print(f"unfrozen --smoke-test, warm:          {fmt(unfrozen)}  (interleaved)")
        print(f"frozen expirytrack --version, warm:   {fmt(series([cli, '--version'], env, 5))}")
        status = [cli, "status", "--db", str(home / "empty.sqlite3")]
        print(f"frozen expirytrack status, warm:      {fmt(series(status, env, 5))}")
    print(f"(load average now: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
