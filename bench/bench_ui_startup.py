"""Start-up time of the desktop app: ``--smoke-test`` wall time (start, show the window with the
engine opened, quit), median of several runs in fresh processes.

    .venv/bin/python bench/bench_ui_startup.py [--runs 7] [--demo]

Target: median <= 1.5 s.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--demo", action="store_true")
    args = ap.parse_args()
    env = dict(os.environ, QT_QPA_PLATFORM=os.environ.get("QT_QPA_PLATFORM", "offscreen"))
    times = []
    with tempfile.TemporaryDirectory() as home:
        env["EXPIRYTRACK_HOME"] = home
        cmd = [sys.executable, "-m", "expirytrack_desktop", "--smoke-test"]
        if args.demo:
            cmd.append("--demo")
        subprocess.run(cmd, env=env, check=True, capture_output=True)  # first run creates the db
        for _ in range(args.runs):
            t0 = time.perf_counter()
            subprocess.run(cmd, env=env, check=True, capture_output=True)
            times.append(time.perf_counter() - t0)
    load = os.getloadavg()[0]
    print(f"{' '.join(cmd[1:])}: {args.runs} runs, median {statistics.median(times):.2f} s, "
          f"min {min(times):.2f} s, max {max(times):.2f} s (load average {load:.1f})")  # fmt: skip
    print("target (median <= 1.5 s):", "met" if statistics.median(times) <= 1.5 else "NOT met")
    return 0


if __name__ == "__main__":
    sys.exit(main())
