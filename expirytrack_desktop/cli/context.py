"""The :class:`Runtime` of a command, from the flags every command shares (``--db``,
``--api-base``, ``--rate-limit``, ``--demo``, ``--instruments-url``)."""

from __future__ import annotations

import argparse

from expirytrack_desktop.runtime import Runtime


def runtime_from(args: argparse.Namespace) -> Runtime:
    return Runtime.create(
        db=getattr(args, "db", None),
        api_base=getattr(args, "api_base", None),
        rate_limit=getattr(args, "rate_limit", None),
        demo=bool(getattr(args, "demo", False)),
        instruments_url=getattr(args, "instruments_url", None),
    )
