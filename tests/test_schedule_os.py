"""Installing schedules into the OS scheduler: the generated unit files, crontab lines, launchd
plist and Task Scheduler XML, and the commands run -- all through a fake runner and test
folders (nothing touches the real crontab, systemd, launchd or home folder)."""

from __future__ import annotations

import plistlib
import xml.etree.ElementTree as ET

import pytest

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.schedule import ScheduleError, ScheduleStore, hooks, parse_days, parse_time
from expirytrack_desktop.schedule.ossched import Result, SchedulerPaths, run_argv, systemd_quote

PY = "/opt/Expiry Track/bin/python3"


class FakeRunner:
    """Records every command; answers like a machine with or without a systemd user session."""

    def __init__(self, systemd: bool = True, crontab: str | None = None) -> None:
        self.systemd = systemd
        self.crontab = crontab
        self.calls: list[list[str]] = []
        self.inputs: list[str | None] = []

    def __call__(self, argv, input=None):
        argv = list(argv)
        self.calls.append(argv)
        self.inputs.append(input)
        if argv[:3] == ["systemctl", "--user", "show-environment"]:
            return Result(0 if self.systemd else 1, "", "" if self.systemd else "no bus")
        if argv == ["crontab", "-l"]:
            if self.crontab is None:
                return Result(1, "", "no crontab for tester")
            return Result(0, self.crontab, "")
        if argv == ["crontab", "-"]:
            self.crontab = input
        return Result(0, "", "")

    def commands(self) -> list[list[str]]:
        return [c for c in self.calls if c[:3] != ["systemctl", "--user", "show-environment"]]


@pytest.fixture
def spaths(tmp_path) -> SchedulerPaths:
    return SchedulerPaths(
        tmp_path / "systemd-user", tmp_path / "LaunchAgents", tmp_path / "tasks", tmp_path / "logs"
    )


def add(*extra: str) -> list[str]:
    return ["schedule", "add", "-i", "NIFTY", "-i", "BANKNIFTY", "--all-expiries", "--at", "16:30",
            "--days", "mon-fri", "--name", "nightly", *extra]  # fmt: skip


def env_home() -> str:
    return str(AppPaths.default().data_dir.parent)


def test_parse_days_and_times():
    assert parse_days("mon-fri") == (0, 1, 2, 3, 4)
    assert parse_days("sat,sun") == (5, 6)
    assert parse_days("fri-mon") == (0, 4, 5, 6)
    assert parse_days("daily") == tuple(range(7))
    assert parse_time("9:05") == "09:05"
    for bad in ("25:00", "9", "12:60"):
        with pytest.raises(ScheduleError):
            parse_time(bad)
    with pytest.raises(ScheduleError):
        parse_days("funday")


def test_run_argv_uses_this_interpreter_or_the_frozen_console_binary(tmp_path):
    assert run_argv("n", frozen=False, executable=PY) == [
        PY, "-m", "expirytrack_desktop", "schedule", "run", "n"
    ]  # fmt: skip
    windowed = tmp_path / "expirytrack-desktop.exe"
    (tmp_path / "expirytrack.exe").write_text("")
    assert run_argv("n", frozen=True, executable=str(windowed)) == [
        str(tmp_path / "expirytrack.exe"), "schedule", "run", "n"
    ]  # fmt: skip


def test_systemd_timer_and_service(spaths, capsys):
    runner = FakeRunner(systemd=True)
    with hooks.override(runner=runner, paths=spaths, platform="linux", executable=PY, frozen=False):
        assert main(add()) == exitcodes.OK
    service = (spaths.systemd_user_dir / "expirytrack-nightly.service").read_text()
    timer = (spaths.systemd_user_dir / "expirytrack-nightly.timer").read_text()
    assert (
        'ExecStart="/opt/Expiry Track/bin/python3" -m expirytrack_desktop schedule run nightly\n'
        in service
    )
    assert "Type=oneshot\n" in service
    assert "TimeoutStartSec=780min\n" in service  # the default 12 h run limit + 1 h backstop
    assert f"Environment=EXPIRYTRACK_HOME={env_home()}\n" in service
    assert "OnCalendar=Mon,Tue,Wed,Thu,Fri *-*-* 16:30:00\n" in timer
    assert "Persistent=true\n" in timer and "Unit=expirytrack-nightly.service\n" in timer
    assert runner.commands() == [
        ["systemctl", "--user", "daemon-reload"],
        ["systemctl", "--user", "enable", "expirytrack-nightly.timer"],
        ["systemctl", "--user", "restart", "expirytrack-nightly.timer"],
    ]
    out = capsys.readouterr().out
    assert "Added schedule nightly" in out and "Installed into systemd" in out
    stored = ScheduleStore(AppPaths.default().config_dir / "schedules.json").get("nightly")
    assert stored is not None and stored.backend == "systemd" and stored.expiries is None
    assert stored.instruments == ["NIFTY", "BANKNIFTY"] and stored.days == [0, 1, 2, 3, 4]

    runner.calls.clear()
    with hooks.override(runner=runner, paths=spaths, platform="linux"):
        assert main(["schedule", "remove", "nightly"]) == exitcodes.OK
    assert runner.commands() == [
        ["systemctl", "--user", "disable", "--now", "expirytrack-nightly.timer"],
        ["systemctl", "--user", "daemon-reload"],
    ]
    assert list(spaths.systemd_user_dir.iterdir()) == []
    assert ScheduleStore(AppPaths.default().config_dir / "schedules.json").load() == []


def test_systemd_quoting():
    assert systemd_quote("plain") == "plain"
    assert systemd_quote("a b") == '"a b"'
    assert systemd_quote("100%") == "100%%"
    assert systemd_quote('say "x"') == '"say \\"x\\""'


def test_print_shows_and_installs_nothing(spaths, capsys):
    runner = FakeRunner(systemd=True)
    with hooks.override(runner=runner, paths=spaths, platform="linux", executable=PY, frozen=False):
        assert main(add("--print")) == exitcodes.OK
    out = capsys.readouterr().out
    assert "OS scheduler: systemd" in out
    assert "OnCalendar=Mon,Tue,Wed,Thu,Fri *-*-* 16:30:00" in out
    assert "$ systemctl --user enable expirytrack-nightly.timer" in out
    assert runner.commands() == []
    assert not spaths.systemd_user_dir.exists()
    assert ScheduleStore(AppPaths.default().config_dir / "schedules.json").load() == []


def test_cron_keeps_other_lines(spaths):
    runner = FakeRunner(systemd=False, crontab="0 1 * * * /usr/bin/backup\n")
    with hooks.override(runner=runner, paths=spaths, platform="linux", executable=PY, frozen=False):
        assert main([*add(), "--at", "09:05"]) == exitcodes.OK
    lines = runner.crontab.splitlines()
    log = spaths.log_dir / "schedule-nightly.log"
    cmd = (
        f"EXPIRYTRACK_HOME={env_home()} '{PY}' -m expirytrack_desktop schedule run nightly "
        f">> {log} 2>&1 # expirytrack-schedule:nightly"
    )
    assert lines == ["0 1 * * * /usr/bin/backup", f"5 9 * * 1-5 {cmd}", f"30 16 * * 1-5 {cmd}"]
    # adding again replaces, not duplicates
    with hooks.override(runner=runner, paths=spaths, platform="linux", executable=PY, frozen=False):
        assert main([*add(), "--days", "sat"]) == exitcodes.OK
    assert runner.crontab.splitlines() == ["0 1 * * * /usr/bin/backup", f"30 16 * * 6 {cmd}"]
    with hooks.override(runner=runner, paths=spaths, platform="linux"):
        assert main(["schedule", "remove", "nightly"]) == exitcodes.OK
    assert runner.crontab == "0 1 * * * /usr/bin/backup\n"


def test_cron_escapes_percent(spaths):
    runner = FakeRunner(systemd=False)
    with hooks.override(
        runner=runner, paths=spaths, platform="linux", executable="/x/100%/python", frozen=False,
        env={},
    ):  # fmt: skip
        assert main(add()) == exitcodes.OK
    (line,) = runner.crontab.splitlines()
    assert line.startswith("30 16 * * 1-5 /x/100\\%/python -m expirytrack_desktop")


def test_launchd_agent(spaths):
    runner = FakeRunner()
    with hooks.override(
        runner=runner, paths=spaths, platform="darwin", uid=501, executable=PY, frozen=False
    ):
        assert main(add()) == exitcodes.OK
    path = spaths.launch_agents_dir / "com.expirytrack.schedule.nightly.plist"
    plist = plistlib.loads(path.read_bytes())
    assert plist["Label"] == "com.expirytrack.schedule.nightly"
    assert plist["ProgramArguments"] == [
        PY, "-m", "expirytrack_desktop", "schedule", "run", "nightly"
    ]  # fmt: skip
    assert plist["StartCalendarInterval"] == [
        {"Weekday": w, "Hour": 16, "Minute": 30} for w in (1, 2, 3, 4, 5)
    ]
    assert plist["EnvironmentVariables"] == {"EXPIRYTRACK_HOME": env_home()}
    assert plist["StandardOutPath"] == str(spaths.log_dir / "schedule-nightly.log")
    assert runner.commands() == [
        ["launchctl", "bootout", "gui/501/com.expirytrack.schedule.nightly"],
        ["launchctl", "bootstrap", "gui/501", str(path)],
    ]
    runner.calls.clear()
    with hooks.override(runner=runner, paths=spaths, platform="darwin", uid=501):
        assert main(["schedule", "remove", "nightly"]) == exitcodes.OK
    assert runner.commands() == [
        ["launchctl", "bootout", "gui/501/com.expirytrack.schedule.nightly"]
    ]
    assert not path.exists()


def test_windows_task_xml(spaths):
    runner = FakeRunner()
    exe = r"C:\Program Files\ExpiryTrack\expirytrack.exe"
    with hooks.override(
        runner=runner, paths=spaths, platform="win32", executable=exe, frozen=True, env={}
    ):
        assert main([*add(), "--days", "mon,wed,fri"]) == exitcodes.OK
    path = spaths.task_xml_dir / "nightly.xml"
    assert runner.commands() == [
        ["schtasks", "/Create", "/TN", "\\ExpiryTrack\\nightly", "/XML", str(path), "/F"]
    ]
    raw = path.read_bytes()
    assert raw[:2] in (b"\xff\xfe", b"\xfe\xff")  # UTF-16 with BOM, as schtasks expects
    root = ET.fromstring(raw.decode("utf-16").split("\n", 1)[1])
    ns = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    assert root.find("t:Actions/t:Exec/t:Command", ns).text == exe
    assert root.find("t:Actions/t:Exec/t:Arguments", ns).text == "schedule run nightly"
    (trigger,) = root.findall("t:Triggers/t:CalendarTrigger", ns)
    assert trigger.find("t:StartBoundary", ns).text.endswith("T16:30:00")
    days = trigger.find("t:ScheduleByWeek/t:DaysOfWeek", ns)
    assert [d.tag.split("}")[1] for d in days] == ["Monday", "Wednesday", "Friday"]
    assert root.find("t:Settings/t:StartWhenAvailable", ns).text == "true"
    assert root.find("t:Settings/t:MultipleInstancesPolicy", ns).text == "IgnoreNew"
    assert root.find("t:Settings/t:ExecutionTimeLimit", ns).text == "PT780M"
    runner.calls.clear()
    with hooks.override(runner=runner, paths=spaths, platform="win32", env={}):
        assert main(["schedule", "remove", "nightly"]) == exitcodes.OK
    assert runner.commands() == [["schtasks", "/Delete", "/TN", "\\ExpiryTrack\\nightly", "/F"]]


def test_failed_install_stores_nothing(spaths, capsys):
    def refusing(argv, input=None):
        if argv[:3] == ["systemctl", "--user", "show-environment"]:
            return Result(0)
        return Result(1, "", "Failed to connect to bus")

    with hooks.override(runner=refusing, paths=spaths, platform="linux"):
        assert main(add()) == exitcodes.ERROR
    assert "Failed to connect to bus" in capsys.readouterr().err
    assert ScheduleStore(AppPaths.default().config_dir / "schedules.json").load() == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--at", "25:00"], "bad time"),
        (["--days", "someday"], "bad days"),
        (["--name", "../x"], "bad schedule name"),
        (["--notify-email", "nobody"], "bad e-mail address"),
        (["--months", "40"], "months must be between"),
    ],
)
def test_bad_input(spaths, capsys, args, message):
    runner = FakeRunner()
    with hooks.override(runner=runner, paths=spaths, platform="linux"):
        assert main([*add(), *args]) == exitcodes.BAD_INPUT
    assert message in capsys.readouterr().err
    assert runner.commands() == []


def test_list_and_unknown_names(spaths, capsys):
    with hooks.override(runner=FakeRunner(), paths=spaths, platform="linux"):
        assert main(["schedule", "list"]) == exitcodes.OK
        assert "No schedules" in capsys.readouterr().out
        assert main([*add(), "--notify-email", "me@example.com"]) == exitcodes.OK
        capsys.readouterr()
        assert main(["schedule", "list"]) == exitcodes.OK
        out = capsys.readouterr().out
        assert "nightly" in out and "mon-fri at 16:30" in out and "never" in out
        assert "me@example.com" in out and "NIFTY, BANKNIFTY: all expiries" in out
        assert main(["schedule", "remove", "nope"]) == exitcodes.BAD_INPUT
        assert main(["schedule", "run", "nope"]) == exitcodes.BAD_INPUT
