"""``expirytrack notify configure | test | show``: e-mail notifications of scheduled runs.

Server settings go to the settings file; the SMTP password only to the secret store (OS
keyring or the encrypted fallback), read from a prompt or stdin, never from an argument
(arguments are visible to other users in the process list).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from expirytrack_desktop.cli import exitcodes
from expirytrack_desktop.cli.failure import fail


def register(subparsers: Any, common: argparse.ArgumentParser) -> None:
    p = subparsers.add_parser("notify", help="e-mail notifications of scheduled runs")
    sub = p.add_subparsers(dest="notify_command", metavar="ACTION")

    c = sub.add_parser("configure", parents=[common], help="set the SMTP server and addresses")
    c.add_argument("--host", help="SMTP server host name")
    c.add_argument("--port", type=int, help="SMTP port (587 STARTTLS, 465 SSL)")
    c.add_argument("--security", choices=("starttls", "ssl", "none"))
    c.add_argument("--user", help="SMTP login (empty: no login)")
    c.add_argument("--from", dest="sender", metavar="ADDR", help="sender address")
    c.add_argument("--to", metavar="ADDR[,ADDR]", help="default recipients")
    pw = c.add_mutually_exclusive_group()
    pw.add_argument("--ask-password", action="store_true", help="prompt for the SMTP password")
    pw.add_argument("--password-stdin", action="store_true", help="read it from stdin")
    pw.add_argument("--clear-password", action="store_true", help="delete the stored password")
    c.set_defaults(func=cmd_configure)

    t = sub.add_parser("test", parents=[common], help="send a test message")
    t.add_argument("--to", metavar="ADDR[,ADDR]", help="recipients (default: the configured)")
    t.set_defaults(func=cmd_test)

    s = sub.add_parser("show", parents=[common], help="show the notification settings")
    s.set_defaults(func=cmd_show)

    p.set_defaults(func=lambda _a: (p.print_help(), exitcodes.BAD_INPUT)[1])


def _runtime(args: argparse.Namespace) -> Any:
    from expirytrack_desktop.runtime import Runtime

    return Runtime.create(db=args.db, api_base=args.api_base, rate_limit=args.rate_limit)


def _secrets(rt: Any) -> Any:
    from expirytrack_desktop.cli.passphrase import cli_passphrase

    return rt.secret_store(cli_passphrase)


def cmd_configure(args: argparse.Namespace) -> int:
    from expirytrack_desktop.notify import SMTP_PASSWORD, SmtpConfig

    rt = _runtime(args)
    st = rt.settings
    if args.host is not None:
        st.smtp_host = args.host.strip()
    if args.security is not None:
        st.smtp_security = args.security
        if args.port is None:
            st.smtp_port = {"ssl": 465, "starttls": 587, "none": 25}[args.security]
    if args.port is not None:
        st.smtp_port = args.port
    if args.user is not None:
        st.smtp_user = args.user.strip()
    if args.sender is not None:
        st.smtp_from = args.sender.strip()
    if args.to is not None:
        st.notify_to = ",".join(a.strip() for a in args.to.split(",") if a.strip())
    cfg = SmtpConfig.from_settings(st)
    problem = cfg.problem()
    if problem and args.host is not None:
        return fail(exitcodes.BAD_INPUT, problem)
    password = None
    if args.ask_password:
        import getpass

        password = getpass.getpass("SMTP password: ")
    elif args.password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    try:
        if password:
            _secrets(rt).set(SMTP_PASSWORD, password)
        elif args.clear_password:
            _secrets(rt).delete(SMTP_PASSWORD)
    except Exception as exc:  # SecretStoreError: its message carries no secret
        return fail(exitcodes.STORAGE, f"cannot store the SMTP password: {exc}")
    st.save(rt.paths.settings_path)
    print(f"Saved {rt.paths.settings_path}")
    _show(rt)
    return exitcodes.OK


def _show(rt: Any) -> None:
    from expirytrack_desktop.notify import SMTP_PASSWORD, SmtpConfig

    cfg = SmtpConfig.from_settings(rt.settings)
    print(f"  server:     {cfg.host or '(none)'}:{cfg.port} ({cfg.security})")
    print(f"  login:      {cfg.user or '(none)'}")
    print(f"  from:       {cfg.from_address or '(none)'}")
    print(f"  to:         {', '.join(cfg.to) or '(none)'}")
    if cfg.user:
        try:
            store = _secrets(rt)
            state = "stored" if store.get(SMTP_PASSWORD) else "NOT stored (--ask-password)"
            print(f"  password:   {state} in {store.backend_name}")
        except Exception as exc:
            print(f"  password:   cannot check ({exc})")


def cmd_show(args: argparse.Namespace) -> int:
    _show(_runtime(args))
    return exitcodes.OK


def cmd_test(args: argparse.Namespace) -> int:
    from expirytrack_desktop.notify import SMTP_PASSWORD, NotifyError, SmtpConfig, compose_test
    from expirytrack_desktop.notify import send as send_mail
    from expirytrack_desktop.schedule import hooks

    rt = _runtime(args)
    cfg = SmtpConfig.from_settings(rt.settings)
    to = [a.strip() for a in (args.to or "").split(",") if a.strip()] or list(cfg.to)
    if not to:
        return fail(exitcodes.BAD_INPUT, "no recipient: --to ADDR or `notify configure --to`")
    problem = cfg.problem()
    if problem:
        return fail(exitcodes.BAD_INPUT, problem)
    try:
        password = _secrets(rt).get(SMTP_PASSWORD) if cfg.user else None
    except Exception as exc:
        return fail(exitcodes.STORAGE, f"cannot read the SMTP password: {exc}")
    try:
        send_mail(compose_test(cfg, to), cfg, password, ssl_context=hooks.current().ssl_context)
    except NotifyError as exc:
        return fail(exitcodes.NETWORK, str(exc))
    print(f"Test message sent to {', '.join(to)} via {cfg.host}:{cfg.port}")
    return exitcodes.OK
