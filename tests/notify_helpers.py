"""Shared pieces of the notify tests: a real alert event and a real webhook receiver on 127.0.0.1."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ctsentinel.notify import AlertEvent

try:
    from ctsentinel.certs import record_from_der
except ImportError:  # the package may not re-export it yet
    from ctsentinel.certs.decode import record_from_der

DATA = Path(__file__).parent / "data" / "notify"
GOOGLE_PEM = (DATA / "www.google.com.pem").read_text()
GOOGLE_SHA256 = "2d37920f16d60c48e89c5f700ca17efdd17d8d47234f361c67ff424946261823"
GOOGLE_TBS = "92cd4059c35eb07fccbddeda8b1e6e933ab8e70cc41ab82bc762e0f880ce7544"
PILOT = "https://ct.googleapis.com/pilot/"

CONTRACT_KEYS = [
    "id", "watch", "reason", "severity", "state", "findings", "issuer", "issuer_spki_sha256", "serial",
    "dns_names", "ip_addresses", "matched", "not_before", "not_after", "sha256", "entries", "first_seen",
    "revoked",
]  # fmt: skip


def alert_event(
    alert_id: int = 1, severity: str = "critical", watch: str = "google", **override: Any
) -> AlertEvent:
    """The alert (DESIGN.md section 5) for the real www.google.com certificate of 2015, with the details
    of its certificate a channel may use; `override` replaces fields of its outbox payload."""
    der = x509.load_pem_x509_certificate(GOOGLE_PEM.encode()).public_bytes(Encoding.DER)
    record = record_from_der(der)
    event = {
        "id": alert_id,
        "watch": watch,
        "reason": "unauthorized_issuer",
        "severity": severity,
        "state": "open",
        "issuer": record.issuer,
        "issuer_spki_sha256": record.issuer_spki_sha256,
        "serial": record.serial,
        "dns_names": record.dns_names,
        "ip_addresses": record.ip_addresses,
        "matched": ["www.google.com"],
        "not_before": record.not_before,
        "not_after": record.not_after,
        "sha256": [record.sha256],
        "entries": [{"log": PILOT, "index": 9876543, "type": "cert"}],
        "first_seen": "2015-10-07T12:00:00Z",
        "revoked": None,
        "_pem": GOOGLE_PEM,
        "_subject": record.subject,
        "_tbs_sha256": record.tbs_sha256,
        "_subject_spki_sha256": record.subject_spki_sha256,
    }
    event.update(override)
    return AlertEvent.from_payload(event)


def verify_request(secret: str, headers: Any, body: bytes, now: float | None = None) -> bool:
    """A receiver's check, as docs/webhooks.md describes it, written here independently of ctsentinel:
    v1=HMAC-SHA256(secret, "TIMESTAMP.IDEMPOTENCY-KEY.BODY"), a timestamp within 5 minutes."""
    timestamp = headers.get("X-Ctsentinel-Timestamp", "")
    given = headers.get("X-Ctsentinel-Signature", "")
    if not timestamp.isdigit() or not given.startswith("v1="):
        return False
    signed = f"{timestamp}.{headers.get('Idempotency-Key', '')}.".encode() + body
    expected = hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()
    return (
        hmac.compare_digest(given[3:], expected)
        and abs((time.time() if now is None else now) - int(timestamp)) <= 300
    )


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class HookReceiver:
    """A webhook receiver that checks the HMAC signature (401 when wrong), can fail on demand and records
    every request it accepted, keyed by Idempotency-Key."""

    def __init__(self, secret: str | None = None, port: int | None = None) -> None:
        self.secret = secret
        self.port = port or free_port()
        self.fail_next = 0  # answer this many requests with fail_status
        self.fail_status = 500
        self.delay = 0.0
        self.answer = b""  # a body to answer accepted requests with
        self.accepted: list[tuple[str, dict[str, Any], dict[str, str]]] = []
        self.received: list[str] = []  # the Idempotency-Key of every request, as it arrives
        self.requests = 0
        self._runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def counts(self) -> Counter[str]:
        return Counter(key for key, _, _ in self.accepted)

    async def _handle(self, request: web.Request) -> web.Response:
        self.requests += 1
        self.received.append(request.headers.get("Idempotency-Key", ""))
        body = await request.read()
        started = asyncio.get_running_loop().time()
        while asyncio.get_running_loop().time() - started < self.delay:  # re-read: a test may cut it short
            await asyncio.sleep(0.02)
        if self.secret is not None and not verify_request(self.secret, request.headers, body):
            return web.Response(status=401, text="bad signature")
        if request.headers.get("Content-Type") != "application/json":
            return web.Response(status=415)
        if self.fail_next > 0:
            self.fail_next -= 1
            return web.Response(status=self.fail_status)
        self.accepted.append((request.headers["Idempotency-Key"], json.loads(body), dict(request.headers)))
        if self.answer:
            return web.Response(status=200, body=self.answer)
        return web.Response(status=204)

    async def _moved(self, request: web.Request) -> web.Response:
        raise web.HTTPFound(self.url)

    async def start(self) -> HookReceiver:
        app = web.Application()
        app.router.add_post("/hook", self._handle)
        app.router.add_post("/moved", self._moved)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


class BackgroundReceiver:
    """A HookReceiver served from its own thread and event loop, for tests that are not async themselves
    (a subprocess delivers to it)."""

    def __init__(self, **kwargs: Any) -> None:
        self.receiver = HookReceiver(**kwargs)
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)

    def __enter__(self) -> HookReceiver:
        self.thread.start()
        asyncio.run_coroutine_threadsafe(self.receiver.start(), self.loop).result(10)
        return self.receiver

    def __exit__(self, *_exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self.receiver.stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()
