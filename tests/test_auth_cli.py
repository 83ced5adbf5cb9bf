"""``expirytrack configure | login | logout | whoami`` against the simulator on a loopback port."""

from __future__ import annotations

import io
import socket
import threading
import webbrowser

import httpx
import keyring
import keyring.backends.fail
import pytest

from expirytrack_desktop import runtime
from expirytrack_desktop.auth.secrets import ACCESS_TOKEN, API_KEY, API_SECRET, SERVICE
from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.main import main
from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.sandbox import Market, SimulatorApp, serve

KEY = "cli-client-0001"
SECRET = "cli-secret-0001"
PASS = "a long passphrase"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def sim():
    return SimulatorApp(Market(underlyings=("NSE_INDEX|Nifty 50",)), rate_limit=None)


@pytest.fixture
def api(sim):
    with serve(sim) as base:
        yield base


@pytest.fixture
def redirect(sim):
    uri = f"http://127.0.0.1:{free_port()}/callback"
    sim.register_client(KEY, SECRET, uri)
    return uri


@pytest.fixture
def browser(monkeypatch):
    """Replaces the system browser: follows the dialog's redirect in a thread. The page
    arrives after the CLI returns (it is answered once the token is stored): ``.join()``."""
    threads: list[threading.Thread] = []

    class Pages(list[httpx.Response]):
        def join(self) -> None:
            for t in threads:
                t.join(10)

    pages = Pages()

    def open_(url: str) -> bool:
        def run() -> None:
            with httpx.Client(trust_env=False, follow_redirects=True, timeout=10) as b:
                pages.append(b.get(url))

        t = threading.Thread(target=run)
        t.start()
        threads.append(t)
        return True

    monkeypatch.setattr(webbrowser, "open", open_)
    yield pages
    pages.join()


def stdin(monkeypatch, text: str) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO(text))


def configure(monkeypatch, redirect: str, secret: str = SECRET) -> int:
    stdin(monkeypatch, secret + "\n")
    return main(["configure", "--api-key", KEY, "--api-secret-stdin", "--redirect-uri", redirect])


def test_configure_validates_and_stores(monkeypatch, memory_keyring, capsys, redirect):
    assert configure(monkeypatch, redirect) == exitcodes.OK
    out = capsys.readouterr().out
    assert "Saved API key" in out and "OS keyring" in out and SECRET not in out
    assert memory_keyring.store[(SERVICE, API_KEY)] == KEY
    assert memory_keyring.store[(SERVICE, API_SECRET)] == SECRET

    stdin(monkeypatch, "x\n")
    rc = main(["configure", "--api-key", KEY, "--api-secret-stdin", "--redirect-uri", redirect])
    assert rc == exitcodes.BAD_INPUT
    assert "API secret" in capsys.readouterr().err
    rc = main(
        ["configure", "--api-key", KEY, "--api-secret-stdin", "--redirect-uri", "https://x.com/cb"]
    )
    assert rc == exitcodes.BAD_INPUT
    assert memory_keyring.store[(SERVICE, API_SECRET)] == SECRET  # unchanged


def test_configure_without_terminal_needs_options(monkeypatch, capsys):
    stdin(monkeypatch, "")
    assert main(["configure"]) == exitcodes.BAD_INPUT
    assert "pass it as an option" in capsys.readouterr().err


def test_login_whoami_logout(monkeypatch, api, redirect, browser, memory_keyring, capsys, sim):
    assert configure(monkeypatch, redirect) == exitcodes.OK
    assert main(["login", "--api-base", api, "--timeout", "20"]) == exitcodes.OK
    out = capsys.readouterr().out
    assert "Logged in: Demo Trader (DEMO01), token valid until" in out
    assert api + "/v2/login/authorization/dialog?" in out
    browser.join()
    assert browser[0].status_code == 200 and "Login complete" in browser[0].text
    token = memory_keyring.store[(SERVICE, ACCESS_TOKEN)]
    assert token not in out

    assert main(["whoami", "--api-base", api]) == exitcodes.OK
    out = capsys.readouterr().out
    assert "OS keyring" in out and "fallback" not in out
    assert "Upstox confirms: Demo Trader (DEMO01" in out and "valid until" in out

    assert main(["logout", "--api-base", api]) == exitcodes.OK
    assert "revoked" in capsys.readouterr().out
    assert (SERVICE, ACCESS_TOKEN) not in memory_keyring.store
    assert main(["whoami", "--api-base", api, "--offline"]) == exitcodes.NEEDS_LOGIN
    assert "Not logged in" in capsys.readouterr().out
    # The revoked token no longer works at "Upstox".
    with httpx.Client(trust_env=False) as c:
        r = c.get(api + "/v2/user/profile", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401


def test_logout_deletes_locally_when_upstox_is_unreachable(
    monkeypatch, api, redirect, browser, memory_keyring, capsys
):
    configure(monkeypatch, redirect)
    assert main(["login", "--api-base", api]) == exitcodes.OK
    dead = f"http://127.0.0.1:{free_port()}"
    with runtime.override(client_kwargs={"max_attempts": 1}):
        assert main(["logout", "--api-base", dead]) == exitcodes.OK
    out = capsys.readouterr().out
    assert "removed it from this computer anyway" in out
    assert (SERVICE, ACCESS_TOKEN) not in memory_keyring.store


def test_login_no_browser_prints_url_then_times_out(monkeypatch, api, redirect, capsys):
    configure(monkeypatch, redirect)
    rc = main(["login", "--api-base", api, "--no-browser", "--timeout", "0.3"])
    assert rc == exitcodes.NEEDS_LOGIN
    captured = capsys.readouterr()
    assert "Open this URL in your browser" in captured.out
    assert "No answer from the browser within 0.3 s" in captured.err


def test_login_wrong_secret(monkeypatch, api, redirect, browser, memory_keyring, capsys):
    configure(monkeypatch, redirect, secret="wrong-secret-1")
    assert main(["login", "--api-base", api]) == exitcodes.BAD_INPUT
    err = capsys.readouterr().err
    assert "UDAPI100016" in err and "wrong-secret-1" not in err
    assert (SERVICE, ACCESS_TOKEN) not in memory_keyring.store


def test_login_unconfigured(capsys):
    assert main(["login"]) == exitcodes.BAD_INPUT
    assert "expirytrack configure" in capsys.readouterr().err


def test_login_port_in_use(monkeypatch, api, redirect, capsys):
    configure(monkeypatch, redirect)
    port = int(redirect.rsplit(":", 1)[1].split("/")[0])
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
        s.listen(1)
        assert main(["login", "--api-base", api]) == exitcodes.BAD_INPUT
    assert "already in use" in capsys.readouterr().err


def test_pasted_token(monkeypatch, api, sim, memory_keyring, capsys):
    token = sim.issue_token()
    stdin(monkeypatch, token + "\n")
    assert main(["login", "--api-base", api, "--token-stdin"]) == exitcodes.OK
    assert "Logged in: Demo Trader" in capsys.readouterr().out
    assert memory_keyring.store[(SERVICE, ACCESS_TOKEN)] == token

    stdin(monkeypatch, "sim-token-thisisnotavalidtoken\n")
    assert main(["login", "--api-base", api, "--token-stdin"]) == exitcodes.NEEDS_LOGIN
    assert "rejected the pasted access token" in capsys.readouterr().err
    assert memory_keyring.store[(SERVICE, ACCESS_TOKEN)] == token  # the good one is kept


def test_demo_login_and_whoami(capsys, memory_keyring):
    assert main(["login", "--demo", "--timeout", "20"]) == exitcodes.OK
    assert "Logged in: Demo Trader (DEMO01)" in capsys.readouterr().out
    assert memory_keyring.store == {}  # nothing stored for the demo
    assert main(["whoami", "--demo"]) == exitcodes.OK
    assert "Demo Trader" in capsys.readouterr().out


# -- the encrypted fallback through the CLI ----------------------------------------------------


@pytest.fixture
def no_keyring(monkeypatch):
    keyring.set_keyring(keyring.backends.fail.Keyring())  # conftest restores the previous one
    monkeypatch.setenv("EXPIRYTRACK_PASSPHRASE", PASS)


def test_fallback_login_and_whoami(monkeypatch, api, redirect, browser, no_keyring, capsys):
    assert configure(monkeypatch, redirect) == exitcodes.OK
    assert "WARNING: encrypted-file fallback active" in capsys.readouterr().out
    assert main(["login", "--api-base", api]) == exitcodes.OK
    capsys.readouterr()
    assert main(["whoami", "--api-base", api]) == exitcodes.OK
    out = capsys.readouterr().out
    assert "encrypted file" in out and "WARNING: encrypted-file fallback active" in out
    assert "Upstox confirms: Demo Trader" in out

    path = AppPaths.default().secrets_fallback_path
    before = path.read_bytes()
    monkeypatch.setenv("EXPIRYTRACK_PASSPHRASE", "the wrong passphrase")
    assert main(["whoami", "--offline"]) == exitcodes.STORAGE
    assert "wrong passphrase" in capsys.readouterr().err
    assert main(["logout", "--api-base", api]) == exitcodes.STORAGE
    assert path.read_bytes() == before


def test_fallback_without_passphrase(no_keyring, monkeypatch, capsys):
    monkeypatch.delenv("EXPIRYTRACK_PASSPHRASE")
    stdin(monkeypatch, SECRET + "\n")
    rc = main(["configure", "--api-key", KEY, "--api-secret-stdin"])
    assert rc == exitcodes.STORAGE
    assert "EXPIRYTRACK_PASSPHRASE" in capsys.readouterr().err
    assert not AppPaths.default().secrets_fallback_path.exists()


class TtyInput(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_configure_prompts_on_a_terminal(monkeypatch, memory_keyring, capsys):
    answers = iter([KEY, ""])  # API key, then Enter for the default redirect URI
    secrets = iter([SECRET])
    monkeypatch.setattr("sys.stdin", TtyInput(""))
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(secrets))
    assert main(["configure"]) == exitcodes.OK
    assert memory_keyring.store[(SERVICE, API_SECRET)] == SECRET
    assert memory_keyring.store[(SERVICE, "redirect_uri")] == "http://127.0.0.1:8765/callback"
    # Again: Enter keeps the stored key and secret.
    answers = iter(["", ""])
    secrets = iter([""])
    assert main(["configure"]) == exitcodes.OK
    assert memory_keyring.store[(SERVICE, API_KEY)] == KEY
    assert memory_keyring.store[(SERVICE, API_SECRET)] == SECRET
    assert SECRET not in capsys.readouterr().out


def test_cli_passphrase_sources(monkeypatch, capsys):
    from expirytrack_desktop.cli.passphrase import cli_passphrase

    monkeypatch.setenv("EXPIRYTRACK_PASSPHRASE", PASS)
    assert cli_passphrase(True) == PASS
    monkeypatch.delenv("EXPIRYTRACK_PASSPHRASE")
    monkeypatch.setattr("sys.stdin", io.StringIO(""))
    assert cli_passphrase(False) is None
    assert "EXPIRYTRACK_PASSPHRASE" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", TtyInput(""))
    typed = iter([PASS, "different passphrase", PASS, PASS])
    monkeypatch.setattr("getpass.getpass", lambda prompt="": next(typed))
    assert cli_passphrase(True) == PASS  # the first pair differed: asked again
    assert "differ" in capsys.readouterr().err
    assert next(typed, None) is None
