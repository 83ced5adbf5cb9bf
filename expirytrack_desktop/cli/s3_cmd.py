"""``expirytrack s3 configure | show | forget``: the S3 credentials exports use, kept in the
secret store (OS keyring, else the encrypted file) like the Upstox ones.

Without them, exports to ``s3://`` take the standard AWS chain (environment, profile, instance
role); with them, the CLI and the window use them first (``export/s3.py``). A scheduled run
has no window to ask a passphrase and reads the AWS chain only. The secret access key is never
printed, logged or echoed.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.failure import fail
from expirytrack_desktop.export.s3 import SECRET_NAMES

if TYPE_CHECKING:
    from expirytrack_desktop.auth.secrets import SecretStore

KEY_ID, SECRET, TOKEN = SECRET_NAMES


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser(
        "s3",
        help="S3 credentials for exports to s3:// (kept in the secret store)",
        description="Store, show or forget the S3 access key exports to s3://bucket/prefix/ use"
        " (else the AWS environment, profile or instance role applies).",
    )
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    c = sub.add_parser("configure", parents=[common], help="store an access key and its secret")
    c.add_argument("--access-key-id", metavar="ID", help="asked for when omitted")
    c.add_argument(
        "--secret-stdin",
        action="store_true",
        help="read the secret access key from the first line of standard input",
    )
    c.add_argument(
        "--session-token-stdin",
        action="store_true",
        help="then read a session token (temporary credentials) from the next line",
    )
    c.set_defaults(func=cmd_configure)
    s = sub.add_parser("show", parents=[common], help="which access key is stored, and where")
    s.set_defaults(func=cmd_show)
    f = sub.add_parser("forget", parents=[common], help="delete the stored S3 credentials")
    f.set_defaults(func=cmd_forget)


def _store() -> SecretStore:
    from expirytrack_desktop.cli.auth_cmd import open_secret_store

    return open_secret_store()


def cmd_configure(args: argparse.Namespace) -> int:
    from expirytrack_desktop.auth.credentials import CredentialsError
    from expirytrack_desktop.auth.secrets import SecretStoreError
    from expirytrack_desktop.cli.auth_cmd import ask, mask

    try:
        key_id = (args.access_key_id or "").strip() or ask("S3 access key ID: ")
        if args.secret_stdin:
            secret = sys.stdin.readline().strip()
        else:
            secret = ask("S3 secret access key: ", secret=True)
        token = sys.stdin.readline().strip() if args.session_token_stdin else ""
    except CredentialsError as exc:
        return fail(exitcodes.BAD_INPUT, str(exc))
    if not key_id or any(ch.isspace() for ch in key_id):
        return fail(exitcodes.BAD_INPUT, "the S3 access key ID is one word, not empty")
    if not secret:
        return fail(exitcodes.BAD_INPUT, "the S3 secret access key is empty")
    if args.session_token_stdin and not token:
        return fail(exitcodes.BAD_INPUT, "the S3 session token is empty")
    try:
        store = _store()
        store.set_many({KEY_ID: key_id, SECRET: secret, **({TOKEN: token} if token else {})})
        if not token:
            store.delete(TOKEN)  # a token of earlier credentials would not fit these
    except SecretStoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    what = " and session token" if token else ""
    print(f"Saved S3 access key {mask(key_id)}, its secret{what} in {store.backend_name}.")
    return exitcodes.OK


def cmd_show(args: argparse.Namespace) -> int:
    from expirytrack_desktop.auth.secrets import SecretStoreError
    from expirytrack_desktop.cli.auth_cmd import mask

    try:
        store = _store()
        got = store.get_many((KEY_ID, SECRET, TOKEN))
    except SecretStoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    if not got.get(KEY_ID) or not got.get(SECRET):
        print(
            "No S3 credentials stored: exports to s3:// use the AWS environment"
            " (AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY), AWS_PROFILE or ~/.aws/credentials."
        )
        return exitcodes.OK
    token = ", with a session token" if got.get(TOKEN) else ""
    print(f"S3 access key {mask(str(got[KEY_ID]))}{token}, in {store.backend_name}.")
    return exitcodes.OK


def cmd_forget(args: argparse.Namespace) -> int:
    from expirytrack_desktop.auth.secrets import SecretStoreError

    try:
        store = _store()
        store.delete_many((KEY_ID, SECRET, TOKEN))
    except SecretStoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    print(f"S3 credentials deleted from {store.backend_name}.")
    return exitcodes.OK
