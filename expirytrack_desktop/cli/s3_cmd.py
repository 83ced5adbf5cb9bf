"""``expirytrack s3 configure | show | forget``: the S3 credentials exports use, kept in the
secret store (OS keyring, else the encrypted file) like the Upstox ones.

Without them, exports to ``s3://`` take the standard AWS chain (environment, profile, instance
role); with them, the CLI, the window and scheduled runs use them first (``export/s3.py``; a
scheduled run reads the encrypted fallback only with ``EXPIRYTRACK_PASSPHRASE``). The endpoint
of an S3-compatible service and the region go to the settings file. The secret access key is
never printed, logged or echoed.
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
        "--endpoint",
        metavar="URL",
        help="an S3-compatible service (MinIO, R2, ...): https://host[:port]; '' for AWS."
        " Alone (with --region), only the settings change",
    )
    c.add_argument("--region", help="the bucket's region ('' for the AWS environment's)")
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
    from expirytrack_desktop.auth.credentials import CredentialsError, mask
    from expirytrack_desktop.auth.secrets import SecretStoreError
    from expirytrack_desktop.cli.auth_cmd import ask
    from expirytrack_desktop.export.errors import InvalidOptionsError
    from expirytrack_desktop.export.s3 import check_s3_credentials, save_s3_credentials

    try:
        changed = _configure_settings(args)
    except InvalidOptionsError as exc:
        return fail(exitcodes.BAD_INPUT, str(exc))
    except OSError as exc:
        return fail(exitcodes.STORAGE, f"cannot save the settings: {exc}")
    if changed and args.access_key_id is None and not args.secret_stdin:
        return exitcodes.OK  # --endpoint / --region alone: the stored key stays
    try:
        key_id = (args.access_key_id or "").strip() or ask("S3 access key ID: ")
        if args.secret_stdin:
            secret = sys.stdin.readline().strip()
        else:
            secret = ask("S3 secret access key: ", secret=True)
        token = sys.stdin.readline() if args.session_token_stdin else None
        entries = check_s3_credentials(key_id, secret, token)
    except (CredentialsError, InvalidOptionsError) as exc:
        return fail(exitcodes.BAD_INPUT, str(exc))
    try:
        store = _store()
        save_s3_credentials(store, entries)
    except SecretStoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    what = " and session token" if token else ""
    print(f"Saved S3 access key {mask(key_id)}, its secret{what} in {store.backend_name}.")
    return exitcodes.OK


def _configure_settings(args: argparse.Namespace) -> bool:
    """Save --endpoint / --region into the settings file and say so; False when neither
    was given."""
    from expirytrack_desktop.export.s3 import check_endpoint, check_region
    from expirytrack_desktop.paths import AppPaths
    from expirytrack_desktop.settings import Settings

    if args.endpoint is None and args.region is None:
        return False
    endpoint = None if args.endpoint is None else check_endpoint(args.endpoint)
    region = None if args.region is None else check_region(args.region)
    path = AppPaths.default().settings_path
    settings = Settings.load(path)
    if endpoint is not None:
        settings.s3_endpoint = endpoint
    if region is not None:
        settings.s3_region = region
    settings.save(path)
    print(
        f"S3 endpoint {settings.s3_endpoint or 'AWS'}, region {settings.s3_region or 'default'}:"
        f" saved in {path}."
    )
    return True


def cmd_show(args: argparse.Namespace) -> int:
    from expirytrack_desktop.auth.credentials import mask
    from expirytrack_desktop.auth.secrets import SecretStoreError

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
        _show_settings()
        return exitcodes.OK
    token = ", with a session token" if got.get(TOKEN) else ""
    print(f"S3 access key {mask(str(got[KEY_ID]))}{token}, in {store.backend_name}.")
    _show_settings()
    return exitcodes.OK


def _show_settings() -> None:
    from expirytrack_desktop.paths import AppPaths
    from expirytrack_desktop.settings import Settings

    s = Settings.load(AppPaths.default().settings_path)
    print(f"Endpoint: {s.s3_endpoint or 'AWS'}; region: {s.s3_region or 'the AWS default'}.")


def cmd_forget(args: argparse.Namespace) -> int:
    from expirytrack_desktop.auth.secrets import SecretStoreError

    try:
        store = _store()
        store.delete_many((KEY_ID, SECRET, TOKEN))
    except SecretStoreError as exc:
        return fail(exitcodes.STORAGE, str(exc))
    print(f"S3 credentials deleted from {store.backend_name}.")
    return exitcodes.OK
