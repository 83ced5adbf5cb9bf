"""The Windows and macOS branches, run on any OS with the OS calls injected: which keyring
holds the secrets (Credential Manager, Keychain, or the encrypted fallback when they fail),
where the app's folders are, which scheduler gets a schedule and what it is given."""

from __future__ import annotations

import plistlib
import types
import xml.etree.ElementTree as ET
from pathlib import PureWindowsPath

import keyring.backends.chainer
import keyring.backends.fail
import keyring.backends.macOS
import keyring.backends.Windows
import platformdirs.macos
import platformdirs.unix
import platformdirs.windows
import pytest

from expirytrack_desktop.auth.secrets import (
    ACCESS_TOKEN,
    API_KEY,
    API_SECRET,
    SERVICE,
    SecretStore,
)
from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.schedule import Schedule, ScheduleStore, hooks
from expirytrack_desktop.schedule.ossched import (
    CronBackend,
    LaunchdBackend,
    Result,
    SchedulerPaths,
    SchtasksBackend,
    SystemdBackend,
    backend_named,
    choose_backend,
)

SECRET = "s3cr3t-Value-Zz"
TOKEN = "eyJ0eXAiOiJKV1Qi.token.value"


# -- keyring backends ------------------------------------------------------------------------


class WinError(Exception):
    """pywintypes.error: ``winerror``, ``funcname``, ``strerror``."""

    def __init__(self, winerror: int, funcname: str, strerror: str) -> None:
        super().__init__(winerror, funcname, strerror)
        self.winerror, self.funcname, self.strerror = winerror, funcname, strerror


class CredentialManager:
    """win32cred's calls over a dict, answering as Windows does (blob in UTF-16-LE)."""

    CRED_TYPE_GENERIC = 1
    CRED_PERSIST_SESSION = 1
    CRED_PERSIST_LOCAL_MACHINE = 2
    CRED_PERSIST_ENTERPRISE = 3

    def __init__(self) -> None:
        self.creds: dict[str, dict[str, object]] = {}

    def CredRead(self, Type: int, TargetName: str) -> dict[str, object]:
        if TargetName not in self.creds:
            raise WinError(1168, "CredRead", "Element not found.")
        return dict(self.creds[TargetName])

    def CredWrite(self, credential: dict[str, object], flags: int) -> None:
        blob = str(credential["CredentialBlob"]).encode("utf-16-le")
        self.creds[str(credential["TargetName"])] = {**credential, "CredentialBlob": blob}

    def CredDelete(self, Type: int, TargetName: str) -> None:
        if self.creds.pop(TargetName, None) is None:
            raise WinError(1168, "CredDelete", "Element not found.")


@pytest.fixture
def credman(monkeypatch) -> CredentialManager:
    cm = CredentialManager()
    monkeypatch.setattr(keyring.backends.Windows, "win32cred", cm, raising=False)
    monkeypatch.setattr(
        keyring.backends.Windows, "pywintypes", types.SimpleNamespace(error=WinError), raising=False
    )
    return cm


def test_windows_credential_manager_holds_every_secret(credman, tmp_path):
    store = SecretStore(keyring.backends.Windows.WinVaultKeyring(), tmp_path / "secrets.enc")
    assert not store.is_fallback
    assert store.backend_name == "OS keyring (Windows WinVaultKeyring)"
    # several names under one service: WinVault keeps one per target, keyring compounds the rest
    store.set_many({API_KEY: "key-1", API_SECRET: SECRET, ACCESS_TOKEN: TOKEN})
    assert store.get_many([API_KEY, API_SECRET, ACCESS_TOKEN]) == {
        API_KEY: "key-1",
        API_SECRET: SECRET,
        ACCESS_TOKEN: TOKEN,
    }
    assert any(target.endswith(f"@{SERVICE}") for target in credman.creds)
    store.delete(API_SECRET)
    assert store.get(API_SECRET) is None and store.get(API_KEY) == "key-1"
    assert not (tmp_path / "secrets.enc").exists()


def test_windows_credential_manager_failing_means_the_encrypted_file(monkeypatch, tmp_path):
    def broken(**_kw: object) -> None:
        raise WinError(5, "CredRead", "Access is denied.")

    monkeypatch.setattr(
        keyring.backends.Windows, "win32cred", types.SimpleNamespace(CRED_TYPE_GENERIC=1,
                                                                     CredRead=broken),
        raising=False,
    )  # fmt: skip
    monkeypatch.setattr(
        keyring.backends.Windows, "pywintypes", types.SimpleNamespace(error=WinError), raising=False
    )
    store = SecretStore(keyring.backends.Windows.WinVaultKeyring(), tmp_path / "secrets.enc")
    assert store.is_fallback
    assert "does not answer (Windows WinVaultKeyring: WinError)" in str(store.fallback_reason)


class Keychain:
    """keyring.backends.macOS.api over a dict; ``locked`` answers like a locked Keychain."""

    class Error(Exception):
        pass

    class NotFound(Error):
        pass

    class KeychainDenied(Error):
        pass

    def __init__(self) -> None:
        self.items: dict[tuple[str, str], str] = {}
        self.locked = False

    def _check(self) -> None:
        if self.locked:
            raise self.KeychainDenied("User interaction is not allowed.")

    def find_generic_password(self, keychain: object, service: str, username: str) -> str:
        self._check()
        if (service, username) not in self.items:
            raise self.NotFound()
        return self.items[(service, username)]

    def set_generic_password(self, keychain: object, service: str, user: str, pw: str) -> None:
        self._check()
        self.items[(service, user)] = pw

    def delete_generic_password(self, keychain: object, service: str, username: str) -> None:
        self._check()
        if self.items.pop((service, username), None) is None:
            raise self.NotFound()


@pytest.fixture
def keychain(monkeypatch) -> Keychain:
    kc = Keychain()
    monkeypatch.setattr(keyring.backends.macOS, "api", kc, raising=False)
    return kc


def test_macos_keychain_holds_the_secrets(keychain, tmp_path):
    store = SecretStore(keyring.backends.macOS.Keyring(), tmp_path / "secrets.enc")
    assert not store.is_fallback and store.backend_name == "OS keyring (macOS Keyring)"
    store.set_many({API_SECRET: SECRET, ACCESS_TOKEN: TOKEN})
    assert keychain.items[(SERVICE, API_SECRET)] == SECRET
    assert store.get(ACCESS_TOKEN) == TOKEN


def test_a_locked_keychain_means_the_encrypted_file_and_says_why(keychain, tmp_path):
    keychain.locked = True  # e.g. a login over ssh, or a CI machine
    store = SecretStore(keyring.backends.macOS.Keyring(), tmp_path / "secrets.enc")
    assert store.is_fallback
    assert "macOS Keyring: KeyringLocked" in str(store.fallback_reason)
    store.unlock("a long enough passphrase")
    store.set(API_SECRET, SECRET)
    assert (tmp_path / "secrets.enc").exists() and keychain.items == {}


class ChainerBackend(keyring.backends.chainer.ChainerBackend):
    """keyring's chain with its members given (keyring computes them from this machine)."""

    backends = [keyring.backends.fail.Keyring(), keyring.backends.macOS.Keyring()]  # noqa: RUF012


def test_a_chain_with_one_working_os_keyring_is_used(keychain, tmp_path):
    assert not SecretStore(ChainerBackend(), tmp_path / "secrets.enc").is_fallback
    keychain.locked = True
    store = SecretStore(ChainerBackend(), tmp_path / "secrets.enc")
    assert store.is_fallback and "no usable OS keyring" in str(store.fallback_reason)


# -- the app's folders ------------------------------------------------------------------------


def app_files(p: AppPaths) -> list[str]:
    """Every file or folder the app writes, by the layer that writes it."""
    sched = SchedulerPaths.default(p.config_dir, p.log_dir)
    names = [p.db_path, p.demo_db_path, p.ratelimit_path, p.export_dir, p.settings_path]
    names += [p.secrets_fallback_path, p.config_dir / "schedules.json"]
    names += [p.data_dir / "schedules" / f"nightly{x}" for x in (".lock", ".lock.json")]
    names += [p.data_dir / "schedules" / "nightly.last.json", p.log_dir / "schedules.log"]
    names += [sched.task_xml_dir / "nightly.xml", sched.task_xml_dir / "schedule.env"]
    return [str(n) for n in names]


@pytest.fixture
def no_override(monkeypatch):
    monkeypatch.delenv("EXPIRYTRACK_HOME", raising=False)
    monkeypatch.delenv("EXPIRYTRACK_DB", raising=False)


def test_windows_folders(no_override, monkeypatch):
    local = r"C:\Users\asha\AppData\Local"
    monkeypatch.setattr(
        platformdirs.windows, "get_win_folder", lambda csidl: {"CSIDL_LOCAL_APPDATA": local}[csidl]
    )
    p = AppPaths.default(platformdirs.windows.Windows("ExpiryTrack", appauthor=False))
    base = PureWindowsPath(local, "ExpiryTrack")  # on Windows itself the separators are all \\
    folders = [PureWindowsPath(str(d)) for d in (p.data_dir, p.config_dir, p.log_dir)]
    assert folders == [base, base, base / "Logs"]
    files = app_files(p)
    assert len(set(files)) == len(files)  # data and config share a folder: no name collides


def test_macos_folders(no_override, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("USERPROFILE", str(tmp_path))  # what ~ means when this runs on Windows
    for name in ("XDG_DATA_HOME", "XDG_CONFIG_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)  # recent platformdirs honour them on macOS too
    p = AppPaths.default(platformdirs.macos.MacOS("ExpiryTrack", appauthor=False))
    support = tmp_path / "Library" / "Application Support" / "ExpiryTrack"
    assert p.data_dir == support and p.config_dir == support
    assert p.log_dir == tmp_path / "Library" / "Logs" / "ExpiryTrack"
    files = app_files(p)
    assert len(set(files)) == len(files)


def test_linux_folders_follow_xdg(no_override, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    p = AppPaths.default(platformdirs.unix.Unix("ExpiryTrack", appauthor=False))
    assert p.data_dir == tmp_path / "data" / "ExpiryTrack"
    assert p.config_dir == tmp_path / "config" / "ExpiryTrack"
    assert p.log_dir == tmp_path / "state" / "ExpiryTrack" / "log"


# -- which scheduler, and what it is given ----------------------------------------------------


class Runner:
    def __init__(self, fail: dict[str, int] | None = None, systemd: bool = False) -> None:
        self.fail = fail or {}
        self.systemd = systemd
        self.calls: list[list[str]] = []

    def __call__(self, argv, input=None):
        argv = list(argv)
        self.calls.append(argv)
        if argv[:3] == ["systemctl", "--user", "show-environment"]:
            return Result(0 if self.systemd else 1)
        code = self.fail.get(argv[1] if len(argv) > 1 else "", 0)
        return Result(code, "", "refused" if code else "")


@pytest.fixture
def spaths(tmp_path) -> SchedulerPaths:
    return SchedulerPaths(tmp_path / "u", tmp_path / "LaunchAgents", tmp_path / "tasks", tmp_path)


@pytest.mark.parametrize(
    ("platform", "systemd", "cls"),
    [
        ("win32", False, SchtasksBackend),
        ("darwin", False, LaunchdBackend),
        ("linux", True, SystemdBackend),
        ("linux", False, CronBackend),
    ],
)
def test_the_platform_picks_its_scheduler(spaths, platform, systemd, cls):
    runner = Runner(systemd=systemd)
    backend = choose_backend(runner, spaths, platform=platform, env={}, uid=501)
    assert type(backend) is cls
    # Windows and macOS never ask systemd
    assert (["systemctl", "--user", "show-environment"] in runner.calls) == (platform == "linux")
    assert type(backend_named(backend.name, runner, spaths, env={}, uid=501)) is cls


def test_windows_task_passes_the_environment_through_cmd(spaths):
    backend = SchtasksBackend(Runner(), spaths, {"EXPIRYTRACK_HOME": r"D:\Expiry Track"})
    s = Schedule("n", ["NIFTY"], ["09:15", "16:30"], days=list(range(7))).validate()
    argv = [r"C:\Program Files\ExpiryTrack\expirytrack.exe", "schedule", "run", "n"]
    command, arguments = backend.action(argv)
    assert command == "cmd.exe"
    assert arguments == (
        r'/d /c set "EXPIRYTRACK_HOME=D:\Expiry Track" && '
        r'"C:\Program Files\ExpiryTrack\expirytrack.exe" schedule run n'
    )
    root = ET.fromstring(backend.xml(s, argv).split("\n", 1)[1])
    ns = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}
    starts = [e.text for e in root.findall("t:Triggers/t:CalendarTrigger/t:StartBoundary", ns)]
    assert starts == ["2020-01-06T09:15:00", "2020-01-06T16:30:00"]
    days = root.find("t:Triggers/t:CalendarTrigger/t:ScheduleByWeek/t:DaysOfWeek", ns)
    assert len(list(days)) == 7
    assert root.find("t:Actions/t:Exec/t:Arguments", ns).text == arguments


def test_windows_refused_install_is_an_error_and_removal_tolerates_a_missing_task(spaths, capsys):
    refusing = Runner(fail={"/Create": 1})
    with hooks.override(runner=refusing, paths=spaths, platform="win32", env={}):
        assert main(["schedule", "add", "-i", "NIFTY", "--all-expiries", "--at", "16:30",
                     "--name", "n"]) == exitcodes.ERROR  # fmt: skip
    assert "schtasks /Create" in capsys.readouterr().err
    runner = Runner(fail={"/Delete": 1})
    with hooks.override(runner=runner, paths=spaths, platform="win32", env={}):
        assert main(["schedule", "add", "-i", "NIFTY", "--all-expiries", "--at", "16:30",
                     "--name", "n", "--no-install"]) == exitcodes.OK  # fmt: skip
        assert main(["schedule", "remove", "n"]) == exitcodes.OK


def test_launchd_daily_and_weekend_intervals(spaths):
    backend = LaunchdBackend(Runner(), spaths, {}, uid=501)
    argv = ["/Applications/ExpiryTrack.app/Contents/MacOS/expirytrack", "schedule", "run", "n"]
    daily = Schedule("n", ["NIFTY"], ["07:05"], days=list(range(7))).validate()
    assert plistlib.loads(backend.plist(daily, argv))["StartCalendarInterval"] == [
        {"Hour": 7, "Minute": 5}
    ]
    weekend = Schedule("n", ["NIFTY"], ["07:05"], days=[5, 6]).validate()
    body = plistlib.loads(backend.plist(weekend, argv))
    assert [i["Weekday"] for i in body["StartCalendarInterval"]] == [6, 0]  # launchd: Sunday = 0
    assert "EnvironmentVariables" not in body and body["ProgramArguments"] == argv


def test_launchd_failed_bootstrap_is_reported_but_bootout_of_nothing_is_not(spaths):
    backend = LaunchdBackend(Runner(fail={"bootout": 3}), spaths, {}, uid=501)
    s = Schedule("n", ["NIFTY"], ["16:30"]).validate()
    assert backend.apply(backend.plan_install(s, ["x"])) == []
    backend = LaunchdBackend(Runner(fail={"bootstrap": 5}), spaths, {}, uid=501)
    (problem,) = backend.apply(backend.plan_install(s, ["x"]))
    assert "launchctl bootstrap gui/501" in problem and "refused" in problem


def test_an_unwritable_agent_folder_is_one_line_and_nothing_is_stored(spaths, capsys):
    spaths.launch_agents_dir.parent.mkdir(parents=True, exist_ok=True)
    spaths.launch_agents_dir.write_text("a file where the folder belongs")
    with hooks.override(runner=Runner(), paths=spaths, platform="darwin", uid=501, env={}):
        assert main(["schedule", "add", "-i", "NIFTY", "--all-expiries", "--at", "16:30",
                     "--name", "n"]) == exitcodes.ERROR  # fmt: skip
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line.startswith("error: cannot write ") and "LaunchAgents" in line
    assert ScheduleStore(AppPaths.default().config_dir / "schedules.json").load() == []
