"""Managing schedules for both faces: store, install into the OS scheduler, remove, list with
the next run and the last result. ``expirytrack schedule`` and the window's Schedules page
call these, so a schedule made in one is the same thing in the other.

OS calls go through :mod:`.hooks` (tests inject a fake command runner and folders).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from expirytrack_desktop.collect.atrisk import Chosen, chosen_from_jobs
from expirytrack_desktop.collect.instruments import resolve_instrument
from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.schedule import hooks
from expirytrack_desktop.schedule.model import Schedule, ScheduleError, ScheduleStore
from expirytrack_desktop.schedule.ossched import (
    Backend,
    SchedulerPaths,
    backend_named,
    choose_backend,
    install,
    passed_env,
    run_argv,
    subprocess_runner,
    uninstall,
)
from expirytrack_desktop.schedule.runner import load_state


@dataclass(slots=True)
class Installed:
    """What :meth:`ScheduleManager.add` did."""

    schedule: Schedule
    backend: str | None  # None: stored only
    argv: list[str]
    notes: list[str] = field(default_factory=list)
    replaced: bool = False


@dataclass(frozen=True, slots=True)
class ScheduleEntry:
    schedule: Schedule
    next_run: datetime | None  # local time
    last: dict[str, Any] | None  # the last run's state (finished_at, exit_code, summary, ...)


def next_run(s: Schedule, now: datetime) -> datetime | None:
    """The first of ``s.times`` on one of ``s.days`` (0 = Monday) strictly after ``now``."""
    for offset in range(8):
        day = (now + timedelta(days=offset)).date()
        if day.weekday() not in s.days:
            continue
        for t in sorted(s.times):
            hh, mm = (int(x) for x in t.split(":"))
            at = datetime(day.year, day.month, day.day, hh, mm, tzinfo=now.tzinfo)
            if at > now:
                return at
    return None


def watchlist_next_runs(entries: list[ScheduleEntry]) -> dict[str, datetime]:
    """The soonest next run of each watchlist some schedule runs (``watch schedule``)."""
    out: dict[str, datetime] = {}
    for e in entries:
        name = e.schedule.watchlist
        if name and e.next_run is not None and (name not in out or e.next_run < out[name]):
            out[name] = e.next_run
    return out


class ScheduleManager:
    def __init__(self, paths: AppPaths) -> None:
        self.paths = paths
        self.store = ScheduleStore(paths.config_dir / "schedules.json")

    def _os(self) -> tuple[Any, SchedulerPaths, dict[str, str], Any]:
        h = hooks.current()
        runner = h.runner or subprocess_runner
        spaths = h.paths or SchedulerPaths.default(self.paths.config_dir, self.paths.log_dir)
        env = passed_env() if h.env is None else h.env
        return runner, spaths, env, h

    def run_argv(self, name: str) -> list[str]:
        h = hooks.current()
        return run_argv(name, frozen=h.frozen, executable=h.executable)

    def backend(self) -> Backend:
        runner, spaths, env, h = self._os()
        return choose_backend(runner, spaths, platform=h.platform, env=env, uid=h.uid)

    def add(self, s: Schedule, *, install_it: bool = True) -> Installed:
        """Validate, install (replacing a previous one of the same name), then store.

        Raises :class:`ScheduleError` with every problem the OS scheduler reported; nothing is
        stored then.
        """
        s.validate()
        previous = self.store.get(s.name)
        argv = self.run_argv(s.name)
        if not install_it:
            s.backend = None
            self.store.put(s)
            return Installed(s, None, argv, replaced=previous is not None)
        runner, spaths, env, h = self._os()
        backend = self.backend()
        if previous is not None and previous.backend and previous.backend != backend.name:
            uninstall(backend_named(previous.backend, runner, spaths, env=env, uid=h.uid), s.name)
        problems = install(backend, s, argv)
        if problems:
            raise ScheduleError(
                f"schedule {s.name} could not be installed ({backend.name}): " + "; ".join(problems)
            )
        s.backend = backend.name
        self.store.put(s)
        notes = list(backend.plan_install(s, argv).notes)
        return Installed(s, backend.name, argv, notes, replaced=previous is not None)

    def remove(self, name: str) -> list[str]:
        """Uninstall and delete; returns the OS scheduler's complaints (it is deleted anyway)."""
        s = self.store.get(name)
        if s is None:
            raise ScheduleError(f"no schedule named {name!r}")
        problems: list[str] = []
        if s.backend:
            runner, spaths, env, h = self._os()
            try:
                problems = uninstall(
                    backend_named(s.backend, runner, spaths, env=env, uid=h.uid), s.name
                )
            except ScheduleError as exc:
                problems = [str(exc)]
        self.store.remove(s.name)
        # what its "only what is new" export held: a schedule added again under this name
        # starts afresh (its exports may go elsewhere)
        from expirytrack_desktop.schedule.exports import seen_path

        with contextlib.suppress(OSError):
            seen_path(self.paths.data_dir / "schedules", s.name).unlink()
        return problems

    def entries(self, now: datetime | None = None) -> list[ScheduleEntry]:
        now = now or datetime.now().astimezone()
        return [
            ScheduleEntry(s, next_run(s, now), load_state(self.paths.data_dir, s.name))
            for s in sorted(self.store.load(), key=lambda x: x.name)
        ]

    @property
    def log_path(self) -> Path:
        return self.paths.log_dir

    def chosen(self) -> list[Chosen]:
        """What the stored schedules keep collecting (for the at-risk report); a damaged
        schedules file or an instrument that no longer resolves is left out, not fatal."""
        try:
            schedules = self.store.load()
        except (ScheduleError, OSError, ValueError):
            return []
        out = []
        for s in schedules:
            dates = None if s.expiries is None else tuple(date.fromisoformat(d) for d in s.expiries)
            for text in s.instruments:
                try:
                    out.append(Chosen(resolve_instrument(text), dates))
                except ValueError:
                    continue
        return out


def chosen_everywhere(db: Any, paths: AppPaths) -> list[Chosen]:
    """The selections the at-risk report watches: earlier collection jobs, every schedule
    and every keep-complete watchlist (its underlyings today, and of them the expiries not
    complete by the watchlist's own measure: a strike-filtered one is complete without the
    strikes it leaves out)."""
    from expirytrack_desktop.collect.watchlist import incomplete_expiries, watch_keys
    from expirytrack_desktop.store.watchlists import list_watchlists

    jobs = db.list_jobs(limit=10_000, job_type="collect")
    watched: list[Chosen] = []
    lists = list_watchlists(db)
    if lists:
        rows = db.universe()
        for wl in lists:
            missing = incomplete_expiries(db, wl, watch_keys(wl, rows)[0])
            watched += [Chosen(k, tuple(dates)) for k, dates in missing.items() if dates]
    return chosen_from_jobs(jobs) + ScheduleManager(paths).chosen() + watched
