"""Start-up time of the desktop app: ``--smoke-test`` wall time (start, show the window with the
engine opened, quit), median of several runs in fresh processes.

    .venv/bin/python bench/bench_ui_startup.py [--runs 9] [--demo] [--ref DIR]

``--ref DIR``: the same runs, interleaved one by one, with another source tree first on
``sys.path`` (e.g. ``git archive 45b257c | tar -x -C /tmp/ref``), so both are measured under
the same load. Target (issue 12): median <= 1.0 s. The CPU time (user + system of all the
process's threads) is printed too: it moves less than the wall time with the machine's load.
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TARGET_S = 1.0
ROOT = Path(__file__).resolve().parent.parent


def run_once(cmd: list[str], env: dict[str, str], cwd: Path) -> tuple[float, float]:
    """Wall time and CPU time (user + system, all threads) of one run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(cmd, env=env, cwd=cwd, check=True, capture_output=True)  # -m: cwd wins
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--demo", action="store_true")
    ap.add_argument("--ref", type=Path, help="another source tree, measured side by side")
    args = ap.parse_args()
    trees = {"this tree": ROOT}
    if args.ref is not None:
        trees["ref " + str(args.ref)] = args.ref.resolve()
    cmd = [sys.executable, "-m", "expirytrack_desktop", "--smoke-test"]
    if args.demo:
        cmd.append("--demo")
    times: dict[str, list[float]] = {name: [] for name in trees}
    cpus: dict[str, list[float]] = {name: [] for name in trees}
    loads = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        envs = {}
        for i, (name, tree) in enumerate(trees.items()):
            env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
            env["PYTHONPATH"] = str(tree)
            env["EXPIRYTRACK_HOME"] = str(Path(tmp) / f"home{i}")
            envs[name] = env
            run_once(cmd, env, tree)  # creates the database (and warms the disk cache)
        for _ in range(args.runs):
            for name in trees:
                wall, cpu = run_once(cmd, envs[name], trees[name])
                times[name].append(wall)
                cpus[name].append(cpu)
            loads.append(os.getloadavg()[0])
    print(f"{' '.join(cmd[1:])}, {args.runs} runs each, load average "
          f"{min(loads):.1f}-{max(loads):.1f}")  # fmt: skip
    for name, ts in times.items():
        med = statistics.median(ts)
        verdict = "met" if med <= TARGET_S else "NOT met"
        print(f"  {name}: median {med:.2f} s, min {min(ts):.2f} s, max {max(ts):.2f} s "
              f"(target <= {TARGET_S} s: {verdict}); CPU median "
              f"{statistics.median(cpus[name]):.2f} s")  # fmt: skip
        print("    runs:", " ".join(f"{t:.2f}" for t in ts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
