"""``expirytrack configure | login | logout | whoami``: credentials, login and the token.

Also :func:`open_secret_store`, which other commands use to reach the secrets the same way
(with the one passphrase prompt, :func:`expirytrack_desktop.cli.passphrase.cli_passphrase`).
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import os
import socket
import sys
from collections.abc import Callable
from typing import Any, TextIO

from expirytrack_desktop.auth.credentials import (
    DEFAULT_REDIRECT_URI,
    Credentials,
    CredentialsError,
    delete_credentials,
    load_credentials,
    mask,
    save_credentials,
    validate_credentials,
)
from expirytrack_desktop.auth.oauth import (
    DEFAULT_TIMEOUT,
    LoginCancelledError,
    OAuthLogin,
    PortInUseError,
    scripted_browser,
)
from expirytrack_desktop.auth.secrets import (
    API_KEY,
    API_SECRET,
    REDIRECT_URI,
    PassphraseCallback,
    SecretStore,
    SecretStoreError,
)
from expirytrack_desktop.auth.token import (
    TokenError,
    TokenInfo,
    TokenManager,
    profile_via,
    revoke_via,
)
from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.context import runtime_from
from expirytrack_desktop.cli.failure import error
from expirytrack_desktop.cli.passphrase import PASSPHRASE_ENV, cli_passphrase
from expirytrack_desktop.paths import AppPaths
from expirytrack_desktop.timeutil import now_utc
from expirytrack_desktop.upstox.errors import AuthError, LoginError, ServerError, UpstoxError

TOKEN_ENV = "EXPIRYTRACK_ACCESS_TOKEN"
DEMO_API_BASE = "http://demo.expirytrack.invalid"  # never resolved: in-process transport
_LOGIN_CREDENTIAL_CODES = ("UDAPI100016", "UDAPI100068")


# -- helpers shared with the other commands --------------------------------------------------


def open_secret_store(
    paths: AppPaths | None = None, passphrase: PassphraseCallback | None = cli_passphrase
) -> SecretStore:
    """The user's secret store (OS keyring, else the encrypted file under ``paths``)."""
    return SecretStore.for_paths(paths or AppPaths.default(), passphrase)


def _print_backend(store: SecretStore, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    print(f"Secrets stored in: {store.backend_name}", file=out)
    if store.is_fallback:
        print(
            "WARNING: encrypted-file fallback active (no usable OS keyring); the passphrase "
            f"is needed to read it (interactive prompt or {PASSPHRASE_ENV}).",
            file=out,
        )


def _guard(fn: Callable[[argparse.Namespace], int]) -> Callable[[argparse.Namespace], int]:
    """Turn the expected failures into a one-line message and a documented exit code."""

    def run(args: argparse.Namespace) -> int:
        try:
            return fn(args)
        except SecretStoreError as exc:
            error(str(exc))
            return exitcodes.STORAGE
        except CredentialsError as exc:
            error(str(exc))
            return exitcodes.BAD_INPUT
        except TokenError as exc:
            error(str(exc))
            return exitcodes.NEEDS_LOGIN
        except LoginCancelledError:
            print("Login cancelled.", file=sys.stderr)
            return exitcodes.CANCELLED
        except LoginError as exc:
            error(exc.message)
            if isinstance(exc, PortInUseError) or exc.code in _LOGIN_CREDENTIAL_CODES:
                return exitcodes.BAD_INPUT
            return exitcodes.NEEDS_LOGIN
        except AuthError as exc:
            error(exc.message)
            return exitcodes.NEEDS_LOGIN
        except ServerError as exc:
            error(f"Upstox could not be reached: {exc.message}")
            return exitcodes.NETWORK
        except UpstoxError as exc:
            error(exc.message)
            return exitcodes.ERROR

    run.__name__ = fn.__name__
    run.__doc__ = fn.__doc__
    return run


# -- configure ---------------------------------------------------------------------------------


def ask(prompt: str, *, secret: bool = False) -> str:
    """One answer from the terminal (a secret without echo); with no terminal, a
    CredentialsError saying to pass it as an option."""
    if not sys.stdin or not sys.stdin.isatty():
        raise CredentialsError(
            "input", f"{prompt.rstrip(': ')} missing and no terminal to ask: pass it as an option"
        )
    return (getpass.getpass(prompt) if secret else input(prompt)).strip()


@_guard
def cmd_configure(args: argparse.Namespace) -> int:
    """Store the Upstox app's API key, API secret and redirect URI (validated)."""
    if args.demo:
        print("Demo mode needs no configuration: `expirytrack login --demo` uses the simulator.")
        return exitcodes.OK
    store = open_secret_store()
    current = (
        load_credentials(store) if (args.api_key is None or not args.api_secret_stdin) else None
    )
    api_key = args.api_key
    if api_key is None:
        hint = f" [Enter keeps {mask(current.api_key)}]" if current else ""
        api_key = ask(f"API key{hint}: ") or (current.api_key if current else "")
    if args.api_secret_stdin:
        api_secret = sys.stdin.readline().strip()
    else:
        hint = " [Enter keeps the current one]" if current else ""
        api_secret = ask(f"API secret{hint}: ", secret=True) or (
            current.api_secret if current else ""
        )
    redirect = args.redirect_uri
    if redirect is None:
        default = current.redirect_uri if current else DEFAULT_REDIRECT_URI
        if sys.stdin and sys.stdin.isatty() and not args.api_secret_stdin:
            redirect = ask(f"Redirect URI registered in your Upstox app [{default}]: ") or default
        else:
            redirect = default
    creds = validate_credentials(api_key, api_secret, redirect)
    save_credentials(store, creds)
    print(f"Saved API key {mask(creds.api_key)}, API secret and redirect URI {creds.redirect_uri}.")
    _print_backend(store)
    print("Next: `expirytrack login`.")
    return exitcodes.OK


# -- login -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _print_login(info: TokenInfo, store: SecretStore | None) -> None:
    print(f"Logged in: {info.describe(now_utc())}.")
    if store is not None:
        _print_backend(store)


async def _login_demo(args: argparse.Namespace) -> int:
    from expirytrack_desktop.sandbox import Market, SimulatorApp, demo_client_credentials
    from expirytrack_desktop.upstox.client import UpstoxClient
    from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec

    sim = SimulatorApp(Market(underlyings=("NSE_INDEX|Nifty 50",)), rate_limit=None)
    demo = demo_client_credentials()
    redirect = f"http://127.0.0.1:{_free_port()}/callback"
    sim.register_client(demo.client_id, demo.client_secret, redirect)
    store = _MemoryStore()
    tokens = TokenManager(store)  # type: ignore[arg-type]
    limiter = RateLimiter(RateLimitSpec.parse("50/1"))
    async with UpstoxClient(DEMO_API_BASE, limiter=limiter, transport=sim.transport()) as client:
        login = OAuthLogin(
            Credentials(demo.client_id, demo.client_secret, redirect),
            client,
            tokens,
            api_base=DEMO_API_BASE,
            opener=scripted_browser(sim.transport()),
            on_url=lambda url: print(f"Demo login: the simulated browser opens {url}"),
            timeout=args.timeout,
            transport=sim.transport(),
        )
        info = await login.run()
    _print_login(info, None)
    print(
        "Demo mode: this token lives in the simulator of this process only and is not stored; "
        "demo commands (`--demo`) use the simulator's built-in demo account."
    )
    return exitcodes.OK


class _MemoryStore:
    """A throw-away store for the demo login (nothing written anywhere)."""

    is_fallback = False
    backend_name = "memory (demo)"

    def __init__(self) -> None:
        self._d: dict[str, str] = {}

    def get_many(self, names: list[str]) -> dict[str, str | None]:
        return {n: self._d.get(n) for n in names}

    def set_many(self, values: dict[str, str]) -> None:
        self._d.update(values)

    def delete_many(self, names: list[str]) -> None:
        for n in names:
            self._d.pop(n, None)


async def _login_pasted(args: argparse.Namespace, token: str) -> int:
    rt = runtime_from(args)
    store = rt.secret_store(cli_passphrase)
    tokens = TokenManager(store)
    async with rt.make_client(None) as client:
        info = await tokens.save_pasted_token(token, profile_via(client))
    _print_login(info, store)
    return exitcodes.OK


async def _login_oauth(args: argparse.Namespace) -> int:
    import webbrowser

    rt = runtime_from(args)
    store = rt.secret_store(cli_passphrase)
    creds = load_credentials(store)
    if creds is None:
        error("no API key/secret configured: run `expirytrack configure` first")
        return exitcodes.BAD_INPUT
    tokens = TokenManager(store)

    def show(url: str) -> None:
        if args.no_browser:
            print("Open this URL in your browser to log in to Upstox:")
        else:
            print("Opening your browser to log in to Upstox. If it does not open, visit:")
        print(f"  {url}", flush=True)
        print(
            f"Waiting up to {args.timeout:g} s for the login (Ctrl+C cancels)...",
            file=sys.stderr,
            flush=True,
        )

    async with rt.make_client(None) as client:
        login = OAuthLogin(
            creds,
            client,
            tokens,
            api_base=rt.api_base,
            opener=None if args.no_browser else webbrowser.open,
            on_url=show,
            timeout=args.timeout,
            transport=rt.transport(),
        )
        info = await login.run()
    _print_login(info, store)
    return exitcodes.OK


@_guard
def cmd_login(args: argparse.Namespace) -> int:
    """Log in through the browser (OAuth), or store a pasted token after checking it."""
    if args.timeout is not None and args.timeout <= 0:
        error("--timeout must be positive")
        return exitcodes.BAD_INPUT
    token = None
    if args.token_stdin:
        token = sys.stdin.readline().strip()
    elif args.token is not None:
        print(
            "note: a token on the command line can end up in your shell history; "
            "prefer --token-stdin.",
            file=sys.stderr,
        )
        token = args.token
    if args.demo:
        if token is not None:
            error("--token cannot be combined with --demo")
            return exitcodes.BAD_INPUT
        return asyncio.run(_login_demo(args))
    if token is not None:
        return asyncio.run(_login_pasted(args, token))
    return asyncio.run(_login_oauth(args))


# -- logout / whoami -----------------------------------------------------------------------------


@_guard
def cmd_logout(args: argparse.Namespace) -> int:
    """Revoke the token at Upstox and delete it here (deleted even if the revoke fails)."""
    if args.demo:
        print("Demo mode: nothing stored, nothing to log out of.")
        return exitcodes.OK
    rt = runtime_from(args)
    store = rt.secret_store(cli_passphrase)

    async def run() -> int:
        async with rt.make_client(None) as client:
            result = await TokenManager(store).logout(revoke_via(client))
        print(result.message)
        return exitcodes.OK

    code = asyncio.run(run())
    if args.forget_credentials:
        delete_credentials(store)
        print("Removed the API key, API secret and redirect URI as well.")
    return code


@_guard
def cmd_whoami(args: argparse.Namespace) -> int:
    """Who is logged in, until when, and where the secrets are kept."""
    if args.demo:
        return asyncio.run(_whoami_demo())
    rt = runtime_from(args)
    store = rt.secret_store(cli_passphrase)
    _print_backend(store)
    values = store.get_many([API_KEY, API_SECRET, REDIRECT_URI])
    if values[API_KEY] and values[API_SECRET]:
        print(
            f"API key: {mask(values[API_KEY])}, redirect URI: "
            f"{values[REDIRECT_URI] or DEFAULT_REDIRECT_URI}"
        )
    else:
        print("API key/secret: not configured (`expirytrack configure`).")
    env_token = os.environ.get(TOKEN_ENV, "").strip()
    tokens = TokenManager(store)
    info = tokens.info()
    if env_token:
        print(f"Using the access token from {TOKEN_ENV} (the stored one is ignored).")
    elif info is None:
        print("Not logged in: run `expirytrack login`.")
        return exitcodes.NEEDS_LOGIN
    else:
        print(f"Token: {info.describe(now_utc())}")
        if not info.is_valid(now_utc()):
            return exitcodes.NEEDS_LOGIN
    if args.offline:
        return exitcodes.OK
    token = env_token or tokens.require_access_token()

    async def check() -> int:
        async with rt.make_client(None) as client:
            profile = await profile_via(client)(token)
        print(f"Upstox confirms: {profile.user_name} ({profile.user_id}, {profile.email}).")
        return exitcodes.OK

    try:
        return asyncio.run(check())
    except AuthError:
        error("Upstox rejected the token (revoked or expired): run `expirytrack login`.")
        return exitcodes.NEEDS_LOGIN


async def _whoami_demo() -> int:
    from expirytrack_desktop.sandbox import DEMO_ACCESS_TOKEN, Market, SimulatorApp
    from expirytrack_desktop.upstox.client import UpstoxClient
    from expirytrack_desktop.upstox.limiter import RateLimiter, RateLimitSpec

    sim = SimulatorApp(Market(underlyings=("NSE_INDEX|Nifty 50",)), rate_limit=None)
    limiter = RateLimiter(RateLimitSpec.parse("50/1"))
    async with UpstoxClient(
        DEMO_API_BASE, access_token=DEMO_ACCESS_TOKEN, limiter=limiter, transport=sim.transport()
    ) as client:
        profile = await client.get_profile()
    print(f"Demo mode: logged in to the simulator as {profile.user_name} ({profile.user_id}).")
    print("Secrets stored in: nothing (demo mode uses the simulator's built-in token)")
    return exitcodes.OK


# -- registration ----------------------------------------------------------------------------


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "configure",
        parents=[common],
        help="store your Upstox app's API key, secret and redirect URI",
        description="Store the API key, API secret and redirect URI of your Upstox app "
        "(developer console) in the OS keyring, or an encrypted file when there is none. "
        "Omitted values are asked for; the secret is never echoed.",
    )
    p.add_argument("--api-key", metavar="KEY")
    p.add_argument(
        "--api-secret-stdin",
        action="store_true",
        help="read the API secret from the first line of standard input",
    )
    p.add_argument(
        "--redirect-uri",
        metavar="URI",
        help=f"loopback redirect registered in your Upstox app (default {DEFAULT_REDIRECT_URI})",
    )
    p.set_defaults(func=cmd_configure)

    p = subparsers.add_parser(
        "login",
        parents=[common],
        help="log in to Upstox (browser), or store a pasted access token",
        description="Opens Upstox's login page in your browser and waits for it to come back "
        "to the redirect URI on this computer. The token is valid until 03:30 IST.",
    )
    p.add_argument("--no-browser", action="store_true", help="print the URL instead of opening it")
    p.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_TIMEOUT,
        metavar="S",
        help=f"seconds to wait for the browser (default {DEFAULT_TIMEOUT:g})",
    )
    g = p.add_mutually_exclusive_group()
    g.add_argument("--token", metavar="TOKEN", help="a token generated on Upstox's console")
    g.add_argument(
        "--token-stdin", action="store_true", help="read such a token from standard input"
    )
    p.set_defaults(func=cmd_login)

    p = subparsers.add_parser(
        "logout", parents=[common], help="revoke the access token and delete it here"
    )
    p.add_argument(
        "--forget-credentials",
        action="store_true",
        help="also delete the stored API key, secret and redirect URI",
    )
    p.set_defaults(func=cmd_logout)

    p = subparsers.add_parser(
        "whoami",
        parents=[common],
        help="who is logged in, until when, and where secrets are kept",
    )
    p.add_argument("--offline", action="store_true", help="do not ask Upstox to confirm the token")
    p.set_defaults(func=cmd_whoami)
