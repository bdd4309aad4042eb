"""One aiohttp session for every log: User-Agent, timeouts, a response size limit, retries within budgets.

Retried: 429 (after Retry-After, capped, or a jittered backoff), 5xx, timeouts and connection failures,
up to `max_tries` attempts (429s have their own, larger bound: a log that asks us to slow down is not
broken). Not retried: other 4xx, which a retry would only repeat. Every failure ends in one LogHTTPError
line naming the URL.
"""

from __future__ import annotations

import asyncio
import email.utils
import ipaddress
import time
import urllib.parse
from types import TracebackType

import aiohttp

from ctsentinel import __version__
from ctsentinel.ct.entries import json_document
from ctsentinel.ct.errors import DecodeError
from ctsentinel.errors import Error
from ctsentinel.logs.budget import LogBudget
from ctsentinel.terminal import safe_text

USER_AGENT = f"ctsentinel/{__version__} (+CT monitor)"
MAX_RESPONSE_BYTES = 64 << 20
_CHUNK = 1 << 16


# Compression trades CPU on both ends for bandwidth; over loopback (a local log or mirror, the benchmark)
# there is no bandwidth to save, and gzipping tiles costs the server more than serving them.
_IDENTITY = {"Accept-Encoding": "identity"}


def _is_loopback(url: str) -> bool:
    host = urllib.parse.urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class LogHTTPError(Error):
    """A request that failed for good; str() is one line starting with the URL."""

    def __init__(self, url: str, problem: str, status: int | None = None) -> None:
        super().__init__(f"{url}: {problem}")
        self.url = url
        self.problem = problem
        self.status = status


class LogResponseError(LogHTTPError):
    """The log answered 200 with a body that is not what the API promises (bad JSON, wrong shape)."""


def _short(text: str, limit: int = 120) -> str:
    """One printable line of text a log chose (an error body may hold terminal escape sequences)."""
    line = safe_text(" ".join(text.split()))
    return line if len(line) <= limit else line[: limit - 1] + "…"


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP date; None if absent or bad."""
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


class HttpClient:
    """Use as `async with HttpClient(...) as http:`; the session is created inside the running loop."""

    def __init__(
        self,
        *,
        connect_timeout: float = 10.0,
        read_timeout: float = 30.0,
        max_response_bytes: int = MAX_RESPONSE_BYTES,
        max_tries: int = 6,
        max_rate_limited: int = 20,
        retry_after_cap: float = 300.0,
        user_agent: str = USER_AGENT,
        connections: int = 256,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.max_response_bytes = max_response_bytes
        self.max_tries = max_tries
        self.max_rate_limited = max_rate_limited
        self.retry_after_cap = retry_after_cap
        self.user_agent = user_agent
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None
        self._default_budget: LogBudget | None = None

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                headers={"User-Agent": self.user_agent},
                # total=None: a big tile over a slow link is fine as long as bytes keep coming. The connect
                # bound is on the TCP/TLS connect only (sock_connect): `connect` would also count the wait
                # for a pooled connection, which many busy logs can make long without anything being wrong.
                timeout=aiohttp.ClientTimeout(
                    total=None, sock_connect=self.connect_timeout, sock_read=self.read_timeout
                ),
                connector=aiohttp.TCPConnector(limit=self._connections, ttl_dns_cache=300),
            )
        return self._session

    async def get(self, url: str, budget: LogBudget | None = None) -> bytes:
        """The body of a 200 answer to GET url, within `budget` (a shared default one if None)."""
        if budget is None:
            budget = self._default_budget = self._default_budget or LogBudget()
        # Hand-written rather than tenacity or stamina: every attempt takes a budget slot, a 429 counts
        # against its own bound and pauses the whole log (the budget's shared pause) instead of sleeping
        # here, and each way of giving up has its own message. A library needs a custom stop, wait and
        # error callback for these, more code than this loop; and stamina's jitter is not equal jitter.
        failures = limited = 0
        while True:
            try:
                async with budget.slot():
                    began = time.monotonic()
                    status, body, retry_after = await self._once(url)
                    seconds = time.monotonic() - began
            except TimeoutError:
                failures += 1
                if failures >= self.max_tries:
                    budget.stats.timeouts += 1
                    raise LogHTTPError(
                        url, f"timed out after {failures} tries (read timeout {self.read_timeout:g} s)"
                    ) from None
                # A log that does not answer in time is congested: slow down for every request to it.
                budget.timed_out(failures)
                budget.stats.retries += 1
                continue
            except aiohttp.ClientError as exc:
                failures += 1
                if failures >= self.max_tries:
                    detail = _short(str(exc) or type(exc).__name__)
                    raise LogHTTPError(url, f"{detail} (after {failures} tries)") from None
            else:
                if status == 200:
                    budget.succeeded(seconds, len(body))
                    budget.stats.bytes += len(body)
                    return body
                if status == 429:
                    limited += 1
                    if limited >= self.max_rate_limited:
                        raise LogHTTPError(url, f"HTTP 429 after {limited} tries", status)
                    budget.rate_limited(self._capped(retry_after), limited)
                    budget.stats.retries += 1
                    continue
                if status < 500:
                    text = _short(body[:200].decode("utf-8", "replace"))
                    raise LogHTTPError(url, f"HTTP {status}" + (f": {text}" if text else ""), status)
                failures += 1
                if status == 503 and failures < self.max_tries:
                    # "Service Unavailable": the log says it is overloaded, which is a request to slow down.
                    budget.overloaded(self._capped(retry_after), failures)
                    budget.stats.retries += 1
                    continue
                budget.stats.server_errors += 1
                if failures >= self.max_tries:
                    raise LogHTTPError(url, f"HTTP {status} after {failures} tries", status)
            budget.stats.retries += 1
            await asyncio.sleep(budget.backoff(failures))

    def _capped(self, retry_after: float | None) -> float | None:
        return None if retry_after is None else min(retry_after, self.retry_after_cap)

    async def _once(self, url: str) -> tuple[int, bytes, float | None]:
        headers = _IDENTITY if _is_loopback(url) else None
        async with self._get_session().get(url, max_redirects=5, headers=headers) as response:
            if response.status != 200:
                # Error bodies are only for the message; never read a large one.
                body = await response.content.read(4096)
                return response.status, body, parse_retry_after(response.headers.get("Retry-After"))
            length = response.content_length
            if length is not None and length > self.max_response_bytes:
                raise LogResponseError(
                    url, f"response of {length} bytes exceeds the limit of {self.max_response_bytes}"
                )
            chunks = []
            size = 0
            async for chunk in response.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > self.max_response_bytes:
                    raise LogResponseError(
                        url, f"response exceeds the limit of {self.max_response_bytes} bytes"
                    )
                chunks.append(chunk)
            return 200, b"".join(chunks), None

    async def get_json(self, url: str, budget: LogBudget | None = None) -> object:
        """GET url and parse its body as JSON; LogResponseError ("truncated JSON" …) if it is not."""
        return parse_json(url, await self.get(url, budget))


def parse_json(url: str, body: bytes) -> object:
    try:
        return json_document(body)
    except DecodeError as exc:
        raise LogResponseError(url, str(exc)) from None
