"""A minimal SMTP server on 127.0.0.1 for the notification tests (EHLO, STARTTLS, AUTH PLAIN
and LOGIN, MAIL, RCPT, DATA), one thread per connection. It records what it received."""

from __future__ import annotations

import base64
import datetime
import email
import email.policy
import socket
import ssl
import threading
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path


@dataclass
class Received:
    auth: list[tuple[str, str]] = field(default_factory=list)  # (user, password)
    messages: list[EmailMessage] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)
    envelopes: list[tuple[str, list[str]]] = field(default_factory=list)
    tls: list[bool] = field(default_factory=list)  # per message: was the session encrypted


class SmtpServer:
    def __init__(self, *, tls_context: ssl.SSLContext | None = None, implicit_tls: bool = False):
        self.tls_context = tls_context
        self.implicit_tls = implicit_tls
        self.got = Received()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.sock.settimeout(0.05)  # so that stopping does not wait for a last connection
        self._stop = False
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> SmtpServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop = True
        self._thread.join(5)
        self.sock.close()

    def _serve(self) -> None:
        while not self._stop:
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(10)
            threading.Thread(target=self._session, args=(conn,), daemon=True).start()

    def _session(self, conn: socket.socket) -> None:
        tls = False
        try:
            if self.implicit_tls:
                conn = self.tls_context.wrap_socket(conn, server_side=True)  # type: ignore[union-attr]
                tls = True
            f = conn.makefile("rb")

            def send(line: str) -> None:
                conn.sendall(line.encode() + b"\r\n")

            send("220 test ESMTP")
            sender, rcpts = "", []
            while True:
                line = f.readline()
                if not line:
                    return
                cmd = line.decode().rstrip("\r\n")
                verb = cmd.split(" ", 1)[0].upper()
                if verb in ("EHLO", "HELO"):
                    ext = ["250-test", "250-AUTH PLAIN LOGIN"]
                    if self.tls_context is not None and not tls:
                        ext.append("250-STARTTLS")
                    ext.append("250 8BITMIME")
                    for e in ext:
                        send(e)
                elif verb == "STARTTLS":
                    send("220 go ahead")
                    conn = self.tls_context.wrap_socket(conn, server_side=True)  # type: ignore[union-attr]
                    f = conn.makefile("rb")
                    tls = True
                elif verb == "AUTH":
                    parts = cmd.split(" ")
                    if parts[1].upper() == "PLAIN":
                        blob = parts[2] if len(parts) > 2 else None
                        if blob is None:
                            send("334 ")
                            blob = f.readline().decode().strip()
                        _, user, pw = base64.b64decode(blob).decode().split("\0")
                    else:  # LOGIN
                        send("334 VXNlcm5hbWU6")
                        user = base64.b64decode(f.readline().strip()).decode()
                        send("334 UGFzc3dvcmQ6")
                        pw = base64.b64decode(f.readline().strip()).decode()
                    self.got.auth.append((user, pw))
                    send("235 ok")
                elif verb == "MAIL":
                    sender = cmd.split(":", 1)[1].strip().strip("<>").split(">")[0]
                    send("250 ok")
                elif verb == "RCPT":
                    rcpts.append(cmd.split(":", 1)[1].strip().strip("<>"))
                    send("250 ok")
                elif verb == "DATA":
                    send("354 end with .")
                    data = b""
                    while True:
                        ln = f.readline()
                        if ln in (b".\r\n", b".\n", b""):
                            break
                        data += ln[1:] if ln.startswith(b"..") else ln
                    self.got.raw.append(data)
                    self.got.messages.append(
                        email.message_from_bytes(data, policy=email.policy.default)  # type: ignore[arg-type]
                    )
                    self.got.envelopes.append((sender, rcpts))
                    self.got.tls.append(tls)
                    rcpts = []
                    send("250 queued")
                elif verb in ("RSET", "NOOP"):
                    send("250 ok")
                elif verb == "QUIT":
                    send("221 bye")
                    return
                else:
                    send("502 not implemented")
        except (OSError, ssl.SSLError):
            return
        finally:
            conn.close()


def self_signed(tmp: Path) -> tuple[ssl.SSLContext, ssl.SSLContext]:
    """(server context, client context trusting only this certificate) for 127.0.0.1."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_pem = tmp / "cert.pem"
    key_pem = tmp / "key.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_pem.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    server = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.load_cert_chain(cert_pem, key_pem)
    client = ssl.create_default_context(cafile=str(cert_pem))
    return server, client
