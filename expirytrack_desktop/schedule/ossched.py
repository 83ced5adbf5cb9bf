"""Installing a schedule into the operating system's scheduler.

Linux: a systemd user timer + service when ``systemctl --user`` answers, else a crontab line.
macOS: a launchd LaunchAgent. Windows: a Task Scheduler task created with ``schtasks /XML``.
Each calls ``expirytrack schedule run NAME`` with this installation's executable.

Every side effect goes through an injected :class:`Runner` (commands) and
:class:`SchedulerPaths` (files), so tests assert the generated files and command lines and
never touch the real crontab, systemd, launchd or home folder. :meth:`Backend.plan` is pure:
``--print`` shows it without installing.
"""

from __future__ import annotations

import os
import plistlib
import shlex
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol
from xml.sax.saxutils import escape as xml_escape

from expirytrack_desktop.fsutil import atomic_write_bytes, atomic_write_text
from expirytrack_desktop.schedule.model import DAY_NAMES, Schedule, ScheduleError

UNIT_PREFIX = "expirytrack-"
LAUNCHD_PREFIX = "com.expirytrack.schedule."
TASK_FOLDER = "ExpiryTrack"
CRON_TAG = "# expirytrack-schedule:"
# Variables that decide which folders/database a run uses: carried into the OS job.
PASSED_ENV = ("EXPIRYTRACK_HOME", "EXPIRYTRACK_DB")


@dataclass(frozen=True, slots=True)
class Result:
    returncode: int
    stdout: str = ""
    stderr: str = ""


class Runner(Protocol):
    def __call__(self, argv: Sequence[str], input: str | None = None) -> Result: ...


def subprocess_runner(argv: Sequence[str], input: str | None = None) -> Result:
    """The real runner: no shell, captured output, a timeout."""
    try:
        p = subprocess.run(
            list(argv), input=input, capture_output=True, text=True, timeout=60, check=False
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return Result(127, "", f"{argv[0]}: {exc}")
    return Result(p.returncode, p.stdout, p.stderr)


@dataclass(frozen=True, slots=True)
class SchedulerPaths:
    """Where unit files / agents / task XML go, and the log folder for job output."""

    systemd_user_dir: Path
    launch_agents_dir: Path
    task_xml_dir: Path
    log_dir: Path

    @classmethod
    def default(cls, config_dir: Path, log_dir: Path) -> SchedulerPaths:
        home = Path.home()
        xdg = os.environ.get("XDG_CONFIG_HOME") or str(home / ".config")
        return cls(
            Path(xdg) / "systemd" / "user",
            home / "Library" / "LaunchAgents",
            config_dir / "schedules",
            log_dir,
        )


def run_argv(name: str, *, frozen: bool | None = None, executable: str | None = None) -> list[str]:
    """The command the OS runs: ``<this executable> schedule run NAME``.

    Frozen: the bundle's console executable (``expirytrack``), preferred over the windowed one,
    which has no stdout on Windows. Otherwise: ``<python> -m expirytrack_desktop``.
    """
    frozen = bool(getattr(sys, "frozen", False)) if frozen is None else frozen
    exe = executable or sys.executable
    if frozen:
        p = Path(exe)
        if p.stem.lower() == "expirytrack-desktop":
            console = p.with_name("expirytrack" + p.suffix)
            if console.exists():
                exe = str(console)
        return [exe, "schedule", "run", name]
    return [exe, "-m", "expirytrack_desktop", "schedule", "run", name]


def os_time_limit_minutes(s: Schedule) -> int:
    """The OS scheduler's own limit for one run: the schedule's ``max_hours`` plus an hour.

    The run stops itself at ``max_hours`` (``schedule.runlock`` says how); the OS limit is
    the backstop, later so it never cuts a run that is still within its own.
    """
    return int(s.max_hours * 60) + 60


def passed_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    env = os.environ if environ is None else environ
    return {k: env[k] for k in PASSED_ENV if env.get(k)}


@dataclass(slots=True)
class Plan:
    """What installing (or removing) a schedule does: files written, then commands run."""

    backend: str
    files: dict[Path, str | bytes] = field(default_factory=dict)
    commands: list[list[str]] = field(default_factory=list)
    remove_files: list[Path] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        lines = [f"OS scheduler: {self.backend}"]
        for path, content in self.files.items():
            lines.append(f"--- file {path}")
            text = content.decode("utf-16") if isinstance(content, bytes) else content
            lines.append(text.rstrip("\n"))
        for path in self.remove_files:
            lines.append(f"--- delete {path}")
        for cmd in self.commands:
            lines.append("$ " + shlex.join(cmd))
        lines.extend(f"note: {n}" for n in self.notes)
        return "\n".join(lines)


def write_files(plan: Plan) -> None:
    """Each file of the plan replaced whole (a scheduler reading it never sees half of one)."""
    for path, content in plan.files.items():
        try:
            if isinstance(content, bytes):
                atomic_write_bytes(path, content)
            else:
                atomic_write_text(path, content)
        except OSError as exc:
            raise ScheduleError(f"cannot write {path}: {exc.strerror or exc}") from None


class Backend:
    name = "?"

    def __init__(self, runner: Runner, paths: SchedulerPaths, env: dict[str, str]) -> None:
        self.runner = runner
        self.paths = paths
        self.env = env

    def plan_install(self, s: Schedule, argv: list[str]) -> Plan:
        raise NotImplementedError

    def plan_remove(self, name: str) -> Plan:
        raise NotImplementedError

    def apply(self, plan: Plan, *, check: bool = True) -> list[str]:
        """Write the files, run the commands; returns problems (empty = all went well)."""
        problems: list[str] = []
        write_files(plan)
        for path in plan.remove_files:
            path.unlink(missing_ok=True)
        for cmd in plan.commands:
            r = self.runner(cmd)
            if r.returncode != 0 and check:
                msg = (r.stderr or r.stdout).strip().splitlines()
                problems.append(
                    f"`{shlex.join(cmd)}` failed ({r.returncode}): {' '.join(msg)[:300]}"
                )
        return problems


# ---- systemd ------------------------------------------------------------------------------


def systemd_quote(arg: str) -> str:
    """Quote one ExecStart word: specifiers (%) and variables ($) escaped, spaces quoted."""
    a = arg.replace("%", "%%").replace("$", "$$")
    if not a or any(c in a for c in " \t\"'\\;"):
        a = '"' + a.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return a


class SystemdBackend(Backend):
    name = "systemd"

    def unit(self, name: str) -> str:
        return f"{UNIT_PREFIX}{name}"

    def service_text(self, s: Schedule, argv: list[str]) -> str:
        env = "".join(
            f"Environment={systemd_quote(f'{k}={v}')}\n" for k, v in sorted(self.env.items())
        )
        return (
            "# Written by `expirytrack schedule add`; remove with `expirytrack schedule remove "
            f"{s.name}`.\n"
            "[Unit]\n"
            f"Description=ExpiryTrack scheduled collection {s.name}\n\n"
            "[Service]\n"
            "Type=oneshot\n"
            f"ExecStart={' '.join(systemd_quote(a) for a in argv)}\n"
            f"{env}"
            # fallback secrets file: EXPIRYTRACK_PASSPHRASE may be kept in this file (chmod 600)
            f"EnvironmentFile=-{systemd_quote(str(self.paths.task_xml_dir / 'schedule.env'))}\n"
            f"TimeoutStartSec={os_time_limit_minutes(s)}min\n"  # oneshot: no limit otherwise
            "Nice=5\n"
        )

    def timer_text(self, s: Schedule) -> str:
        days = ",".join(DAY_NAMES[d].capitalize() for d in s.days)
        cal = "".join(f"OnCalendar={days} *-*-* {t}:00\n" for t in s.times)
        return (
            "[Unit]\n"
            f"Description=ExpiryTrack scheduled collection {s.name} ({s.when_text()})\n\n"
            "[Timer]\n"
            f"{cal}"
            "Persistent=true\n"  # a run missed while the machine was off happens at boot
            f"Unit={self.unit(s.name)}.service\n\n"
            "[Install]\n"
            "WantedBy=timers.target\n"
        )

    def plan_install(self, s: Schedule, argv: list[str]) -> Plan:
        d = self.paths.systemd_user_dir
        unit = self.unit(s.name)
        return Plan(
            self.name,
            files={
                d / f"{unit}.service": self.service_text(s, argv),
                d / f"{unit}.timer": self.timer_text(s),
            },
            commands=[
                ["systemctl", "--user", "daemon-reload"],
                ["systemctl", "--user", "enable", f"{unit}.timer"],
                # restart, not start: a timer already active re-reads its new calendar
                ["systemctl", "--user", "restart", f"{unit}.timer"],
            ],
            notes=[
                "user timers run while you are logged in; to run them without a login session: "
                "loginctl enable-linger $USER",
                f"output: journalctl --user -u {unit}.service",
            ],
        )

    def plan_remove(self, name: str) -> Plan:
        d = self.paths.systemd_user_dir
        unit = self.unit(name)
        return Plan(
            self.name,
            commands=[
                ["systemctl", "--user", "disable", "--now", f"{unit}.timer"],
                ["systemctl", "--user", "daemon-reload"],
            ],
            remove_files=[d / f"{unit}.service", d / f"{unit}.timer"],
        )

    def apply(self, plan: Plan, *, check: bool = True) -> list[str]:
        if plan.remove_files:  # removing: stop the timer before its files disappear
            problems = []
            for cmd in plan.commands[:1]:
                self.runner(cmd)  # absent timer: nothing to stop
            rest = Plan(plan.backend, remove_files=plan.remove_files, commands=plan.commands[1:])
            problems += Backend.apply(self, rest, check=check)
            return problems
        return super().apply(plan, check=check)


# ---- cron -----------------------------------------------------------------------------------


def cron_escape(command: str) -> str:
    """``%`` ends a cron command (the rest becomes stdin) unless escaped."""
    return command.replace("%", "\\%")


class CronBackend(Backend):
    name = "cron"

    def lines(self, s: Schedule, argv: list[str]) -> list[str]:
        log = self.paths.log_dir / f"schedule-{s.name}.log"
        env = " ".join(f"{k}={shlex.quote(v)}" for k, v in sorted(self.env.items()))
        cmd = f"{env + ' ' if env else ''}{shlex.join(argv)} >> {shlex.quote(str(log))} 2>&1"
        dow = ",".join(str((d + 1) % 7) for d in s.days)  # cron: 0 = Sunday
        if len(s.days) == 7:
            dow = "*"
        elif list(s.days) == [0, 1, 2, 3, 4]:
            dow = "1-5"
        out = []
        for t in s.times:
            hh, mm = t.split(":")
            out.append(f"{int(mm)} {int(hh)} * * {dow} {cron_escape(cmd)} {CRON_TAG}{s.name}")
        return out

    def current(self) -> str:
        r = self.runner(["crontab", "-l"])
        if r.returncode != 0:
            if "no crontab" in (r.stderr + r.stdout).lower():
                return ""
            raise ScheduleError(f"cannot read the crontab: {(r.stderr or r.stdout).strip()}")
        return r.stdout

    @staticmethod
    def without(text: str, name: str) -> list[str]:
        tag = f"{CRON_TAG}{name}"
        return [ln for ln in text.splitlines() if not ln.rstrip().endswith(tag)]

    def plan_install(self, s: Schedule, argv: list[str]) -> Plan:
        p = Plan(self.name, commands=[["crontab", "-"]])
        p.notes.append("crontab lines (installed with `crontab -`, other lines kept):")
        p.notes.extend(self.lines(s, argv))
        p.notes.append(f"output: {self.paths.log_dir / f'schedule-{s.name}.log'}")
        return p

    def install(self, s: Schedule, argv: list[str]) -> list[str]:
        self.paths.log_dir.mkdir(parents=True, exist_ok=True)
        keep = self.without(self.current(), s.name)
        new = "\n".join([*keep, *self.lines(s, argv)]) + "\n"
        r = self.runner(["crontab", "-"], input=new)
        return [] if r.returncode == 0 else [f"crontab failed: {r.stderr.strip()}"]

    def plan_remove(self, name: str) -> Plan:
        return Plan(
            self.name, commands=[["crontab", "-"]], notes=[f"lines tagged {CRON_TAG}{name}"]
        )

    def remove(self, name: str) -> list[str]:
        text = self.current()
        keep = self.without(text, name)
        if keep == text.splitlines():
            return []
        r = self.runner(["crontab", "-"], input="\n".join(keep) + "\n" if keep else "")
        return [] if r.returncode == 0 else [f"crontab failed: {r.stderr.strip()}"]


# ---- launchd --------------------------------------------------------------------------------


class LaunchdBackend(Backend):
    name = "launchd"

    def __init__(
        self, runner: Runner, paths: SchedulerPaths, env: dict[str, str], uid: int
    ) -> None:
        super().__init__(runner, paths, env)
        self.uid = uid

    def label(self, name: str) -> str:
        return f"{LAUNCHD_PREFIX}{name}"

    def plist(self, s: Schedule, argv: list[str]) -> bytes:
        intervals = []
        for t in s.times:
            hh, mm = (int(x) for x in t.split(":"))
            if len(s.days) == 7:
                intervals.append({"Hour": hh, "Minute": mm})
            else:  # launchd: 0 = Sunday
                intervals.extend({"Weekday": (d + 1) % 7, "Hour": hh, "Minute": mm} for d in s.days)
        log = str(self.paths.log_dir / f"schedule-{s.name}.log")
        body: dict[str, object] = {
            "Label": self.label(s.name),
            "ProgramArguments": list(argv),
            "StartCalendarInterval": intervals,
            "StandardOutPath": log,
            "StandardErrorPath": log,
            "RunAtLoad": False,
            "ProcessType": "Background",
        }
        if self.env:
            body["EnvironmentVariables"] = dict(sorted(self.env.items()))
        return plistlib.dumps(body)

    def plist_path(self, name: str) -> Path:
        return self.paths.launch_agents_dir / f"{self.label(name)}.plist"

    def plan_install(self, s: Schedule, argv: list[str]) -> Plan:
        path = self.plist_path(s.name)
        return Plan(
            self.name,
            files={path: self.plist(s, argv).decode("utf-8")},
            commands=[
                ["launchctl", "bootout", f"gui/{self.uid}/{self.label(s.name)}"],
                ["launchctl", "bootstrap", f"gui/{self.uid}", str(path)],
            ],
            notes=["a run missed while the Mac slept starts when it wakes"],
        )

    def plan_remove(self, name: str) -> Plan:
        return Plan(
            self.name,
            commands=[["launchctl", "bootout", f"gui/{self.uid}/{self.label(name)}"]],
            remove_files=[self.plist_path(name)],
        )

    def apply(self, plan: Plan, *, check: bool = True) -> list[str]:
        # bootout of an agent that is not loaded fails: expected, not a problem
        write_files(plan)
        self.paths.log_dir.mkdir(parents=True, exist_ok=True)
        problems = []
        for cmd in plan.commands:
            r = self.runner(cmd)
            if r.returncode != 0 and cmd[1] != "bootout":
                problems.append(f"`{shlex.join(cmd)}` failed: {(r.stderr or r.stdout).strip()}")
        for path in plan.remove_files:
            path.unlink(missing_ok=True)
        return problems


# ---- Windows Task Scheduler -----------------------------------------------------------------


class SchtasksBackend(Backend):
    name = "schtasks"

    def task_name(self, name: str) -> str:
        return f"\\{TASK_FOLDER}\\{name}"

    def action(self, argv: list[str]) -> tuple[str, str]:
        """(Command, Arguments) for the task; environment passed through ``cmd /c set``."""
        if not self.env:
            return argv[0], subprocess.list2cmdline(argv[1:])
        sets = " && ".join(f'set "{k}={v}"' for k, v in sorted(self.env.items()))
        return "cmd.exe", f"/d /c {sets} && {subprocess.list2cmdline(argv)}"

    def xml(self, s: Schedule, argv: list[str]) -> str:
        win_days = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
        days = "".join(f"<{win_days[d]} />" for d in s.days)
        triggers = "".join(
            "    <CalendarTrigger>\n"
            f"      <StartBoundary>2020-01-06T{t}:00</StartBoundary>\n"
            "      <Enabled>true</Enabled>\n"
            "      <ScheduleByWeek><WeeksInterval>1</WeeksInterval>"
            f"<DaysOfWeek>{days}</DaysOfWeek></ScheduleByWeek>\n"
            "    </CalendarTrigger>\n"
            for t in s.times
        )
        command, arguments = self.action(argv)
        return (
            '<?xml version="1.0" encoding="UTF-16"?>\n'
            '<Task version="1.2" xmlns="http://schemas.microsoft.com/windows/2004/02/mit/task">\n'
            "  <RegistrationInfo>\n"
            f"    <Description>ExpiryTrack scheduled collection {xml_escape(s.name)} "
            f"({xml_escape(s.when_text())})</Description>\n"
            "  </RegistrationInfo>\n"
            f"  <Triggers>\n{triggers}  </Triggers>\n"
            "  <Principals>\n"
            '    <Principal id="Author">\n'
            "      <LogonType>InteractiveToken</LogonType>\n"
            "      <RunLevel>LeastPrivilege</RunLevel>\n"
            "    </Principal>\n"
            "  </Principals>\n"
            "  <Settings>\n"
            "    <MultipleInstancesPolicy>IgnoreNew</MultipleInstancesPolicy>\n"
            "    <DisallowStartIfOnBatteries>false</DisallowStartIfOnBatteries>\n"
            "    <StopIfGoingOnBatteries>false</StopIfGoingOnBatteries>\n"
            "    <StartWhenAvailable>true</StartWhenAvailable>\n"
            "    <RunOnlyIfNetworkAvailable>false</RunOnlyIfNetworkAvailable>\n"
            f"    <ExecutionTimeLimit>PT{os_time_limit_minutes(s)}M</ExecutionTimeLimit>\n"
            "    <Enabled>true</Enabled>\n"
            "  </Settings>\n"
            '  <Actions Context="Author">\n'
            "    <Exec>\n"
            f"      <Command>{xml_escape(command)}</Command>\n"
            f"      <Arguments>{xml_escape(arguments)}</Arguments>\n"
            "    </Exec>\n"
            "  </Actions>\n"
            "</Task>\n"
        )

    def plan_install(self, s: Schedule, argv: list[str]) -> Plan:
        path = self.paths.task_xml_dir / f"{s.name}.xml"
        return Plan(
            self.name,
            files={path: self.xml(s, argv).encode("utf-16")},
            commands=[
                ["schtasks", "/Create", "/TN", self.task_name(s.name), "/XML", str(path), "/F"]
            ],
            notes=["runs while you are logged on (Task Scheduler: 'Last Run Result' = exit code)"],
        )

    def plan_remove(self, name: str) -> Plan:
        return Plan(
            self.name,
            commands=[["schtasks", "/Delete", "/TN", self.task_name(name), "/F"]],
            remove_files=[self.paths.task_xml_dir / f"{name}.xml"],
        )


# ---- choosing -------------------------------------------------------------------------------


def choose_backend(
    runner: Runner,
    paths: SchedulerPaths,
    *,
    platform: str | None = None,
    env: dict[str, str] | None = None,
    uid: int | None = None,
) -> Backend:
    """The scheduler of this platform (Linux: systemd if ``systemctl --user`` works)."""
    plat = platform or sys.platform
    env = passed_env() if env is None else env
    if plat.startswith("win"):
        return SchtasksBackend(runner, paths, env)
    if plat == "darwin":
        return LaunchdBackend(runner, paths, env, os.getuid() if uid is None else uid)
    r = runner(["systemctl", "--user", "show-environment"])
    if r.returncode == 0:
        return SystemdBackend(runner, paths, env)
    return CronBackend(runner, paths, env)


def install(backend: Backend, s: Schedule, argv: list[str]) -> list[str]:
    if isinstance(backend, CronBackend):
        return backend.install(s, argv)
    return backend.apply(backend.plan_install(s, argv))


def uninstall(backend: Backend, name: str) -> list[str]:
    if isinstance(backend, CronBackend):
        return backend.remove(name)
    return backend.apply(backend.plan_remove(name), check=not isinstance(backend, SchtasksBackend))


def backend_named(
    name: str,
    runner: Runner,
    paths: SchedulerPaths,
    *,
    env: dict[str, str] | None = None,
    uid: int | None = None,
) -> Backend:
    """The backend a schedule was installed with (to remove it from the same place)."""
    env = passed_env() if env is None else env
    classes: dict[str, type[Backend]] = {
        "systemd": SystemdBackend,
        "cron": CronBackend,
        "schtasks": SchtasksBackend,
    }
    if name == "launchd":
        return LaunchdBackend(runner, paths, env, os.getuid() if uid is None else uid)
    if name not in classes:
        raise ScheduleError(f"unknown OS scheduler {name!r}")
    return classes[name](runner, paths, env)
