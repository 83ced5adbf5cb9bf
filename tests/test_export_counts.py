"""The planning count and the review page's figures (per-contract subqueries) agree with a
plain ``GROUP BY`` over the candles, for every range, with or without the second connection."""

from __future__ import annotations

from contextlib import closing
from functools import partial
from pathlib import Path

import pytest

from expirytrack_desktop.export.db import connect_readonly
from expirytrack_desktop.export.options import ExportOptions
from expirytrack_desktop.export.query import (
    TS_MAX,
    TS_MIN,
    count_per_contract,
    rows_per_contract,
    select_contracts,
)
from tests._export_db import CONTRACTS, UNDERLYINGS, build_db, candles_of

D0422 = 1745293500  # 2025-04-22 09:15 IST
RANGES = [(TS_MIN, TS_MAX), (D0422, TS_MAX), (TS_MIN, D0422 + 86_400), (D0422 + 60, D0422 + 1260)]


def reference(db: Path, iv: int, lo: int, hi: int) -> dict[int, tuple[int, int, int]]:
    with closing(connect_readonly(db)) as conn:
        rows = conn.execute(
            "SELECT contract_id, count(*), min(ts), max(ts) FROM candle"
            " WHERE interval = ? AND ts >= ? AND ts < ? GROUP BY contract_id",
            (iv, lo, hi),
        ).fetchall()
    return {cid: (n, a, b) for cid, n, a, b in rows}


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_db(tmp_path_factory.mktemp("counts") / "store.sqlite3")


@pytest.mark.parametrize(("lo", "hi"), RANGES)
@pytest.mark.parametrize("split", [False, True])
def test_counts_match_group_by(db: Path, lo: int, hi: int, split: bool) -> None:
    with closing(connect_readonly(db)) as conn:
        contracts = select_contracts(conn, ExportOptions(tuple(u[1] for u in UNDERLYINGS)))
        helper = partial(connect_readonly, db) if split else None
        counts = rows_per_contract(conn, contracts, 1, lo, hi, helper)
        figures = count_per_contract(conn, contracts, 1, lo, hi)
    want = reference(db, 1, lo, hi)
    assert figures == want
    assert counts == {cid: n for cid, (n, _, _) in want.items()}
    assert 103 not in counts  # the contract without candles is left out, not counted 0
    if (lo, hi) == (TS_MIN, TS_MAX):
        assert counts == {c.id: len(candles_of(c)) for c in CONTRACTS if c.days}


def test_other_interval_counted_apart(db: Path) -> None:
    """Contract 100's one 5-minute candle is not a 1-minute candle, and the reverse."""
    with closing(connect_readonly(db)) as conn:
        contracts = select_contracts(conn, ExportOptions(tuple(u[1] for u in UNDERLYINGS)))
        assert rows_per_contract(conn, contracts, 5, TS_MIN, TS_MAX) == {100: 1}
        assert count_per_contract(conn, contracts, 5, TS_MIN, TS_MAX) == {100: (1, D0422, D0422)}
