"""The email channel against a real SMTP server (aiosmtpd) on 127.0.0.1: plain, and STARTTLS with AUTH.

Hostile certificate text must not add headers (the classic "\\r\\nBcc:" injection) nor carry escapes into
the subject; the PEM arrives as an attachment; the Message-ID follows the idempotency key.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import email
import email.policy
import ipaddress
import socket
import ssl
import threading
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from ctsentinel.config import load_config
from ctsentinel.errors import UserError
from ctsentinel.notify import DeliveryError, build_channels, health_event
from ctsentinel.notify.email import CLEARTEXT_LOGIN, EmailChannel, message_id, safe_header
from notify_helpers import GOOGLE_PEM, GOOGLE_SHA256, PILOT, alert_event, free_port

pytest.importorskip("aiosmtpd")
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

HOSTILE_CN = "evil.example\r\nBcc: victim@example.com\x1b[2J\x1b]0;owned\x07\u202etxt.exe"


class Mailbox:
    """An aiosmtpd handler that keeps every message it accepted."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.envelopes.append(envelope)
        return "250 OK"

    def messages(self) -> list[EmailMessage]:
        return [email.message_from_bytes(e.content, policy=email.policy.default) for e in self.envelopes]  # type: ignore[misc]


@pytest.fixture
def smtp_server() -> Iterator[tuple[Mailbox, int]]:
    mailbox = Mailbox()
    controller = Controller(mailbox, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield mailbox, controller.port
    controller.stop()


def self_signed(tmp_path: Path) -> tuple[ssl.SSLContext, str]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ctsentinel test smtp")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = tmp_path / "smtp.pem", tmp_path / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_path, key_path)
    return context, str(cert_path)


def test_alert_mail_is_safe_and_carries_the_pem(smtp_server: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp_server
    chan = EmailChannel("mail", "127.0.0.1", "ct@example.org", ["ops@example.org"], port=port, timeout=5)
    hostile = alert_event(matched=[HOSTILE_CN], dns_names=[HOSTILE_CN])
    asyncio.run(chan.deliver(hostile, "alert-7:mail"))

    (envelope,) = mailbox.envelopes
    assert envelope.rcpt_tos == ["ops@example.org"]  # no victim@example.com smuggled in
    (message,) = mailbox.messages()
    subject = message["Subject"]
    assert subject.startswith("[ctsentinel] critical unauthorized_issuer: certificate for evil.example")
    for raw in ("\r", "\n", "\x1b", "\x07", "\u202e"):
        assert raw not in subject
    assert message["Bcc"] is None and b"\nBcc:" not in envelope.content
    assert message["Message-ID"] == message_id("alert-7:mail")
    assert message["X-Ctsentinel-Idempotency-Key"] == "alert-7:mail"
    body = message.get_body(("plain",)).get_content()
    assert "\x1b" not in body and "\\x1b[2J" in body and f"seen in:      {PILOT} #9876543 (cert)" in body
    (attachment,) = list(message.iter_attachments())
    assert attachment.get_filename() == f"{GOOGLE_SHA256}.pem"
    assert attachment.get_content_type() == "application/x-pem-file"
    assert attachment.get_content().decode() == GOOGLE_PEM


def test_redelivery_has_the_same_message_id(smtp_server: tuple[Mailbox, int]) -> None:
    mailbox, port = smtp_server
    chan = EmailChannel("mail", "127.0.0.1", "ct@example.org", ["a@example.org", "b@example.org"], port=port)

    async def go() -> None:
        await chan.deliver(alert_event(), "alert-1:mail")
        await chan.deliver(alert_event(), "alert-1:mail")
        await chan.deliver(health_event(PILOT, "misbehaving", "fork"), "health-1:mail")

    asyncio.run(go())
    first, again, health = mailbox.messages()
    assert first["Message-ID"] == again["Message-ID"] != health["Message-ID"]
    assert mailbox.envelopes[0].rcpt_tos == ["a@example.org", "b@example.org"]
    assert health["Subject"] == f"[ctsentinel] log {PILOT}: misbehaving"
    assert list(health.iter_attachments()) == []


def test_starttls_and_auth(tmp_path: Path) -> None:
    context, cafile = self_signed(tmp_path)
    mailbox = Mailbox()
    logins: list[tuple[str, bytes]] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        logins.append((data.login.decode(), data.password))
        return AuthResult(success=data.login == b"ct" and data.password == b"s3cret", handled=False)

    controller = Controller(
        mailbox,
        hostname="127.0.0.1",
        port=free_port(),
        tls_context=context,
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
    )
    controller.start()
    try:
        common: dict[str, Any] = {"port": controller.port, "starttls": True, "cafile": cafile, "timeout": 5}
        good = EmailChannel(
            "m",
            "127.0.0.1",
            "ct@example.org",
            ["ops@example.org"],
            username="ct",
            password="s3cret",
            **common,
        )
        asyncio.run(good.deliver(alert_event(), "k1"))
        bad = EmailChannel(
            "m", "127.0.0.1", "ct@example.org", ["ops@example.org"], username="ct", password="nope", **common
        )
        with pytest.raises(DeliveryError, match=r"^email 127\.0\.0\.1:\d+: 535 "):
            asyncio.run(bad.deliver(alert_event(), "k2"))
        untrusted = EmailChannel(
            "m", "127.0.0.1", "ct@example.org", ["ops@example.org"], port=controller.port, starttls=True
        )
        with pytest.raises(DeliveryError, match="CERTIFICATE_VERIFY_FAILED"):
            asyncio.run(untrusted.deliver(alert_event(), "k3"))
        plain = EmailChannel("m", "127.0.0.1", "ct@example.org", ["ops@example.org"], port=controller.port)
        with pytest.raises(DeliveryError, match=r"530 Must issue a STARTTLS command first"):
            asyncio.run(plain.deliver(alert_event(), "k4"))
    finally:
        controller.stop()
    assert len(mailbox.envelopes) == 1
    # smtplib tries each mechanism the server offers (PLAIN, then LOGIN) before giving up.
    assert logins[0] == ("ct", b"s3cret") and set(logins[1:]) == {("ct", b"nope")}


def test_unreachable_server_is_a_delivery_error() -> None:
    chan = EmailChannel("m", "127.0.0.1", "ct@example.org", ["ops@example.org"], port=free_port(), timeout=2)
    with pytest.raises(DeliveryError, match=r"^email 127\.0\.0\.1:\d+: ConnectionRefusedError"):
        asyncio.run(chan.deliver(alert_event(), "k"))


def test_safe_header() -> None:
    assert safe_header("a\r\nBcc: x\x1b[1m\u202eb\u2028c") == "a Bcc: x[1mb c"
    assert len(safe_header("x" * 1000)) == 150


# -- no password in the clear ------------------------------------------------------------------------------


class WireRecorder:
    """A TCP relay on 127.0.0.1 in front of a server, keeping every byte the client sent: what anyone on
    the path would read."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.sent = bytearray()
        self.connections = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self.connections += 1
            server = socket.create_connection(("127.0.0.1", self.target_port))
            threading.Thread(target=self._pump, args=(client, server, True), daemon=True).start()
            threading.Thread(target=self._pump, args=(server, client, False), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, record: bool) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if record:
                    self.sent += data
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._listener.close()


def _accept_any(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
    return AuthResult(success=True)


def test_no_login_without_tls(tmp_path: Path) -> None:
    """A server that accepts AUTH over plain text (aiosmtpd with auth_require_tls off, as a careless relay
    is set up) still never gets the password: the channel refuses before it logs in, and nothing of AUTH
    crosses the wire; the config says so in one line when it is loaded."""
    mailbox = Mailbox()
    controller = Controller(
        mailbox, hostname="127.0.0.1", port=free_port(), auth_require_tls=False, authenticator=_accept_any
    )
    controller.start()
    wire = WireRecorder(controller.port)
    try:
        chan = EmailChannel(
            "m", "127.0.0.1", "ct@example.org", ["ops@example.org"], port=wire.port,
            username="ct", password="s3cret", timeout=5,
        )  # fmt: skip
        with pytest.raises(DeliveryError) as caught:
            asyncio.run(chan.deliver(alert_event(), "k"))
    finally:
        wire.close()
        controller.stop()
    assert str(caught.value) == f"email 127.0.0.1:{wire.port}: {CLEARTEXT_LOGIN}"
    assert b"AUTH" not in bytes(wire.sent) and b"s3cret" not in bytes(wire.sent)
    assert base64.b64encode(b"\0ct\0s3cret") not in bytes(wire.sent)
    assert mailbox.envelopes == []

    config = tmp_path / "ctsentinel.toml"
    config.write_text(
        '[[notify]]\nkind = "email"\nhost = "smtp.example.org"\nfrom = "ct@example.org"\n'
        'to = "ops@example.org"\nusername = "ct"\npassword = "s3cret"\n'
    )
    with pytest.raises(UserError) as refused:
        build_channels(load_config(config).notify)
    assert str(refused.value) == f"[[notify]] #1 email: username and password: {CLEARTEXT_LOGIN}"


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS")
def test_smtps_logs_in_over_tls(tmp_path: Path) -> None:
    context, cafile = self_signed(tmp_path)
    mailbox = Mailbox()
    logins: list[bytes] = []

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        logins.append(data.password)
        return AuthResult(success=data.login == b"ct" and data.password == b"s3cret")

    controller = Controller(
        mailbox, hostname="127.0.0.1", port=free_port(), ssl_context=context, auth_required=True,
        authenticator=authenticator,
        auth_require_tls=False,  # aiosmtpd counts only STARTTLS as TLS; the wire below shows it is
    )  # fmt: skip
    controller.start()
    wire = WireRecorder(controller.port)
    try:
        chan = EmailChannel(
            "m", "127.0.0.1", "ct@example.org", ["ops@example.org"], port=wire.port, smtps=True,
            cafile=cafile, username="ct", password="s3cret", timeout=5,
        )  # fmt: skip
        asyncio.run(chan.deliver(alert_event(), "k"))
    finally:
        wire.close()
        controller.stop()
    assert logins == [b"s3cret"] and len(mailbox.envelopes) == 1
    assert wire.sent[:1] == b"\x16"  # a TLS handshake from the first byte
    assert b"AUTH" not in bytes(wire.sent) and b"s3cret" not in bytes(wire.sent)
