"""ZIP: one CSV per contract named ``<OpenAlgo symbol>.csv``, plus ``metadata.json``."""

from __future__ import annotations

import json
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from expirytrack_desktop.export.context import WriteContext
from expirytrack_desktop.export.csv_format import (
    BackgroundWriter,
    contract_lines,
    write_contract_rows,
)
from expirytrack_desktop.export.csv_text import options_header
from expirytrack_desktop.export.json_format import contract_head, document_metadata
from expirytrack_desktop.export.parts import per_contract_names
from expirytrack_desktop.export.query import SelectedContract


def write_zip(ctx: WriteContext, contracts: Sequence[SelectedContract], path: Path) -> None:
    names = per_contract_names(contracts, ".csv")
    entries = []
    with (
        ctx.open(path) as raw,
        zipfile.ZipFile(raw, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf,
    ):
        lines = contract_lines(ctx, contracts)
        if lines is None:  # the row-by-row reference
            for c, name in zip(contracts, names, strict=True):
                with zf.open(name, "w", force_zip64=True) as member:
                    member.write(options_header(ctx.options))
                    rows = write_contract_rows(ctx, member, c)  # type: ignore[arg-type]
                entries.append(
                    {"file": name, **contract_head(c, include_metadata=True), "rows": rows}
                )
        else:  # one read; members deflated on a thread (zlib releases the GIL)
            with BackgroundWriter(_Members(zf, options_header(ctx.options))) as out:
                for name, (c, rows, text) in zip(names, lines, strict=True):
                    out.write((name, text))
                    entries.append(
                        {"file": name, **contract_head(c, include_metadata=True), "rows": rows}
                    )
        instruments = list(ctx.options.underlyings)  # as selected, in the order chosen
        meta = {**document_metadata(ctx, instruments), "contracts": entries}
        zf.writestr("metadata.json", json.dumps(meta, indent=1, ensure_ascii=False))


class _Members:
    """The writer thread's side: each item is a whole member (name, its lines)."""

    def __init__(self, zf: zipfile.ZipFile, header: bytes) -> None:
        self.zf, self.header = zf, header

    def write(self, item: tuple[str, Any]) -> None:
        name, text = item
        with self.zf.open(name, "w", force_zip64=True) as member:
            member.write(self.header)
            member.write(text)
