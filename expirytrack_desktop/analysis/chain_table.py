"""An option chain snapshot as flat rows and CSV: one format for ``expirytrack chain`` and the
window's "Export CSV" (columns: strike, each side's values, then forward, t_years, rate)."""

from __future__ import annotations

import csv
from typing import TextIO

from expirytrack_desktop.analysis.chain import ChainSnapshot

_SIDE = ("ltp", "oi", "oi_change", "volume", "iv", "delta", "gamma", "theta", "vega")
COLUMNS = (
    "strike",
    *(f"ce_{name}" for name in _SIDE),
    *(f"pe_{name}" for name in _SIDE),
    "forward",
    "t_years",
    "rate",
)


def snapshot_rows(snap: ChainSnapshot) -> list[dict[str, object]]:
    """One dict per strike with :data:`COLUMNS` (None where empty); the UI exports the same."""
    out: list[dict[str, object]] = []
    for row in snap.rows:
        rec: dict[str, object] = {"strike": row.strike}
        for prefix, side in (("ce", row.ce), ("pe", row.pe)):
            for name in _SIDE:
                rec[f"{prefix}_{name}"] = (
                    getattr(side, name) if side and side.ltp is not None else None
                )
        rec["forward"] = snap.forward
        rec["t_years"] = snap.t_years
        rec["rate"] = snap.rate
        out.append(rec)
    return out


def _cell(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_csv(rows: list[dict[str, object]], out: TextIO) -> None:
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow([_cell(r[c]) for c in COLUMNS])
