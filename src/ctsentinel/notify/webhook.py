"""The webhook channel: a JSON POST of the event to one configured URL.

The body is exactly the event's public object. Headers: `Idempotency-Key` (the same on every retry of one
delivery, so the receiver can drop repeats), `X-Ctsentinel-Event` (alert or log_health) and, with a
`secret`, `X-Ctsentinel-Signature: sha256=<hex HMAC-SHA256 of the body>`. Only a 2xx status counts as
accepted; redirects are not followed (a 3xx is a failure), so events go only where the config says.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
from collections.abc import Sequence

import aiohttp

from ctsentinel import __version__
from ctsentinel.notify.base import Channel, DeliveryError
from ctsentinel.notify.events import Event
from ctsentinel.redact import redact_url, redact_urls
from ctsentinel.watch.severity import Severity

SIGNATURE_HEADER = "X-Ctsentinel-Signature"
_ANSWER_LIMIT = 64 * 1024


def signature(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


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
    ) -> None:
        super().__init__(key, min_severity, watches)
        self.url = url
        # Messages name the receiver by scheme, host and port: the rest of a webhook URL is often its
        # secret (Slack-style URLs carry their token in the path).
        self.where = f"webhook {redact_url(url)}"
        self.secret = secret
        self.timeout = timeout
        self.concurrency = concurrency
        self._session: aiohttp.ClientSession | None = None

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
            headers[SIGNATURE_HEADER] = signature(self.secret, body)
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
