"""The :class:`Runtime` of a command, from the flags every command shares (``--db``,
``--api-base``, ``--rate-limit``, ``--demo``, ``--instruments-url``)."""

from __future__ import annotations

import argparse
from typing import Any

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.failure import fail
from expirytrack_desktop.runtime import Runtime


def runtime_from(args: argparse.Namespace) -> Runtime:
    return Runtime.create(
        db=getattr(args, "db", None),
        api_base=getattr(args, "api_base", None),
        rate_limit=getattr(args, "rate_limit", None),
        demo=bool(getattr(args, "demo", False)),
        instruments_url=getattr(args, "instruments_url", None),
    )


def open_existing(
    rt: Runtime,
    missing: str,
    *,
    missing_code: int = exitcodes.BAD_INPUT,
    check_writable: bool = False,
    check_pages: bool = False,
) -> tuple[Any, int]:
    """The database a command reads, never created by it: ``(db, OK)``, or ``(None, code)``
    after one line saying why. ``missing`` is that line when there is no database yet: an
    answer on stdout when ``missing_code`` is OK (an empty list), else an error."""
    from expirytrack_desktop.store import StoreError, StoreMissingError

    try:
        db = rt.open_db(create=False, check_writable=check_writable, check_pages=check_pages)
    except StoreMissingError:
        if missing_code == exitcodes.OK:
            print(missing)
            return None, exitcodes.OK
        return None, fail(missing_code, missing)
    except StoreError as exc:
        return None, fail(exitcodes.STORAGE, str(exc))
    return db, exitcodes.OK
