"""Universe backfill at Upstox's real limits, judged from the simulator's side.

The simulator runs as its own process (``bench/_sim_logged.py``: the built-in simulator with
stocks, market seed 7, today 2025-11-20, a 30-day span cap on 1-minute candles, the real
limits 50/1 s, 500/60 s, 2000/1800 s enforced with 429s, latency uniform 20-200 ms) and logs
every request it answers. The engine is the CLI as a user runs it, in its own process:

    expirytrack watch add universe --everything ...
    expirytrack watch run universe --rate-limit 50/1,500/60,2000/1800 --concurrency 8 ...

(a fresh database and ``EXPIRYTRACK_HOME``; the demo token). After ``--minutes`` (default 30)
the run is cancelled with SIGINT (Ctrl+C: it records where it got to and exits 130). Then,
from the simulator's request log: the most requests in any sliding 1 s / 60 s / 1800 s
window vs the limits, the 429s (must be 0), the order in which expiries were fetched
(candle requests oldest expiry first: the first candle request of each expiry must come in
expiry-date order; Kendall's tau of arrival order vs expiry over all candle requests), the
engine's estimate printed at the start vs what it did, and the engine process's peak RSS
(``wait4``'s ``ru_maxrss``, target ≤ 500 MB) and CPU seconds.

    .venv/bin/python bench/bench_backfill.py [--minutes 30] [--keep]
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from bisect import bisect_left
from collections import Counter
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
REAL = "50/1,500/60,2000/1800"
LIMITS = ((50, 1.0), (500, 60.0), (2000, 1800.0))
MASTER = "/market-quote/instruments/exchange/complete.json.gz"
CLI = [sys.executable, "-m", "expirytrack_desktop.cli.main"]
RSS_TARGET_MB = 500


@dataclass(slots=True)
class Req:
    arrived: float
    done: float
    status: int
    endpoint: str
    expiry: date | None  # the expiry a contract list or candle request is about


def classify(target: str) -> tuple[str, date | None]:
    path, _, query = target.partition("?")
    if "/historical-candle/" in path:
        key = path.split("/historical-candle/", 1)[1].split("/")[0]
        tail = key.rsplit("|", 1)[-1]
        try:
            return "candles", datetime.strptime(tail, "%d-%m-%Y").date()
        except ValueError:
            return "candles", None
    m = re.search(r"expiry_date=(\d{4}-\d{2}-\d{2})", query)
    exp = date.fromisoformat(m.group(1)) if m else None
    if path.endswith("/option/contract"):
        return "option contracts", exp
    if path.endswith("/future/contract"):
        return "future contracts", exp
    if path.endswith("/expiries"):
        return "expiry lists", None
    if path == MASTER:
        return "instrument master", None
    return path, None


def read_log(path: Path) -> list[Req]:
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        a, d, s, target = line.split("\t", 3)
        ep, exp = classify(target)
        out.append(Req(float(a), float(d), int(s), ep, exp))
    out.sort(key=lambda r: r.arrived)
    return out


def max_in_window(times: list[float], width: float) -> int:
    """Most events in any half-open window [t, t + width) (sliding, starting at an event)."""
    ts = sorted(times)
    best = 0
    for i, t in enumerate(ts):
        best = max(best, bisect_left(ts, t + width, lo=i) - i)
    return best


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall's tau-b of two sequences (pairs tied in either are neither for nor against)."""
    n = len(x)
    if n < 2:
        return float("nan")
    conc = disc = tx = ty = 0
    for i in range(n - 1):
        dx = np.sign(x[i + 1 :] - x[i])
        dy = np.sign(y[i + 1 :] - y[i])
        prod = dx * dy
        conc += int((prod > 0).sum())
        disc += int((prod < 0).sum())
        tx += int(((dx == 0) & (dy != 0)).sum())
        ty += int(((dy == 0) & (dx != 0)).sum())
    denom = ((conc + disc + tx) * (conc + disc + ty)) ** 0.5
    return (conc - disc) / denom if denom else float("nan")


def start_simulator(tmp: Path, args: argparse.Namespace) -> tuple[subprocess.Popen[str], str]:
    argv = [sys.executable, str(ROOT / "bench" / "_sim_logged.py"), "--today", args.today,
            "--seed", "7", "--span-cap", "30", "--rate-limit", REAL,
            "--latency-ms", args.latency_ms, "--log-level", "critical",
            "--request-log", str(tmp / "requests.tsv")]  # fmt: skip
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, cwd=ROOT)
    assert proc.stdout is not None
    first = proc.stdout.readline()
    return proc, first.split(" on ", 1)[1].split()[0]


def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("EXPIRYTRACK_")}
    env.update(
        EXPIRYTRACK_HOME=str(home),
        EXPIRYTRACK_ACCESS_TOKEN="demo-access-token-expirytrack-sandbox",
        HOME=str(home),
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),
    )
    return env


def loadavg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run_engine(tmp: Path, base: str, args: argparse.Namespace) -> dict[str, object]:
    home, db = tmp / "home", tmp / "universe.sqlite3"
    home.mkdir()
    common = ["--api-base", base, "--instruments-url", base + MASTER, "--db", str(db)]
    who = ["--everything"] if args.selection == "everything" else ["--all-stocks"]
    add = [*CLI, "watch", "add", "universe", *who, *common]
    done = subprocess.run(add, env=cli_env(home), capture_output=True, text=True, cwd=home)
    print(done.stdout.strip())
    if done.returncode:
        raise SystemExit(f"watch add failed ({done.returncode}): {done.stderr.strip()}")
    run = [*CLI, "watch", "run", "universe", *common, "--rate-limit", REAL,
           "--concurrency", str(args.concurrency)]  # fmt: skip
    shown = " ".join(run[3:]).replace(base, "http://127.0.0.1:PORT").replace(str(tmp), "TMP")
    print(f"engine: expirytrack {shown}")
    out, err = (tmp / "engine.out").open("w"), (tmp / "engine.err").open("w")
    t0 = time.time()
    proc = subprocess.Popen(run, env=cli_env(home), stdout=out, stderr=err, cwd=home)
    loads: list[str] = []
    deadline = t0 + 60 * args.minutes
    next_load = t0
    reaped = None
    while time.time() < deadline:  # wait4 (not poll) so the child's rusage is ours to read
        reaped = os.wait4(proc.pid, os.WNOHANG)
        if reaped[0]:
            break
        if time.time() >= next_load:
            loads.append(loadavg())
            next_load += max(10.0, 60 * args.minutes / 10)
        time.sleep(0.5)
    stopped = time.time()
    cancelled = not (reaped and reaped[0])
    if cancelled:
        proc.send_signal(signal.SIGINT)
        reaped = os.wait4(proc.pid, 0)
    assert reaped is not None
    _, status, usage = reaped
    ended = time.time()
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.close()
    err.close()
    return {
        "t0": t0,
        "stopped": stopped,
        "ended": ended,
        "cancelled": cancelled,
        "exit": proc.returncode,
        "maxrss_mb": usage.ru_maxrss / 1024,
        "cpu_user": usage.ru_utime,
        "cpu_sys": usage.ru_stime,
        "loads": loads,
        "stdout": (tmp / "engine.out").read_text(),
        "stderr": (tmp / "engine.err").read_text(),
        "db": db,
    }


def order_report(reqs: list[Req]) -> tuple[list[str], list[str]]:
    """Lines about the expiry order, and the violations found."""
    lines: list[str] = []
    bad: list[str] = []
    for label, eps in (("contract lists", ("option contracts", "future contracts")),
                       ("candle requests", ("candles",))):  # fmt: skip
        rs = [r for r in reqs if r.endpoint in eps and r.expiry is not None]
        if not rs:
            lines.append(f"{label}: none in the run")
            continue
        first: dict[date, float] = {}
        for r in rs:
            first.setdefault(r.expiry, r.arrived)  # type: ignore[arg-type]
        by_arrival = sorted(first.items(), key=lambda kv: kv[1])
        viol = [
            f"{label}: expiry {e} first requested after {by_arrival[i - 1][0]}"
            for i, (e, _) in enumerate(by_arrival)
            if i and e < max(x for x, _ in by_arrival[:i])
        ]
        bad += viol
        x = np.arange(len(rs), dtype=np.float64)
        y = np.array([r.expiry.toordinal() for r in rs], dtype=np.float64)  # type: ignore[union-attr]
        tau = kendall_tau(x, y) if len(rs) <= 20000 else float("nan")
        lines.append(
            f"{label}: {len(rs):,} over {len(first)} expiry dates "
            f"{min(first)} .. {max(first)}; first request of each expiry in expiry order: "
            f"{'yes' if not viol else f'NO ({len(viol)} out of order)'}; "
            f"Kendall tau (arrival vs expiry) {tau:.3f}"
        )
    return lines, bad


def truth(today: str, months: int = 3, span: int = 30) -> tuple[int, int, int, int, int]:
    """What the whole backfill takes in this simulator, counted from its market: (underlyings,
    expiries, contracts, candle windows at the 30-day span cap, requests = expiry lists +
    two contract lists per expiry + windows)."""
    sys.path.insert(0, str(ROOT))
    from expirytrack_desktop.collect.plan import target_range
    from expirytrack_desktop.sandbox.market import Market
    from expirytrack_desktop.store.coverage import chunk_range

    market = Market(seed=7, today=date.fromisoformat(today), stocks=True)
    keys = [u.key for u in market.underlyings()]
    expiries = contracts = windows = 0
    for key in keys:
        for e in market.expiries(key):
            n = len(market.option_contracts(key, e)) + len(market.future_contracts(key, e))
            expiries += 1
            contracts += n
            windows += n * len(chunk_range(target_range(e, months), span))
    return len(keys), expiries, contracts, windows, len(keys) + 2 * expiries + windows


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=30.0, help="run length (default 30)")
    ap.add_argument("--today", default="2025-11-20", help="the market's today")
    ap.add_argument("--latency-ms", default="20,200")
    ap.add_argument("--concurrency", type=int, default=8)
    ap.add_argument("--selection", choices=("everything", "stocks"), default="everything")
    ap.add_argument("--keep", action="store_true", help="keep the temp folder")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-backfill-"))
    print(
        f"bench_backfill: {args.minutes:g} min, selection {args.selection}, limits {REAL}, "
        f"latency {args.latency_ms} ms, today {args.today}; load average {loadavg()}"
    )
    sim, base = start_simulator(tmp, args)
    try:
        eng = run_engine(tmp, base, args)
        time.sleep(1.0)
    finally:
        sim.terminate()
        sim.wait(timeout=20)
    reqs = read_log(tmp / "requests.tsv")
    t0 = float(eng["t0"])  # type: ignore[arg-type]
    print("\n--- the engine's own output (first lines) ---")
    for line in str(eng["stdout"]).splitlines()[:12]:
        print("  " + line[:300])
    err_lines = str(eng["stderr"]).splitlines()
    print(f"  ... stderr {len(err_lines)} lines; last: {err_lines[-3:] if err_lines else []}")
    print("\n--- from the simulator's request log ---")
    by = Counter(r.endpoint for r in reqs)
    statuses = Counter(r.status for r in reqs)
    print(f"requests answered: {len(reqs):,}: {dict(by)}; statuses {dict(statuses)}")
    n429 = statuses.get(429, 0)
    ok = n429 == 0
    for basis in ("arrived", "done"):
        times = [getattr(r, basis) for r in reqs if r.endpoint != "instrument master"]
        parts = []
        for limit, width in LIMITS:
            m = max_in_window(times, width)
            ok = ok and (basis != "done" or m <= limit)
            parts.append(f"{m} / {limit} per {width:g} s")
        print(f"most requests in a sliding window (by {basis} time): " + "; ".join(parts))
    per_min = Counter(int((r.arrived - t0) // 60) for r in reqs)
    print("requests per minute of the run: " + " ".join(
        str(per_min.get(m, 0)) for m in range(int(args.minutes) + 1)))  # fmt: skip
    firsts = {}
    for r in reqs:
        firsts.setdefault(r.endpoint, r.arrived - t0)
    print("first request of each kind, s after start: "
          + ", ".join(f"{k} {v:.1f}" for k, v in firsts.items()))  # fmt: skip
    lines, bad = order_report(reqs)
    for line in lines:
        print(line)
    for v in bad[:20]:
        print("  violation:", v)
    ok = ok and not bad
    plan = next((ln for ln in str(eng["stdout"]).splitlines() if ln.startswith("Plan for")), "")
    notes = [ln.strip() for ln in str(eng["stdout"]).splitlines() if "backfill" in ln]
    print(f"\nestimate at start: {plan or '(none printed)'}")
    for n in notes:
        print(f"  {n}")
    m = re.search(r"about (\d+) requests, about (.+?) at ", plan) or re.search(
        r"(\d+) requests, (.+?) at ", plan
    )
    done_s = float(eng["stopped"]) - t0  # type: ignore[arg-type]
    engine_reqs = sum(1 for r in reqs if r.endpoint != "instrument master" and r.arrived >= t0)
    print(f"actual: {engine_reqs:,} requests in {done_s / 60:.1f} min of the run "
          f"({engine_reqs / done_s * 60:.1f}/min)")  # fmt: skip
    est = int(m.group(1)) if m else 0
    if m:
        print(f"estimate: {est:,} requests, {m.group(2)}")
    nu, ne, nc, nw, nr = truth(args.today)
    pace = engine_reqs / done_s  # requests per second the run kept
    print(
        f"the whole backfill in this simulator (counted from its market): {nu} underlyings, "
        f"{ne:,} expiries, {nc:,} contracts, {nw:,} candle windows (30-day span) = {nr:,} "
        f"requests; at the 2,000 per 30 min limit {nr / 2000 * 0.5:.1f} h"
        + (f" (estimate {est / nr - 1:+.0%} in requests)" if m else "")
    )
    if args.minutes >= 30:
        print(f"at this run's pace ({pace * 60:.1f}/min) the whole backfill takes "
              f"{nr / pace / 3600:.1f} h")  # fmt: skip
    rss = float(eng["maxrss_mb"])  # type: ignore[arg-type]
    cpu = float(eng["cpu_user"]) + float(eng["cpu_sys"])  # type: ignore[arg-type]
    how = "cancelled with SIGINT" if eng["cancelled"] else "ended by itself"
    print(
        f"engine process: exit {eng['exit']} ({how}, "
        f"{float(eng['ended']) - float(eng['stopped']):.1f} s to stop); peak RSS {rss:.0f} MB "
        f"(target ≤ {RSS_TARGET_MB}); CPU {cpu:.1f} s ({eng['cpu_user']:.1f} user + "
        f"{eng['cpu_sys']:.1f} sys) = {1000 * cpu / max(engine_reqs, 1):.1f} ms per request"
    )
    print(f"load average samples during the run: {' | '.join(eng['loads'])}")  # type: ignore[arg-type]
    ok = ok and rss <= RSS_TARGET_MB
    print(f"429s: {n429}")
    print(f"RESULT: {'PASS' if ok else 'FAIL'}")
    if args.keep:
        print("kept:", tmp)
    else:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
