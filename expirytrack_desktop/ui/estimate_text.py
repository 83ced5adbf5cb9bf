"""The collect wizard's review text: the estimate, its notes, and the expiries the plan would
reach only after Upstox has deleted them (a warning shown before Start)."""

from __future__ import annotations

import html

from expirytrack_desktop.collect import Estimate
from expirytrack_desktop.ui.models import fmt_duration


def describe_estimate(est: Estimate | None) -> str:
    """The estimate of the underlyings' jobs together, as HTML: the late expiries first (a
    red warning), then the figures and notes."""
    if est is None:
        return "<p>Nothing to do.</p>"
    text = describe_late(est)
    text += (
        f"<p>{'About ' if est.is_estimate else ''}<b>{est.requests:,}</b> API requests "
        f"({est.contracts:,} contracts, {est.windows:,} candle windows still missing), "
        f"about <b>{fmt_duration(est.seconds) or '0s'}</b> at the configured rate limits and "
        "the budget already used.</p>"
    )
    if est.notes:
        items = "".join(f"<li>{html.escape(n)}</li>" for n in dict.fromkeys(est.notes))
        text += f"<ul>{items}</ul>"
    return text + "<p>One job is created per underlying; they share one rate limiter.</p>"


def describe_late(est: Estimate) -> str:
    """The warning block for expiries the plan would reach after they vanish ('' if none)."""
    if not est.warnings:
        return ""
    items = "".join(f"<li>{html.escape(w)}</li>" for w in est.warnings)
    n = len(est.warnings)
    return (
        "<div id='late' style='color:#b00020'><p><b>⚠ Warning: "
        f"{n} expir{'y' if n == 1 else 'ies'} would vanish from Upstox before this plan "
        f"reaches {'it' if n == 1 else 'them'}</b> (oldest expiry first, at the rate "
        f"limits):</p><ul>{items}</ul></div>"
    )


def late_summary(est: Estimate | None) -> str | None:
    """One line for the page's message label, or None when nothing would be lost."""
    if est is None or not est.late:
        return None
    first = est.late[0]
    more = f" and {len(est.late) - 1} more" if len(est.late) > 1 else ""
    return (
        f"{first.name} {first.expiry.isoformat()}{more} would vanish before this plan reaches "
        "it: collect it on its own first or narrow the selection."
    )
