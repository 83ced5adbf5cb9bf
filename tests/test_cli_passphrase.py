"""The CLI's one passphrase prompt: a new secrets file's passphrase is typed twice and must
match (every command that can create the file), an existing one is asked once."""

from __future__ import annotations

import io

import keyring
import keyring.backends.fail
import pytest

from expirytrack_desktop.auth.secrets import SecretStore
from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.cli.passphrase import NEW_ATTEMPTS, ask_passphrase
from expirytrack_desktop.notify import SMTP_PASSWORD
from expirytrack_desktop.paths import AppPaths

PASS = "correct horse battery"
SMTP = "smtp-Pa55word-7781"


class Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


def typed(*answers: str):
    it = iter(answers)
    prompts: list[str] = []

    def getpass(prompt: str = "") -> str:
        prompts.append(prompt)
        return next(it)

    getpass.prompts = prompts  # type: ignore[attr-defined]
    getpass.left = it  # type: ignore[attr-defined]
    return getpass


def ask(creating: bool, *answers: str, env: dict[str, str] | None = None):
    err = io.StringIO()
    gp = typed(*answers)
    value = ask_passphrase(creating, environ=env or {}, stdin=Tty(), err=err, getpass=gp)
    return value, gp, err.getvalue()


def test_new_passphrase_must_be_typed_twice_the_same():
    value, gp, _err = ask(True, PASS, PASS)
    assert value == PASS
    assert len(gp.prompts) == 2 and "Repeat" in gp.prompts[1]


def test_a_mismatch_or_a_short_one_is_asked_again():
    value, gp, err = ask(True, PASS, PASS + "x", "short", PASS, PASS)
    assert value == PASS
    assert "differ" in err and "Too short" in err
    assert next(gp.left, None) is None


def test_gives_up_after_the_last_attempt():
    answers = [a for _ in range(NEW_ATTEMPTS) for a in (PASS, "something else")]
    value, _gp, err = ask(True, *answers)
    assert value is None
    assert "nothing was stored" in err


def test_empty_first_entry_cancels():
    assert ask(True, "")[0] is None


def test_existing_passphrase_is_asked_once():
    value, gp, _ = ask(False, "any old passphrase")
    assert value == "any old passphrase" and len(gp.prompts) == 1


def test_environment_wins_and_no_terminal_says_how():
    value, gp, _ = ask(True, env={"EXPIRYTRACK_PASSPHRASE": PASS})
    assert value == PASS and gp.prompts == []
    err = io.StringIO()
    assert ask_passphrase(False, environ={}, stdin=io.StringIO(), err=err) is None
    assert "EXPIRYTRACK_PASSPHRASE" in err.getvalue()


@pytest.fixture
def no_keyring(monkeypatch):
    keyring.set_keyring(keyring.backends.fail.Keyring())  # conftest restores the previous one
    monkeypatch.delenv("EXPIRYTRACK_PASSPHRASE", raising=False)


def notify_configure(monkeypatch, *getpass_answers: str) -> int:
    monkeypatch.setattr("sys.stdin", Tty(""))
    monkeypatch.setattr("getpass.getpass", typed(*getpass_answers))
    return main(["notify", "configure", "--user", "mailer", "--ask-password"])


def test_notify_configure_confirms_the_new_secrets_passphrase(no_keyring, monkeypatch, capsys):
    # SMTP password, then the new file's passphrase: a mistyped repeat, then a matching pair
    rc = notify_configure(monkeypatch, SMTP, PASS, PASS[:-1] + "!", PASS, PASS)
    assert rc == exitcodes.OK
    assert "differ" in capsys.readouterr().err
    path = AppPaths.default().secrets_fallback_path
    assert path.exists() and SMTP.encode() not in path.read_bytes()
    store = SecretStore(keyring.get_keyring(), path, lambda _creating: PASS)
    assert store.get(SMTP_PASSWORD) == SMTP


def test_notify_configure_creates_nothing_without_a_confirmed_passphrase(
    no_keyring, monkeypatch, capsys
):
    answers = [a for _ in range(NEW_ATTEMPTS) for a in (PASS, "not the same one")]
    rc = notify_configure(monkeypatch, SMTP, *answers)
    assert rc == exitcodes.STORAGE
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and SMTP not in err
    assert not AppPaths.default().secrets_fallback_path.exists()
