"""The command line's progress for a long database migration (e.g. schema 4's candle copy):
a tqdm bar on a terminal, otherwise a line at each tenth."""

from __future__ import annotations

from typing import Any, TextIO


class MigrationBar:
    """``on_migrate(done, total)`` for :func:`open_database`; silent for an empty database."""

    def __init__(self, stream: TextIO) -> None:
        self.stream = stream
        self.bar: Any = None
        self._tenth = -1

    def __call__(self, done: int, total: int) -> None:
        if total <= 0:
            return
        if not self.stream.isatty():
            tenth = min(10, done * 10 // total)
            if tenth != self._tenth:
                self._tenth = tenth
                print(
                    f"Updating the database layout: {done:,}/{total:,} candles ({tenth * 10}%)",
                    file=self.stream,
                )
            return
        from tqdm import tqdm

        if self.bar is None:
            self.bar = tqdm(
                total=total, unit="candle", unit_scale=True, file=self.stream, desc="database"
            )
        self.bar.total = total
        self.bar.n = done
        self.bar.refresh()
        if done >= total:
            self.bar.close()
            self.bar = None
