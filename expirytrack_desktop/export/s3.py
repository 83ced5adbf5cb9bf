"""Direct export to S3-compatible storage: ``--out s3://bucket/prefix/``.

The export is written as usual into a private temporary folder (so every format, compression
and check works unchanged), then uploaded with pyarrow's S3 file system (no extra SDK) and
the local copy removed. An object appears only once its upload completed, so a reader never
sees half a file; without ``overwrite`` an existing key is refused before anything is sent.

Credentials, first found wins:

1. the secret store, when these names are saved there: ``s3_access_key_id`` /
   ``s3_secret_access_key`` (optional ``s3_session_token``);
2. the standard AWS chain that pyarrow's S3 client reads: ``AWS_ACCESS_KEY_ID`` /
   ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``, ``AWS_PROFILE`` and
   ``~/.aws/credentials``, instance roles.

The endpoint of an S3-compatible service (MinIO, R2, ...): ``EXPIRYTRACK_S3_ENDPOINT``
(``http://127.0.0.1:9000``), else the ``s3_endpoint`` setting (Settings, or ``expirytrack s3
configure --endpoint``), else ``AWS_ENDPOINT_URL``; the region: the ``s3_region`` setting, else
``AWS_REGION`` / ``AWS_DEFAULT_REGION``, else ``us-east-1``. Secrets are never printed or
logged; an error names the bucket and key only.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from expirytrack_desktop.export.errors import (
    InvalidOptionsError,
    OutputExistsError,
    UnwritableOutputError,
)

SECRET_NAMES = ("s3_access_key_id", "s3_secret_access_key", "s3_session_token")


@dataclass(frozen=True, slots=True)
class S3Target:
    bucket: str
    key: str  # "" or ending in "/" = a prefix: the default file name goes under it

    @property
    def is_prefix(self) -> bool:
        return self.key == "" or self.key.endswith("/")

    def url(self, key: str | None = None) -> str:
        return f"s3://{self.bucket}/{self.key if key is None else key}"


def is_s3_url(text: str | None) -> bool:
    return bool(text) and str(text).lower().startswith("s3://")


def names_a_folder(out: str) -> bool:
    """An output location (a path, or an ``s3://`` URL) that names where to put the default
    file name: an S3 prefix, a path ending in a slash, or a folder that exists."""
    if is_s3_url(out):
        return parse_s3_url(out).is_prefix
    return out.endswith(("/", "\\")) or Path(out).expanduser().is_dir()


def parse_s3_url(url: str) -> S3Target:
    parts = urlsplit(url)
    if parts.scheme.lower() != "s3" or not parts.netloc or parts.query or parts.fragment:
        raise InvalidOptionsError(f"not an S3 location: {url!r} (use s3://bucket/prefix/)")
    return S3Target(parts.netloc, parts.path.lstrip("/"))


def check_endpoint(text: str) -> str:
    """An S3 endpoint as typed (``https://s3.example.com``, ``127.0.0.1:9000``) -> the URL
    kept (``""`` for AWS itself); :class:`InvalidOptionsError` when it is not one."""
    text = text.strip()
    if not text:
        return ""
    parts = urlsplit(text if "://" in text else f"https://{text}")
    try:
        port_ok = parts.port is None or parts.port > 0  # a port not a number raises
    except ValueError:
        port_ok = False
    bad = parts.scheme not in ("http", "https") or not parts.hostname or not port_ok
    bad = bad or any(ch.isspace() for ch in text)
    if bad or parts.path.strip("/") or parts.query:
        raise InvalidOptionsError(
            f"not an S3 endpoint: {text!r} (a URL such as https://s3.example.com"
            " or http://127.0.0.1:9000)"
        )
    return f"{parts.scheme}://{parts.netloc}"


def check_region(text: str) -> str:
    """An S3 region name (``eu-central-1``, ``auto`` for R2) or ``""``."""
    text = text.strip()
    if text and not re.fullmatch(r"[a-z0-9][a-z0-9-]{0,40}", text):
        raise InvalidOptionsError(f"not an S3 region: {text!r} (such as eu-central-1)")
    return text


def check_s3_credentials(key_id: str, secret: str, token: str | None = None) -> dict[str, str]:
    """The secret store's entries for an access key, or :class:`InvalidOptionsError` naming
    what is wrong (never the secret)."""
    key_id, secret = key_id.strip(), secret.strip()
    if not key_id or any(ch.isspace() for ch in key_id):
        raise InvalidOptionsError("the S3 access key ID is one word, not empty")
    if not secret:
        raise InvalidOptionsError("the S3 secret access key is empty")
    if token is not None and not token.strip():
        raise InvalidOptionsError("the S3 session token is empty")
    got = {SECRET_NAMES[0]: key_id, SECRET_NAMES[1]: secret}
    return got | ({SECRET_NAMES[2]: token.strip()} if token else {})


def stale_s3_names(entries: Mapping[str, str]) -> tuple[str, ...]:
    """What to delete when storing ``entries``: a session token of earlier credentials when
    the new ones have none (it would not fit them)."""
    return () if SECRET_NAMES[2] in entries else (SECRET_NAMES[2],)


def save_s3_credentials(store: Any, entries: Mapping[str, str]) -> None:
    """Store checked entries (:func:`check_s3_credentials`), :func:`stale_s3_names` gone."""
    store.set_many(dict(entries))
    store.delete_many(stale_s3_names(entries))


def stored_s3_secrets(
    open_store: Callable[[], Any], warn: Callable[[str], None] | None = None
) -> dict[str, str | None]:
    """The secret store's S3 entries ({} when none are stored). A store that cannot be read
    (the encrypted fallback locked with no passphrase to ask, keyring trouble) gives {} and a
    ``warn`` line: the AWS chain applies then. The store's errors carry no secret."""
    from expirytrack_desktop.auth.secrets import SecretStoreError

    try:
        store = open_store()
        return {} if store is None else dict(store.get_many(SECRET_NAMES))
    except Exception as exc:  # keyring trouble, a damaged or locked file
        if warn is not None:
            why = str(exc) if isinstance(exc, SecretStoreError) else type(exc).__name__
            warn(f"S3 key not read from the secret store ({why}): the AWS environment applies")
        return {}


def configured_s3(
    open_store: Callable[[], Any], settings: Any, warn: Callable[[str], None] | None = None
) -> Any:
    """The S3 file system every export uses: the stored key (:func:`stored_s3_secrets`), else
    the AWS chain; the settings' ``s3_endpoint`` and ``s3_region``."""
    secrets = stored_s3_secrets(open_store, warn)
    return s3_filesystem(secrets, endpoint=settings.s3_endpoint, region=settings.s3_region)


def s3_filesystem(
    secrets: Mapping[str, str | None] | None = None,
    env: Mapping[str, str] | None = None,
    *,
    endpoint: str = "",
    region: str = "",
) -> Any:
    """pyarrow S3FileSystem with the credentials and endpoint described above
    (``endpoint`` / ``region``: the settings)."""
    try:
        from pyarrow import fs

        s3_class = fs.S3FileSystem
    except (ImportError, AttributeError):  # a build without pyarrow's S3 module
        raise InvalidOptionsError("this installation of pyarrow has no S3 support") from None

    env = os.environ if env is None else env
    kwargs: dict[str, Any] = {
        "region": region or env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or "us-east-1"
    }
    url = env.get("EXPIRYTRACK_S3_ENDPOINT") or endpoint or env.get("AWS_ENDPOINT_URL") or ""
    if url:
        parts = urlsplit(url if "://" in url else f"https://{url}")
        kwargs.update(endpoint_override=parts.netloc, scheme=parts.scheme or "https")
    secrets = secrets or {}
    key_id, secret = secrets.get("s3_access_key_id"), secrets.get("s3_secret_access_key")
    if key_id and secret:
        kwargs.update(access_key=key_id, secret_key=secret)
        if secrets.get("s3_session_token"):
            kwargs["session_token"] = secrets["s3_session_token"]
    return s3_class(**kwargs)


def _exists(filesystem: Any, path: str) -> bool:
    from pyarrow import fs

    info = filesystem.get_file_info(path)
    return bool(info.type != fs.FileType.NotFound)


def upload(
    local: Path, target: S3Target, name: str, filesystem: Any, *, overwrite: bool
) -> tuple[str, int]:
    """Upload a finished export (file or folder) to ``target``; (its URL, files sent)."""
    import pyarrow as pa

    key = target.key + name if target.is_prefix else target.key
    base = f"{target.bucket}/{key}"
    files = [local] if local.is_file() else sorted(p for p in local.rglob("*") if p.is_file())
    dests = [base if p == local else f"{base}/{p.relative_to(local).as_posix()}" for p in files]
    try:
        if not overwrite:
            taken = next((d for d in dests if _exists(filesystem, d)), None)
            if taken is not None:
                raise OutputExistsError(f"s3://{taken} exists", replaceable=True)
        for src, dest in zip(files, dests, strict=True):
            with open(src, "rb") as f, filesystem.open_output_stream(dest) as out:
                while block := f.read(8 << 20):
                    out.write(block)
    except (OSError, pa.ArrowException) as exc:
        raise UnwritableOutputError(f"cannot upload to s3://{base}: {aws_reason(exc)}") from None
    return f"s3://{base}", len(files)


_AWS = re.compile(r"AWS Error (\w+) during (\w+) operation: (.*)")


def aws_reason(exc: BaseException) -> str:
    """The part of a pyarrow S3 error a person acts on: "The specified bucket does not exist
    (NO_SUCH_BUCKET)", "Failed to connect to 127.0.0.1:9 (NETWORK_CONNECTION)" -- without the
    key and bucket (said before it), curl's codes and the request id."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    m = _AWS.search(text)
    if m is None:
        return text
    code, detail = m.group(1), m.group(3)
    detail = detail.rsplit("Details: ", 1)[-1]  # curl's own words, when it gives them
    detail = re.sub(r"\s*\(Request ID: [^)]*\)", "", detail)
    detail = re.sub(r"^curlCode: \d+, ", "", detail).strip() or code
    return f"{detail} ({code})"


def export_to_s3(
    url: str,
    name: str,
    run: Callable[[Path], Any],
    filesystem: Any,
    *,
    overwrite: bool = False,
) -> tuple[Any, str, int]:
    """``run(local_path)`` writes the export under a private temporary folder; it is then
    uploaded to ``url`` and removed. Returns (run's result, S3 URL, files uploaded)."""
    target = parse_s3_url(url)
    if not target.is_prefix:
        name = target.key.rsplit("/", 1)[-1]
    work = Path(tempfile.mkdtemp(prefix="expirytrack-s3-"))
    try:
        result = run(work / name)
        where, count = upload(work / name, target, name, filesystem, overwrite=overwrite)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return result, where, count
