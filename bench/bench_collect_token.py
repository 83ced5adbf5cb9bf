"""Token expiry mid-run: the CLI stops with "needs login"; with a new token it finishes and
fetches no window again.

Setup as in ``bench_collect_exact.py`` (faulty simulator with the real rate limits on a
loopback port, NIFTY's last two expiries, ``--months 4``, ``--concurrency 8``). The simulator
lets ``--after`` authenticated requests pass and then expires every token
(``app.expire_tokens_after``). Expected: exit code 3 (NEEDS_LOGIN) and a one-line message that
names the expired token and the fix. Then ``app.issue_token()`` gives a new token and the same
command runs again with it. Expected: exit 0, exact database, and zero re-fetched windows:

- every ``fetch_window`` row committed by the first run is unchanged (same job, same time);
- no candle request of the second run overlaps (same contract, overlapping days) a window
  the first run had committed.

    .venv/bin/python bench/bench_collect_token.py [--after 180]
"""

from __future__ import annotations

import sqlite3
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

from _collect_harness import (
    NIFTY,
    bench_parser,
    candle_spans,
    compare,
    finish,
    last_expiries,
    lost_responses,
    make_app,
    run_cli,
    serve_collect,
)

from expirytrack_desktop.cli import exitcodes


def committed_windows(db: Path) -> dict[tuple, tuple]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return {
            (r[0], r[1], r[2]): r
            for r in con.execute(
                "SELECT c.expired_key, w.interval, w.from_date, w.to_date, w.state, w.candles, "
                "w.attempts, w.job_id, w.updated_at FROM fetch_window w "
                "JOIN contract c ON c.id = w.contract_id WHERE w.state != 'failed'"
            )
        }
    finally:
        con.close()


def main() -> int:
    ap = bench_parser(__doc__)
    ap.add_argument("--after", type=int, default=180, help="requests before tokens expire")
    a = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-token-"))
    app = make_app()
    expiries = last_expiries(app)
    db = tmp / "collect.sqlite3"
    with serve_collect(app, db, expiries) as (_base, argv):
        app.expire_tokens_after(a.after)
        t0 = time.monotonic()
        first = run_cli(argv, tmp)
        t1 = time.monotonic() - t0
        split = len(app.hits)
        before = committed_windows(db)
        stderr_errors = [ln for ln in first.stderr.splitlines() if ln.startswith("error:")]
        print(
            f"run 1 (tokens expire after {a.after} requests): exit {first.returncode} "
            f"(NEEDS_LOGIN = {exitcodes.NEEDS_LOGIN}) in {t1:.1f} s; {split} requests, "
            f"{sum(1 for h in app.hits if h.status == 401)} answered 401; "
            f"{len(before)} windows committed"
        )
        print("  stdout:", first.stdout.strip().splitlines()[-1])
        for ln in stderr_errors:
            print("  stderr:", ln)
        token = app.issue_token()
        t0 = time.monotonic()
        second = run_cli(argv, tmp, token=token)
        t2 = time.monotonic() - t0
    print(
        f"run 2 (new token from app.issue_token()): exit {second.returncode} in {t2:.1f} s; "
        f"{len(app.hits) - split} requests"
    )
    print("  stdout:", second.stdout.strip().splitlines()[-1])

    after = committed_windows(db)
    changed = [k for k, row in before.items() if after.get(k) != row]
    spans2 = candle_spans(app.hits[split:])
    refetched = 0
    for (key, _iv, f_text), row in before.items():
        f, t = date.fromisoformat(f_text), date.fromisoformat(row[3])
        refetched += sum(1 for f2, t2 in spans2.get(key, []) if f2 <= t and t2 >= f)
    lost = [h for h in lost_responses(app.hits) if app.hits.index(h) < split]
    cmp = compare(db, app.market, NIFTY, expiries)
    print(
        f"windows committed by run 1 and changed by run 2: {len(changed)}; run-2 candle "
        f"requests overlapping them: {refetched}; run-1 successful responses lost at the "
        f"expiry (window not committed, fetched again): {len(lost)}"
    )
    print(
        f"final db exact vs simulator: {cmp.exact} ({cmp.contracts_db} contracts, "
        f"{cmp.candles_db} candles); 429s {app.stats.rate_limited}"
    )
    msg_ok = any("expired" in ln and "login" in ln for ln in stderr_errors)
    ok = (
        first.returncode == exitcodes.NEEDS_LOGIN
        and msg_ok
        and second.returncode == 0
        and not changed
        and refetched == 0
        and cmp.exact
        and app.stats.rate_limited == 0
    )
    return finish(ok, tmp, a.keep)


if __name__ == "__main__":
    sys.exit(main())
