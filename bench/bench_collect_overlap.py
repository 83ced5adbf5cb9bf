"""Two overlapping collections at once, in two processes, on one database: no window twice.

The setting of ``bench_collect_exact.py`` (the simulator on a loopback port with the real rate
limits, a 30-day span cap unknown at start, 5% HTTP 500, 2% truncated JSON, 2% dropped
connections, 20-200 ms latency), and two ``expirytrack collect`` processes with the same
selection (NIFTY's last two expiries, ``--months 4``) on the same ``--db`` and the same home
(so they share the rate-limit ledger), the second started ``--stagger`` seconds after the
first, as a scheduled run may start while the window's job runs. Pass: both exit 0, the
database is exact, no contract-day is served twice by the simulator (window claims: a job
leaves what another live job is fetching to it), zero 429s.

    .venv/bin/python bench/bench_collect_overlap.py [--stagger 3]
"""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

from _collect_harness import (
    NIFTY,
    bench_parser,
    cli_env,
    compare,
    finish,
    fmt_stats,
    last_expiries,
    make_app,
    refetched_days,
    serve_collect,
    summarize_hits,
)


def main() -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--stagger", type=float, default=3.0, help="seconds between the two starts")
    a = ap.parse_args()
    app = make_app()
    expiries = last_expiries(app)
    tmp = Path(tempfile.mkdtemp(prefix="bench-overlap-"))
    db = tmp / "collect.sqlite3"
    with serve_collect(app, db, expiries) as (_base, argv):
        env = cli_env(tmp)
        t0 = time.monotonic()
        procs = []
        for n in (1, 2):
            if n == 2:
                time.sleep(a.stagger)
            with open(tmp / f"stderr{n}.txt", "w") as err:
                procs.append(
                    subprocess.Popen(
                        argv, env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=err, text=True
                    )
                )
        first, second = procs
        outs = [p.communicate(timeout=900)[0] for p in procs]
        wall = time.monotonic() - t0
    codes = [first.returncode, second.returncode]
    print(f"exit codes {codes}, {wall:.1f} s in all (second started {a.stagger:g} s later)")
    for n, out in enumerate(outs, 1):
        print(f"process {n}:", out.strip().replace("\n", "\n           "))
        if procs[n - 1].returncode:
            print("  stderr tail:", (tmp / f"stderr{n}.txt").read_text()[-1500:])
    hits = app.hits
    twice, lost = refetched_days(hits)
    cmp = compare(db, app.market, NIFTY, expiries)
    print("simulator:", fmt_stats(app))
    print("by endpoint (logged):", summarize_hits(hits))
    print(
        f"contract-days served successfully more than once: {twice}; candle responses whose "
        f"days were served again later: {lost}"
    )
    print(
        f"contracts: db {cmp.contracts_db} / simulator {cmp.contracts_truth}; candles: db "
        f"{cmp.candles_db} / simulator {cmp.candles_truth}; exact: {cmp.exact}"
    )
    ok = codes == [0, 0] and cmp.exact and twice == 0 and app.stats.rate_limited == 0
    return finish(ok, tmp, a.keep, f" (exact={cmp.exact}, days served twice={twice})")


if __name__ == "__main__":
    raise SystemExit(main())
