"""The email channel: SMTP (STARTTLS or SMTPS, and AUTH when configured), a plain-text body and the PEM
attached.

A username and password are only ever sent over TLS: without starttls or smtps the channel refuses to log
in (the config says so when it is loaded, the channel again before it connects), since AUTH PLAIN and
LOGIN carry the password in the clear, readable by anyone on the path.

The subject is built from certificate fields an attacker chose. EmailMessage with the default policy already
refuses CR/LF in a header; on top of that every control or format character is dropped and the length
capped, so a CN such as "x\r\nBcc: victim@example.com" or an ANSI escape can neither add a header nor
disguise the subject. The Message-ID is derived from the idempotency key: a re-delivery after a crash
carries the same Message-ID, which mail clients and archives recognise as the same message.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import smtplib
import ssl
import unicodedata
from collections.abc import Sequence
from email.message import EmailMessage
from email.utils import formatdate

from ctsentinel.notify.base import Channel, DeliveryError
from ctsentinel.notify.events import AlertEvent, Event
from ctsentinel.notify.render import summary, text_block
from ctsentinel.watch.severity import Severity

SUBJECT_LIMIT = 150
CLEARTEXT_LOGIN = (
    "refusing to log in without TLS, the password would cross the network in clear "
    "(set starttls = true, or smtps = true for a server on port 465)"
)
log = logging.getLogger(__name__)


def safe_header(text: str, limit: int = SUBJECT_LIMIT) -> str:
    """Header text with control/format characters removed, whitespace collapsed and length capped."""
    kept = "".join(
        " " if unicodedata.category(c) in ("Zl", "Zp") or c in "\t\r\n" else c
        for c in text
        if c in "\t\r\n" or unicodedata.category(c) not in ("Cc", "Cf", "Cs", "Co", "Cn")
    )
    flat = " ".join(kept.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def message_id(idempotency_key: str) -> str:
    return f"<{hashlib.sha256(idempotency_key.encode('utf-8')).hexdigest()[:40]}@ctsentinel.invalid>"


def build_message(event: Event, idempotency_key: str, sender: str, recipients: Sequence[str]) -> EmailMessage:
    message = EmailMessage()
    message["Subject"] = safe_header("[ctsentinel] " + summary(event))
    message["From"] = sender
    message["To"] = ", ".join(recipients)
    message["Date"] = formatdate(localtime=False, usegmt=True)
    message["Message-ID"] = message_id(idempotency_key)
    message["X-Ctsentinel-Idempotency-Key"] = safe_header(idempotency_key, 200)
    message["X-Ctsentinel-Event"] = event.kind
    message.set_content(text_block(event))
    if isinstance(event, AlertEvent) and event.certificate is not None and event.certificate.pem:
        name = f"{(event.alert.sha256 or ('certificate',))[0][:64]}.pem"
        message.add_attachment(
            event.certificate.pem.encode("ascii"), maintype="application", subtype="x-pem-file", filename=name
        )
    return message


class EmailChannel(Channel):
    kind = "email"

    def __init__(
        self,
        key: str,
        host: str,
        sender: str,
        recipients: Sequence[str],
        *,
        port: int = 25,
        starttls: bool = False,
        smtps: bool = False,
        username: str | None = None,
        password: str | None = None,
        cafile: str | None = None,
        timeout: float = 30.0,
        min_severity: Severity = Severity.LOW,
        watches: Sequence[str] = (),
    ) -> None:
        super().__init__(key, min_severity, watches)
        self.host, self.port = host, port
        self.sender, self.recipients = sender, list(recipients)
        self.starttls, self.smtps, self.cafile = starttls, smtps, cafile
        self.username, self.password = username, password
        self.timeout = timeout

    def destination(self) -> tuple[str, tuple[str, ...]]:
        return f"{self.host}:{self.port}", (self.host, str(self.port), *sorted(self.recipients))

    async def deliver(self, event: Event, idempotency_key: str) -> None:
        message = build_message(event, idempotency_key, self.sender, self.recipients)
        await asyncio.to_thread(self._send, message)

    def _send(self, message: EmailMessage) -> None:
        where = f"email {self.host}:{self.port}"
        if self.username is not None and not (self.starttls or self.smtps):
            raise DeliveryError(f"{where}: {CLEARTEXT_LOGIN}")
        try:
            with self._connect() as smtp:
                smtp.ehlo()
                if self.starttls:
                    # A server that does not offer STARTTLS is an error here, never a fallback to plain.
                    smtp.starttls(context=ssl.create_default_context(cafile=self.cafile))
                    smtp.ehlo()
                if self.username is not None:
                    smtp.login(self.username, self.password or "")
                refused = smtp.send_message(message, self.sender, self.recipients)
        except smtplib.SMTPRecipientsRefused as exc:
            raise DeliveryError(f"{where}: every recipient refused: {sorted(exc.recipients)}") from None
        except smtplib.SMTPResponseException as exc:
            text = (
                exc.smtp_error.decode("utf-8", "replace")
                if isinstance(exc.smtp_error, bytes)
                else exc.smtp_error
            )
            raise DeliveryError(f"{where}: {exc.smtp_code} {text}") from None
        except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
            raise DeliveryError(f"{where}: {type(exc).__name__}: {exc}") from None
        if refused:
            # The server took the message for the other recipients, and a retry would send them a duplicate:
            # a partial refusal counts as delivered, but is reported.
            log.warning("%s: recipients refused: %s", where, ", ".join(sorted(refused)))

    def _connect(self) -> smtplib.SMTP:
        if self.smtps:
            context = ssl.create_default_context(cafile=self.cafile)
            return smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout, context=context)
        return smtplib.SMTP(self.host, self.port, timeout=self.timeout)
