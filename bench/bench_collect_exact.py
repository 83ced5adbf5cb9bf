"""Exactness of a full collection through the CLI against a faulty simulator on a loopback port.

The simulator (this process, ``serve``) has the real rate limits (50/1, 500/60, 2000/1800),
a 30-day span cap on 1-minute candles (unknown to the client at start), and the target fault mix:
5% HTTP 500, 2% truncated JSON, 2% dropped connections, 20-200 ms latency. The CLI
(``expirytrack collect``, a subprocess, fresh ``--db``, private ``EXPIRYTRACK_HOME``) collects
NIFTY's last two expiries (2025-05-22 weekly, 2025-05-29 monthly) with ``--months 4`` (longer
than a monthly contract's listed life, so the range holds every candle the simulator has).

Then every contract (all metadata columns, raw JSON) and every candle (all values) in the
database is compared with the simulator's ground truth; no extras; zero 429s.

    .venv/bin/python bench/bench_collect_exact.py [--fault-seed 1] [--span-cap 30]
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from _collect_harness import (
    NIFTY,
    bench_parser,
    compare,
    finish,
    fmt_stats,
    last_expiries,
    make_app,
    refetched_days,
    run_cli,
    serve_collect,
    summarize_hits,
)


def main() -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--fault-seed", type=int, default=1)
    ap.add_argument("--span-cap", type=int, default=30, help="0 = no span cap")
    a = ap.parse_args()

    app = make_app(span_cap=a.span_cap or None, fault_seed=a.fault_seed)
    expiries = last_expiries(app)
    tmp = Path(tempfile.mkdtemp(prefix="bench-exact-"))
    db = tmp / "collect.sqlite3"
    with serve_collect(app, db, expiries) as (_base, argv):
        t0 = time.monotonic()
        proc = run_cli(argv, tmp)
        wall = time.monotonic() - t0
    print(f"exit code {proc.returncode}, wall time {wall:.1f} s")
    print("stdout:", proc.stdout.strip().replace("\n", "\n        "))
    if proc.returncode != 0:
        print("stderr tail:", proc.stderr.strip()[-2000:])

    cmp = compare(db, app.market, NIFTY, expiries)
    hits = app.hits
    retried = sum(1 for h in hits if not h.ok and h.status != 400)
    rejected = sum(1 for h in hits if h.status == 400)
    dup_days, _dup_resp = refetched_days(hits)
    print(f"simulator: {fmt_stats(app)}")
    print(f"by endpoint (logged): {summarize_hits(hits)}")
    print(
        f"requests answered with a fault (each retried by the client): {retried}; "
        f"span rejections (UDAPI1148): {rejected}; contract-days served twice: {dup_days}"
    )
    print(
        f"contracts: db {cmp.contracts_db} / simulator {cmp.contracts_truth}, "
        f"metadata mismatches {len(cmp.contract_mismatches)}, without OpenAlgo symbol "
        f"{cmp.no_openalgo}"
    )
    print(
        f"candles: db {cmp.candles_db} / simulator {cmp.candles_truth} "
        f"(simulator candles outside the collected range: {cmp.outside_range_truth}); "
        f"missing {cmp.candles_missing}, extra {cmp.candles_extra}, values differ "
        f"{cmp.candles_differ}; failed windows left {cmp.failed_windows}"
    )
    for line in cmp.contract_mismatches[:5] + cmp.examples:
        print("  !", line)
    ok = cmp.exact and proc.returncode == 0 and app.stats.rate_limited == 0
    ok = ok and cmp.outside_range_truth == 0 and dup_days == 0
    detail = (
        f" (exact={cmp.exact}, exit={proc.returncode}, 429s={app.stats.rate_limited}, "
        f"refetched days={dup_days})"
    )
    return finish(ok, tmp, a.keep, detail)


if __name__ == "__main__":
    sys.exit(main())
