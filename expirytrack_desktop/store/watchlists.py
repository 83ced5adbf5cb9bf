"""Keep-complete watchlists, stored in the database they keep complete (``kv`` rows
``watchlist:<name>`` holding one JSON object each), so a copied database carries them along
and no schema change is needed.

A watchlist names *what* to keep complete; which expiries exist and what is missing is
worked out at run time (``collect.watchlist``).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from expirytrack_desktop.store.base import DatabaseBase

_PREFIX = "watchlist:"
KINDS = ("list", "indices", "stocks", "everything")  # explicit keys, or resolved at run time


@dataclass(frozen=True, slots=True)
class Watchlist:
    """A saved selection kept complete.

    ``kind``: 'list' (``keys`` as given) or 'indices' / 'stocks' / 'everything' (the stored
    F&O underlyings of that kind at run time). ``strikes``: None = all strikes, ``"N"`` =
    within ±N strikes, ``"X%"`` = within ±X % of the price near expiry.
    ``last_result``: the last run's outcome (state, exit code, job, requests, notes).
    """

    name: str
    kind: str
    keys: tuple[str, ...] = ()
    types: tuple[str, ...] = ("CE", "PE", "FUT")
    strikes: str | None = None
    interval: str = "1minute"
    months: int = 3
    created_at: str = ""
    last_run_at: str | None = None
    last_result: dict[str, Any] | None = field(default=None, compare=False)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["keys"] = list(self.keys)
        data["types"] = list(self.types)
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Watchlist:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        values["keys"] = tuple(values.get("keys") or ())
        values["types"] = tuple(values.get("types") or ("CE", "PE", "FUT"))
        return cls(**values)


class WatchlistError(ValueError):
    """Unknown or duplicate watchlist, or a bad name (one line for the user)."""


_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,33}$")  # "watch-" + it names a schedule


def check_watch_name(name: str) -> str:
    if not _NAME_RE.match(name or ""):
        raise WatchlistError(
            f"bad watchlist name {name!r}: use 1-34 letters, digits, '-' or '_' "
            "(starting with a letter or digit)"
        )
    return name


def list_watchlists(db: DatabaseBase) -> list[Watchlist]:
    """Every stored watchlist, by name."""
    rows = db._query(
        "SELECT value FROM kv WHERE key >= ? AND key < ? ORDER BY key",
        (_PREFIX, _PREFIX[:-1] + chr(ord(":") + 1)),
    )
    out: list[Watchlist] = []
    for (value,) in rows:
        try:
            out.append(Watchlist.from_json(json.loads(value)))
        except (ValueError, TypeError):
            continue  # a hand-edited row that is not a watchlist: ignored, never rewritten
    return out


def get_watchlist(db: DatabaseBase, name: str) -> Watchlist | None:
    value = db.kv_get(_PREFIX + name)
    if value is None:
        return None
    return Watchlist.from_json(json.loads(value))


def save_watchlist(db: DatabaseBase, wl: Watchlist, *, replace_existing: bool = False) -> bool:
    """Store ``wl`` (one transaction); returns True if it replaced one of the same name.
    WatchlistError when the name exists and ``replace_existing`` is False."""
    with db.transaction() as c:
        old = c.execute("SELECT value FROM kv WHERE key = ?", (_PREFIX + wl.name,)).fetchone()
        if old is not None and not replace_existing:
            raise WatchlistError(
                f"a watchlist named {wl.name!r} exists already; give --replace to overwrite it"
            )
        if not wl.created_at:
            wl = replace(wl, created_at=db.now_text())
        c.execute(
            "INSERT OR REPLACE INTO kv(key, value) VALUES (?, ?)",
            (_PREFIX + wl.name, json.dumps(wl.to_json(), sort_keys=True)),
        )
    return old is not None


def delete_watchlist(db: DatabaseBase, name: str) -> None:
    """Remove it (its collected data stays); WatchlistError if there is none of that name."""
    with db.transaction() as c:
        cur = c.execute("DELETE FROM kv WHERE key = ?", (_PREFIX + name,))
        if cur.rowcount == 0:
            raise WatchlistError(f"no watchlist named {name!r} (`expirytrack watch list`)")


def record_run(db: DatabaseBase, name: str, result: dict[str, Any]) -> None:
    """Remember when the watchlist last ran and how it ended (no-op if it was removed)."""
    with db.transaction() as c:
        row = c.execute("SELECT value FROM kv WHERE key = ?", (_PREFIX + name,)).fetchone()
        if row is None:
            return
        data = json.loads(row[0])
        data["last_run_at"] = db.now_text()
        data["last_result"] = result
        c.execute(
            "UPDATE kv SET value = ? WHERE key = ?",
            (json.dumps(data, sort_keys=True), _PREFIX + name),
        )
