"""Compose and send the e-mail of a scheduled run.

Server settings (host, port, security, user, from, to) live in the settings file; the SMTP
password lives only in the secret store (``SMTP_PASSWORD``), is sent only over TLS (or to a
loopback server), and is never put into a message, a log line or an exception text. Messages
are passed through :func:`redact` with every secret the process knows as a last guard.
"""

from __future__ import annotations

import ipaddress
import smtplib
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Any

SMTP_PASSWORD = "smtp_password"  # name in the secret store
SECURITY = ("starttls", "ssl", "none")
MAX_FAILED_LISTED = 30


class NotifyError(Exception):
    """The mail could not be sent (one line for the user; never a secret)."""


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    host: str
    port: int = 587
    security: str = "starttls"  # "starttls" | "ssl" | "none"
    user: str = ""
    sender: str = ""
    to: tuple[str, ...] = ()
    timeout: float = 30.0

    @classmethod
    def from_settings(cls, settings: Any) -> SmtpConfig:
        to = tuple(a.strip() for a in (settings.notify_to or "").split(",") if a.strip())
        return cls(
            settings.smtp_host,
            int(settings.smtp_port),
            settings.smtp_security,
            settings.smtp_user,
            settings.smtp_from,
            to,
        )

    def problem(self) -> str | None:
        """Why mail cannot be sent with this configuration, or None."""
        if not self.host:
            return "no SMTP server configured: run `expirytrack notify configure --host ...`"
        if self.security not in SECURITY:
            return f"SMTP security must be one of {', '.join(SECURITY)}"
        if not 0 < self.port < 65536:
            return f"bad SMTP port {self.port}"
        if not (self.sender or self.user):
            return "no sender address: `expirytrack notify configure --from ADDR`"
        return None

    @property
    def from_address(self) -> str:
        return self.sender or self.user

    def is_loopback(self) -> bool:
        if self.host == "localhost":
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False


def redact(text: str, secrets: Iterable[str | None]) -> str:
    for s in secrets:
        if s and len(s) >= 4:
            text = text.replace(s, "[redacted]")
    return text


def _message(
    cfg: SmtpConfig, to: Iterable[str], subject: str, body: str, secrets: Iterable[str | None]
) -> EmailMessage:
    secrets = list(secrets)
    msg = EmailMessage()
    msg["Subject"] = redact(subject, secrets)
    msg["From"] = cfg.from_address
    msg["To"] = ", ".join(to)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain="expirytrack.local")
    msg.set_content(redact(body, secrets))
    return msg


def _n(x: int) -> str:
    return f"{x:,}"


def _when(dt: datetime | None) -> str:
    return dt.astimezone().isoformat(sep=" ", timespec="seconds") if dt else "-"


def compose_report(
    report: Any, cfg: SmtpConfig, to: Iterable[str], *, secrets: Iterable[str | None] = ()
) -> EmailMessage:
    """The message for a :class:`~expirytrack_desktop.schedule.runner.RunReport`."""
    from expirytrack_desktop.schedule.runner import describe_exit

    s = report.schedule
    stored = report.total("windows_fetched") + report.total("windows_empty")
    failed = report.attempts[-1].failed if report.attempts else 0
    subject = (
        f"[ExpiryTrack] {s.name}: {report.outcome} - {_n(stored)} windows, "
        f"{_n(report.total('candles'))} candles, {failed} failed"
        + (f", {len(report.at_risk)} at risk" if report.at_risk else "")
    )
    duration = ""
    if report.finished_at:
        secs = int((report.finished_at - report.started_at).total_seconds())
        duration = f" ({secs // 3600} h {secs % 3600 // 60:02d} min {secs % 60:02d} s)"
    lines = [
        f'ExpiryTrack scheduled collection "{s.name}": {report.outcome}.',
        "",
        f"What:      {s.what_text()}",
        f"When:      {s.when_text()}",
        f"Computer:  {report.host}",
        f"Database:  {report.db_path}",
        f"Started:   {_when(report.started_at)}",
        f"Finished:  {_when(report.finished_at)}{duration}",
        f"Result:    exit code {report.exit_code} ({describe_exit(report.exit_code)})",
        "",
    ]
    if report.attempts:
        lines.append("Attempts:")
        for a in report.attempts:
            c = a.counters
            lines.append(
                f"  {a.number}. {a.reason.value}: job {a.job_id}, "
                f"{_n(c.windows_fetched + c.windows_empty)} windows stored "
                f"({_n(c.windows_empty)} without trades), {_n(c.candles)} candles, "
                f"{_n(a.failed)} failed, {_n(c.requests)} requests"
            )
        lines += [
            "",
            f"Totals:    {_n(stored)} windows stored, {_n(report.total('candles'))} candles, "
            f"{_n(report.total('requests'))} requests",
            f"Failed:    {failed} item(s) still failed after the last attempt",
            "",
        ]
    if report.message and not report.ok:
        lines += [f"Message:   {report.message}", ""]
    items = list(report.failed_items)
    if items:
        lines.append("Failed items:")
        lines += [f"  - {e}" for e in items[:MAX_FAILED_LISTED]]
        if len(items) > MAX_FAILED_LISTED:
            lines.append(f"  ... and {len(items) - MAX_FAILED_LISTED} more")
        lines.append("")
    risky = list(report.at_risk)
    if risky:
        lines.append(
            f"At risk: {len(risky)} "
            + (
                "expiry of this schedule is not complete and vanishes"
                if len(risky) == 1
                else "expiries of this schedule are not complete and vanish"
            )
            + f" from Upstox within {report.at_risk_days} days (then they can never be fetched):"
        )
        lines += [
            f"  - {a.symbol or a.instrument_key} {a.expiry.isoformat()}: last day "
            f"{a.last_day.isoformat()} ({a.days_left} days left), {a.state}"
            for a in risky[:MAX_FAILED_LISTED]
        ]
        if len(risky) > MAX_FAILED_LISTED:
            lines.append(f"  ... and {len(risky) - MAX_FAILED_LISTED} more")
        lines.append("")
    if not report.ok:
        lines.append(
            "Failed windows are planned again by the next run (or now: "
            f"`expirytrack schedule run {s.name}`); collected data is kept."
        )
    return _message(cfg, to, subject, "\n".join(lines) + "\n", secrets)


def compose_test(cfg: SmtpConfig, to: Iterable[str]) -> EmailMessage:
    body = (
        "This is a test message from ExpiryTrack (`expirytrack notify test`).\n"
        f"Computer: {socket.gethostname()}\n"
        f"Server:   {cfg.host}:{cfg.port} ({cfg.security})\n"
        "Scheduled collections will report here on completion and on failure.\n"
    )
    return _message(cfg, to, "[ExpiryTrack] test message", body, ())


SmtpFactory = Callable[..., smtplib.SMTP]


def send(
    msg: EmailMessage,
    cfg: SmtpConfig,
    password: str | None,
    *,
    ssl_context: ssl.SSLContext | None = None,
) -> None:
    """Deliver ``msg``. Raises :class:`NotifyError` with a one-line reason."""
    problem = cfg.problem()
    if problem:
        raise NotifyError(problem)
    if cfg.user and password is None:
        raise NotifyError(
            "no SMTP password stored: run `expirytrack notify configure --ask-password`"
        )
    if cfg.user and cfg.security == "none" and not cfg.is_loopback():
        raise NotifyError(
            "refusing to send the SMTP password unencrypted: use --security starttls or ssl"
        )
    ctx = ssl_context or ssl.create_default_context()
    where = f"{cfg.host}:{cfg.port}"
    try:
        if cfg.security == "ssl":
            server: smtplib.SMTP = smtplib.SMTP_SSL(
                cfg.host, cfg.port, timeout=cfg.timeout, context=ctx
            )
        else:
            server = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
        with server:
            server.ehlo()
            if cfg.security == "starttls":
                server.starttls(context=ctx)
                server.ehlo()
            if cfg.user:
                server.login(cfg.user, password or "")
            refused = server.send_message(msg)
    except smtplib.SMTPAuthenticationError as exc:
        raise NotifyError(
            f"{where} rejected the SMTP login of {cfg.user!r} ({exc.smtp_code})"
        ) from None
    except smtplib.SMTPNotSupportedError as exc:
        raise NotifyError(f"{where}: {exc}") from None
    except smtplib.SMTPException as exc:
        raise NotifyError(f"cannot send e-mail via {where}: {type(exc).__name__}: {exc}") from None
    except (OSError, ssl.SSLError) as exc:
        raise NotifyError(f"cannot reach the SMTP server {where}: {exc}") from None
    if refused:
        raise NotifyError(f"{where} refused the recipients {', '.join(refused)}")
