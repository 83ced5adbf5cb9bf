"""ZIP: one CSV per contract named ``<OpenAlgo symbol>.csv``, plus ``metadata.json``."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path

from expirytrack_desktop.export.context import WriteContext
from expirytrack_desktop.export.csv_format import write_contract_rows
from expirytrack_desktop.export.csv_text import options_header
from expirytrack_desktop.export.json_format import contract_head, document_metadata
from expirytrack_desktop.export.query import SelectedContract


def write_zip(ctx: WriteContext, contracts: Sequence[SelectedContract], path: Path) -> None:
    entries = []
    used: set[str] = set()
    with (
        ctx.open(path) as raw,
        zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
    ):
        for c in contracts:
            name = f"{c.symbol}.csv"
            if name in used:  # two contracts with one symbol: keep both, distinctly
                name = f"{c.symbol}_{c.id}.csv"
            used.add(name)
            with zf.open(name, "w", force_zip64=True) as member:
                member.write(options_header(ctx.options))
                rows = write_contract_rows(ctx, member, c)  # type: ignore[arg-type]
            head = contract_head(c, include_metadata=True)
            entries.append({"file": name, **head, "rows": rows})
        instruments = list(ctx.options.underlyings)  # as selected, in the order chosen
        meta = {**document_metadata(ctx, instruments), "contracts": entries}
        zf.writestr("metadata.json", json.dumps(meta, indent=1, ensure_ascii=False))
