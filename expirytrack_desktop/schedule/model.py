"""Scheduled collections: what to collect and when, stored as JSON in the config folder.

A :class:`Schedule` holds a collection selection (as ``expirytrack collect`` takes it) plus
the times it runs. Times are the machine's local wall-clock time, because that is what cron,
systemd timers, launchd and the Windows Task Scheduler trigger on.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields
from datetime import date
from pathlib import Path
from typing import Any

from expirytrack_desktop.fsutil import atomic_write_json

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$")
DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")  # index = Python weekday()
FILE_VERSION = 1
DEFAULT_RETRIES = 3
DEFAULT_RETRY_DELAY = 120.0  # seconds before the first retry; doubled after each
DEFAULT_MAX_HOURS = 12.0  # the longest one run (all its attempts) may take; see schedule.runlock
MAX_MAX_HOURS = 72.0


class ScheduleError(ValueError):
    """A schedule that cannot be stored or installed as given (one line for the user)."""


def check_name(name: str) -> str:
    if not NAME_RE.match(name or ""):
        raise ScheduleError(
            f"bad schedule name {name!r}: use 1-40 letters, digits, '-' or '_' "
            "(starting with a letter or digit)"
        )
    return name


def parse_time(text: str) -> str:
    """``"16:30"`` -> ``"16:30"`` (24-hour local time), ScheduleError otherwise."""
    m = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not m or int(m.group(1)) > 23 or int(m.group(2)) > 59:
        raise ScheduleError(f"bad time {text!r}: expected HH:MM (24-hour, local time)")
    return f"{int(m.group(1)):02d}:{m.group(2)}"


def parse_days(text: str) -> tuple[int, ...]:
    """``"mon-fri"``, ``"mon,wed,fri"``, ``"sat-sun"``, ``"daily"`` -> weekdays (Mon = 0)."""
    t = text.strip().lower()
    if t in ("daily", "all", "*", "every-day"):
        return tuple(range(7))
    if t in ("weekdays", "workdays"):
        return tuple(range(5))
    out: set[int] = set()
    for part in t.split(","):
        part = part.strip()
        ends = part.split("-")
        try:
            idx = [DAY_NAMES.index(e.strip()[:3]) for e in ends]
        except ValueError:
            raise ScheduleError(
                f"bad days {text!r}: use names like mon-fri, mon,wed,fri or daily"
            ) from None
        if len(idx) == 1:
            out.add(idx[0])
        elif len(idx) == 2:
            a, b = idx
            out.update(range(a, b + 1) if a <= b else [*range(a, 7), *range(0, b + 1)])
        else:
            raise ScheduleError(f"bad days {text!r}")
    if not out:
        raise ScheduleError(f"bad days {text!r}")
    return tuple(sorted(out))


def days_text(days: Iterable[int]) -> str:
    d = tuple(sorted(days))
    if d == tuple(range(7)):
        return "daily"
    if d == tuple(range(5)):
        return "mon-fri"
    return ",".join(DAY_NAMES[i] for i in d)


@dataclass(slots=True)
class Schedule:
    """One scheduled collection. ``expiries`` None = every expiry the API offers at run time."""

    name: str
    instruments: list[str]
    times: list[str]  # "HH:MM", local time
    days: list[int] = field(default_factory=lambda: list(range(7)))
    expiries: list[str] | None = None  # ISO dates
    interval: str | None = None  # candle interval; None = the settings' default
    months: int | None = None  # history before each expiry; None = the settings' default
    types: list[str] = field(default_factory=lambda: ["CE", "PE", "FUT"])
    notify_email: list[str] = field(default_factory=list)
    notify_on: str = "always"  # "always" | "failure" | "never"
    retries: int = DEFAULT_RETRIES
    retry_delay: float = DEFAULT_RETRY_DELAY
    max_hours: float = DEFAULT_MAX_HOURS  # a run still going after this stops itself
    db: str | None = None  # an explicit --db given when the schedule was added
    demo: bool = False
    api_base: str | None = None
    rate_limit: str | None = None
    export_preset: str | None = None  # after each run: this export preset (schedule/exports)
    export_mirror: str | None = None  # after each run: bring this Parquet mirror up to date
    export_new: bool = False  # the preset exports only what changed since its last export
    backend: str | None = None  # which OS scheduler it was installed into
    created_at: str = ""
    watchlist: str | None = None  # run this keep-complete watchlist (collect.watchlist) instead

    def validate(self) -> Schedule:
        check_name(self.name)
        if not self.instruments and not self.watchlist:
            raise ScheduleError("a schedule needs at least one --instrument")
        if not self.times:
            raise ScheduleError("a schedule needs at least one --at HH:MM")
        self.times = sorted({parse_time(t) for t in self.times})
        if not self.days or any(not 0 <= d <= 6 for d in self.days):
            raise ScheduleError("a schedule needs at least one day")
        self.days = sorted(set(self.days))
        if self.expiries is not None:
            try:
                self.expiries = sorted({date.fromisoformat(e).isoformat() for e in self.expiries})
            except ValueError:
                raise ScheduleError(f"bad expiry date in {self.expiries}: use YYYY-MM-DD") from None
            if not self.expiries:
                raise ScheduleError("choose --expiry dates or --all-expiries")
        if not 0 <= self.retries <= 20:
            raise ScheduleError("--retries must be between 0 and 20")
        if not 0 <= self.retry_delay <= 6 * 3600:
            raise ScheduleError("--retry-delay must be between 0 and 21600 seconds")
        if not 0 < self.max_hours <= MAX_MAX_HOURS:
            raise ScheduleError(f"--max-hours must be above 0 and at most {MAX_MAX_HOURS:g}")
        if self.notify_on not in ("always", "failure", "never"):
            raise ScheduleError("--notify-on must be always, failure or never")
        for addr in self.notify_email:
            if "@" not in addr or any(c in addr for c in " \r\n,;<>"):
                raise ScheduleError(f"bad e-mail address {addr!r}")
        if self.export_new and not self.export_preset:
            raise ScheduleError("--export-new needs --export-preset (the export to narrow)")
        # the OS scheduler starts the run in another folder (home, or system32 on Windows):
        # a relative --db would collect into another database there
        if self.db:
            self.db = os.path.abspath(os.path.expanduser(self.db))
        if self.export_mirror:
            self.export_mirror = os.path.abspath(os.path.expanduser(self.export_mirror))
        return self

    def selection(self, default_interval: str = "1minute", default_months: int = 3) -> Any:
        """The collect :class:`~expirytrack_desktop.collect.Selection` (SelectionError if bad)."""
        from expirytrack_desktop.collect.selection import Selection

        return Selection(
            self.instruments,
            None if self.expiries is None else [date.fromisoformat(e) for e in self.expiries],
            self.interval or default_interval,
            default_months if self.months is None else self.months,
            self.types,
        )

    def when_text(self) -> str:
        return f"{days_text(self.days)} at {', '.join(self.times)}"

    def what_text(self) -> str:
        if self.watchlist:
            return f"watchlist {self.watchlist}"
        exp = "all expiries" if self.expiries is None else ", ".join(self.expiries)
        extra = []
        if self.interval:
            extra.append(self.interval)
        if self.months is not None:
            extra.append(f"{self.months} months")
        tail = f" ({', '.join(extra)})" if extra else ""
        return f"{', '.join(self.instruments)}: {exp}{tail}"

    def exports_text(self) -> str:
        """What runs after each collection ("" when nothing does)."""
        then = []
        if self.export_mirror:
            then.append(f"mirror {self.export_mirror}")
        if self.export_preset:
            new = " (only what is new)" if self.export_new else ""
            then.append(f"export preset {self.export_preset!r}{new}")
        return f"then {' and '.join(then)}" if then else ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Schedule:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


class ScheduleStore:
    """``<config>/schedules.json``: the list of schedules (atomic rewrite on every change)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> list[Schedule]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as exc:
            raise ScheduleError(f"cannot read {self.path}: {exc}") from None
        return [Schedule.from_json(s) for s in data.get("schedules", [])]

    def get(self, name: str) -> Schedule | None:
        return next((s for s in self.load() if s.name == name), None)

    def save_all(self, schedules: list[Schedule]) -> None:
        body = {"version": FILE_VERSION, "schedules": [s.to_json() for s in schedules]}
        try:
            atomic_write_json(self.path, body)
        except OSError as exc:
            raise ScheduleError(f"cannot write {self.path}: {exc.strerror or exc}") from None

    def put(self, schedule: Schedule) -> None:
        rest = [s for s in self.load() if s.name != schedule.name]
        self.save_all([*rest, schedule])

    def remove(self, name: str) -> bool:
        all_ = self.load()
        rest = [s for s in all_ if s.name != name]
        if len(rest) == len(all_):
            return False
        self.save_all(rest)
        return True
