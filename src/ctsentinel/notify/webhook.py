"""The webhook channel: a JSON POST of the event to one configured URL.

The body is exactly the event's public object. Headers: `Idempotency-Key` (the same on every retry of one
delivery, so the receiver can drop repeats), `X-Ctsentinel-Event` (alert or log_health) and, with a
`secret`, `X-Ctsentinel-Timestamp` (Unix seconds) and `X-Ctsentinel-Signature: v1=<hex HMAC-SHA256 of
"TIMESTAMP.IDEMPOTENCY-KEY.BODY">`, as Stripe signs its webhooks: a captured request stops verifying once
its timestamp is old (docs/webhooks.md says how a receiver checks it). Only a 2xx status counts as
accepted; redirects are not followed (a 3xx is a failure), so events go only where the config says.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import time
from collections.abc import Callable, Sequence

import aiohttp

from ctsentinel import __version__
from ctsentinel.notify.base import Channel, DeliveryError
from ctsentinel.notify.events import Event
from ctsentinel.redact import redact_url, redact_urls
from ctsentinel.watch.severity import Severity

SIGNATURE_HEADER = "X-Ctsentinel-Signature"
TIMESTAMP_HEADER = "X-Ctsentinel-Timestamp"
_ANSWER_LIMIT = 64 * 1024


def signature(secret: str, timestamp: int, idempotency_key: str, body: bytes) -> str:
    """The signature header's value: HMAC-SHA256 over the timestamp, the idempotency key and the body, so
    that none of the three can be changed (a replay given a fresh timestamp or a new key) and verify."""
    signed = f"{timestamp}.{idempotency_key}.".encode() + body
    return "v1=" + hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def body_of(event: Event) -> bytes:
    return json.dumps(event.to_json(), ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class WebhookChannel(Channel):
    kind = "webhook"

    def __init__(
        self,
        key: str,
        url: str,
        *,
        secret: str | None = None,
        timeout: float = 10.0,
        concurrency: int = 8,
        min_severity: Severity = Severity.LOW,
        watches: Sequence[str] = (),
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(key, min_severity, watches)
        self.url = url
        # Messages name the receiver by scheme, host and port: the rest of a webhook URL is often its
        # secret (Slack-style URLs carry their token in the path).
        self.where = f"webhook {redact_url(url)}"
        self.secret = secret
        self.timeout = timeout
        self.concurrency = concurrency
        self.clock = clock
        self._session: aiohttp.ClientSession | None = None

    def destination(self) -> tuple[str, tuple[str, ...]]:
        return redact_url(self.url), (self.url,)

    def _client(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=self.concurrency),
                headers={"User-Agent": f"ctsentinel/{__version__}"},
            )
        return self._session

    async def deliver(self, event: Event, idempotency_key: str) -> None:
        body = body_of(event)
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": idempotency_key,
            "X-Ctsentinel-Event": event.kind,
        }
        if self.secret is not None:
            # Signed afresh at every attempt: a retry an hour later carries that hour's timestamp.
            timestamp = int(self.clock())
            headers[TIMESTAMP_HEADER] = str(timestamp)
            headers[SIGNATURE_HEADER] = signature(self.secret, timestamp, idempotency_key, body)
        try:
            async with self._client().post(
                self.url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                # Drain a little so that a keep-alive connection can be reused; a receiver that answers with
                # more gets its connection closed rather than our memory filled.
                await response.content.read(_ANSWER_LIMIT)
        except TimeoutError:
            raise DeliveryError(f"{self.where}: no answer within {self.timeout:g}s") from None
        except aiohttp.ClientConnectorError as exc:
            error = exc.os_error
            reason = os.strerror(error.errno) if error.errno else (error.strerror or str(error))
            raise DeliveryError(f"{self.where}: cannot connect: {redact_urls(reason)}") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise DeliveryError(f"{self.where}: {type(exc).__name__}: {redact_urls(str(exc))}") from None
        if not 200 <= status < 300:
            raise DeliveryError(f"{self.where}: HTTP {status}")

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()
            await asyncio.sleep(0)
