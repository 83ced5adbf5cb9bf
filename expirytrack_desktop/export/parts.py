"""Many files from one read: groups of candles cut where their contracts change file.

An export of many files (a file per contract, a partition per expiry, a ZIP member per
contract, the mirror) used to read each file's contracts on their own: two reader threads
and two connections started per file, and nothing read ahead across files -- ~2 ms per
contract, 3-5x the time of the same rows in one file (bench/RESULTS.md). Now one stream
of groups (:meth:`~.context.WriteContext.groups`) covers every file's contracts in order,
and a group whose contracts belong to several files is cut into :class:`Run` s.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

from expirytrack_desktop.export.arrow_read import CandleGroup
from expirytrack_desktop.export.query import SelectedContract


@dataclass(frozen=True, slots=True)
class Run:
    """Contracts ``first:end`` of a group (rows ``row:row + rows``), all of file ``part``."""

    part: int
    first: int
    end: int
    row: int
    rows: int


class Parts:
    """The files' contracts in one order, and which file each position belongs to."""

    def __init__(self, files: Sequence[Sequence[SelectedContract]]) -> None:
        self.contracts = [c for members in files for c in members]
        self.part_of = [k for k, members in enumerate(files) for _ in members]
        self._at = 0  # position of the next group's first contract

    def runs(self, group: CandleGroup) -> Iterator[Run]:
        """The runs of ``group``, the next group of the stream, in order."""
        pos, row, i, n = self._at, 0, 0, len(group.contracts)
        self._at += n
        while i < n:
            k, j = self.part_of[pos + i], i + 1
            while j < n and self.part_of[pos + j] == k:
                j += 1
            rows = sum(group.counts[i:j])
            yield Run(k, i, j, row, rows)
            row, i = row + rows, j


def per_contract_names(
    contracts: Sequence[SelectedContract],
    ext: str,
    folder: Callable[[SelectedContract], str] | None = None,
) -> list[str]:
    """``[<folder>/]<symbol><ext>`` per contract; a second contract with the same name gets
    ``<symbol>_<id><ext>`` (both kept, distinctly)."""
    used: set[str] = set()
    names = []
    for c in contracts:
        head = f"{folder(c)}/" if folder is not None else ""
        name = f"{head}{c.symbol}{ext}"
        if name in used:
            name = f"{head}{c.symbol}_{c.id}{ext}"
        used.add(name)
        names.append(name)
    return names
