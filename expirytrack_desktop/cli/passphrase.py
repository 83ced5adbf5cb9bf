"""The CLI's passphrase prompt for the encrypted secrets file (the keyring fallback).

One prompt for every command: ``EXPIRYTRACK_PASSPHRASE`` when set (scheduled runs, scripts),
else the terminal. A NEW passphrase is typed twice and must match, because a typo would lock
the user out of a file nobody can recover; an existing one is asked once (a wrong one is
refused by the store without changing anything). Used as the store's
:data:`~expirytrack_desktop.auth.secrets.PassphraseCallback`.
"""

from __future__ import annotations

import getpass as _getpass
import os
import sys
from collections.abc import Callable, Mapping
from typing import TextIO

from expirytrack_desktop.auth.secrets import MIN_NEW_PASSPHRASE

PASSPHRASE_ENV = "EXPIRYTRACK_PASSPHRASE"
NEW_ATTEMPTS = 3
"""Pairs a user may type for a new passphrase before the command gives up."""


def ask_passphrase(
    creating: bool,
    *,
    environ: Mapping[str, str] | None = None,
    stdin: TextIO | None = None,
    err: TextIO | None = None,
    getpass: Callable[[str], str] | None = None,
) -> str | None:
    """The passphrase, or ``None`` when there is none to be had (the store then says how).

    ``creating``: a new file is about to be made, so the passphrase is asked twice (up to
    :data:`NEW_ATTEMPTS` pairs) and must be at least ``MIN_NEW_PASSPHRASE`` characters.
    Everything the prompt touches can be injected (tests); by default the process's own.
    """
    env = os.environ if environ is None else environ
    stdin = sys.stdin if stdin is None else stdin
    err = sys.stderr if err is None else err
    read = _getpass.getpass if getpass is None else getpass
    value = env.get(PASSPHRASE_ENV)
    if value:
        return value
    if stdin is None or not stdin.isatty():
        print(
            f"The secrets are in the encrypted fallback file: set {PASSPHRASE_ENV} or run "
            "this command in a terminal to type the passphrase.",
            file=err,
        )
        return None
    if not creating:
        return read("Passphrase of the ExpiryTrack secrets file: ") or None
    print(
        "No usable OS keyring: ExpiryTrack keeps your API secret and token in a file "
        "encrypted with a passphrase. It cannot be recovered if forgotten.",
        file=err,
    )
    for _ in range(NEW_ATTEMPTS):
        first = read(f"Choose a passphrase for the secrets file ({MIN_NEW_PASSPHRASE}+ chars): ")
        if not first:
            return None
        if len(first) < MIN_NEW_PASSPHRASE:
            print(f"Too short: use at least {MIN_NEW_PASSPHRASE} characters.", file=err)
            continue
        if read("Repeat the passphrase: ") == first:
            return first
        print("The two passphrases differ.", file=err)
    print("No passphrase chosen: nothing was stored.", file=err)
    return None


def cli_passphrase(creating: bool) -> str | None:
    """:func:`ask_passphrase` with the process's environment and terminal."""
    return ask_passphrase(creating)
