"""E-mail notifications of scheduled runs (stdlib smtplib; no Qt)."""

from expirytrack_desktop.notify.mailer import (
    SMTP_PASSWORD,
    NotifyError,
    SmtpConfig,
    compose_report,
    compose_test,
    redact,
    send,
)

__all__ = [
    "SMTP_PASSWORD",
    "NotifyError",
    "SmtpConfig",
    "compose_report",
    "compose_test",
    "redact",
    "send",
]
