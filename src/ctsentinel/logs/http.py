"""One aiohttp session for every log: User-Agent, timeouts, a response size limit, retries within budgets.

Retried: 429 (after Retry-After, capped, or a jittered backoff), 5xx, timeouts and connection failures,
up to `max_tries` attempts (429s have their own, larger bound: a log that asks us to slow down is not
broken). Not retried: other 4xx, which a retry would only repeat. Every failure ends in one LogHTTPError
line naming the URL, and never a word of the response body: a log (or a host a tampered list names) must
not get its text into what ctsentinel stores and shows.

Every request has a deadline (`request_timeout`): its attempts and the pauses between them, not counting
the waits a log's own rate limit imposes, must end within it, so that a log sending one byte every few
seconds is an error for that log, not a monitor that waits forever. Redirects are followed only on the
same host (no other host, no file:), and with `public_only` a host name must resolve to public addresses.
"""

from __future__ import annotations

import asyncio
import email.utils
import errno
import ipaddress
import socket
import time
import urllib.parse
from http import HTTPStatus
from types import TracebackType

import aiohttp
from aiohttp.abc import ResolveResult
from aiohttp.resolver import ThreadedResolver

from ctsentinel import __version__
from ctsentinel.ct.entries import json_document
from ctsentinel.ct.errors import DecodeError
from ctsentinel.errors import Error
from ctsentinel.logs.budget import LogBudget
from ctsentinel.logs.urls import is_public_address, same_origin
from ctsentinel.terminal import safe_text

USER_AGENT = f"ctsentinel/{__version__} (+CT monitor)"
MAX_RESPONSE_BYTES = 64 << 20
# A tree head is a few hundred bytes; 1 MiB is the most a signed note (a checkpoint) may be.
TREE_HEAD_BYTES = 1 << 20
REQUEST_TIMEOUT = 60.0  # seconds for one request, retries included: a 64 MiB answer needs ~1 MB/s
_MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


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


class _Refused(Exception):
    """An answer not to retry: a redirect off the host, or a host that is not public."""


class _Deadline(Exception):
    """The request's deadline passed during an attempt."""


def _status_text(status: int) -> str:
    """'HTTP 404 (Not Found)': the status and its standard phrase, nothing the server wrote."""
    try:
        return f"HTTP {status} ({HTTPStatus(status).phrase})"
    except ValueError:
        return f"HTTP {status}"


class NotPublic(OSError):
    """A host name that resolves to no public address (raised inside aiohttp's connector)."""

    def __init__(self, host: str) -> None:
        super().__init__(errno.EADDRNOTAVAIL, f"{host} resolves to no public address")


class PublicOnlyResolver(ThreadedResolver):
    """Resolves a host name to its public addresses only: a log list cannot name a public-looking host
    whose DNS answer points into the monitor's own network."""

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        found: list[ResolveResult] = await super().resolve(host, port, family)
        public = [r for r in found if is_public_address(ipaddress.ip_address(r["host"]))]
        if not public:
            raise NotPublic(host)
        return public


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
        request_timeout: float = REQUEST_TIMEOUT,
        public_only: bool = False,
    ) -> None:
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.request_timeout = request_timeout
        self.public_only = public_only
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
                connector=aiohttp.TCPConnector(
                    limit=self._connections,
                    ttl_dns_cache=300,
                    resolver=PublicOnlyResolver() if self.public_only else None,
                ),
            )
        return self._session

    async def get(
        self,
        url: str,
        budget: LogBudget | None = None,
        *,
        max_bytes: int | None = None,
        max_tries: int | None = None,
    ) -> bytes:
        """The body of a 200 answer to GET url, within `budget` (a shared default one if None); a body over
        `max_bytes` (default: max_response_bytes) is a LogResponseError, read no further than that. A
        caller that will ask again later anyway may allow fewer `max_tries` than the client's."""
        tries = self.max_tries if max_tries is None else max_tries
        if budget is None:
            budget = self._default_budget = self._default_budget or LogBudget()
        # Hand-written rather than tenacity or stamina: every attempt takes a budget slot, a 429 counts
        # against its own bound and pauses the whole log (the budget's shared pause) instead of sleeping
        # here, and each way of giving up has its own message. A library needs a custom stop, wait and
        # error callback for these, more code than this loop; and stamina's jitter is not equal jitter.
        failures = limited = 0
        left = self.request_timeout  # of the deadline: attempts and backoff pauses use it up
        while True:
            try:
                async with budget.slot():
                    began = time.monotonic()
                    try:
                        status, body, retry_after = await self._once(url, left, max_bytes)
                    finally:
                        seconds = time.monotonic() - began
                        left -= seconds
            except _Deadline:
                budget.stats.timeouts += 1
                raise LogHTTPError(url, self._late(failures + 1)) from None
            except _Refused as exc:
                raise LogHTTPError(url, str(exc)) from None
            except TimeoutError:
                failures += 1
                if failures >= tries:
                    budget.stats.timeouts += 1
                    raise LogHTTPError(
                        url, f"timed out after {failures} tries (read timeout {self.read_timeout:g} s)"
                    ) from None
                # A log that does not answer in time is congested: slow down for every request to it.
                budget.timed_out(failures)
                budget.stats.retries += 1
                continue
            except aiohttp.ClientConnectorError as exc:
                if isinstance(exc.os_error, NotPublic):
                    raise LogHTTPError(url, str(exc.os_error.strerror)) from None
                failures += 1
                if failures >= tries:
                    detail = _short(str(exc) or type(exc).__name__)
                    raise LogHTTPError(url, f"{detail} (after {failures} tries)") from None
            except aiohttp.ClientError as exc:
                failures += 1
                if failures >= tries:
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
                    raise LogHTTPError(url, _status_text(status), status)
                failures += 1
                if status == 503 and failures < tries:
                    # "Service Unavailable": the log says it is overloaded, which is a request to slow down.
                    budget.overloaded(self._capped(retry_after), failures)
                    budget.stats.retries += 1
                    continue
                budget.stats.server_errors += 1
                if failures >= tries:
                    raise LogHTTPError(url, f"HTTP {status} after {failures} tries", status)
            budget.stats.retries += 1
            pause = budget.backoff(failures)
            if pause >= left:
                raise LogHTTPError(url, self._late(failures))
            await asyncio.sleep(pause)
            left -= pause

    def _capped(self, retry_after: float | None) -> float | None:
        return None if retry_after is None else min(retry_after, self.retry_after_cap)

    def _late(self, tries: int) -> str:
        return (
            f"no complete answer within the request deadline of {self.request_timeout:g} s "
            f"({tries} {'try' if tries == 1 else 'tries'})"
        )

    async def _once(self, url: str, left: float, limit: int | None) -> tuple[int, bytes, float | None]:
        """One attempt, redirects on the same host included, within `left` seconds (_Deadline)."""
        if left <= 0:
            raise _Deadline
        deadline = asyncio.timeout(left)
        try:
            async with deadline:
                return await self._follow(url, limit or self.max_response_bytes)
        except TimeoutError:
            # aiohttp's own timeouts (connect, read) are TimeoutErrors too: only ours is the deadline.
            if deadline.expired():
                raise _Deadline from None
            raise

    async def _follow(self, url: str, limit: int) -> tuple[int, bytes, float | None]:
        target = url
        for _ in range(_MAX_REDIRECTS + 1):
            self._check_host(target)
            status, body, retry_after, location = await self._fetch(target, limit)
            if status not in _REDIRECTS or location is None:
                return status, body, retry_after
            following = urllib.parse.urljoin(target, location)
            if not same_origin(target, following):
                shown = safe_text(following.split("?", 1)[0][:100])
                raise _Refused(f"{_status_text(status)} redirect to {shown} not followed: another host")
            target = following
        raise _Refused(f"more than {_MAX_REDIRECTS} redirects")

    def _check_host(self, url: str) -> None:
        if not self.public_only:
            return
        host = urllib.parse.urlsplit(url).hostname or ""
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return  # a name: PublicOnlyResolver checks what it resolves to
        if not is_public_address(address):
            raise _Refused(f"host {host} is not a public address")

    async def _fetch(self, url: str, limit: int) -> tuple[int, bytes, float | None, str | None]:
        headers = _IDENTITY if _is_loopback(url) else None
        async with self._get_session().get(url, allow_redirects=False, headers=headers) as response:
            if response.status != 200:
                # Error bodies are never read: nothing of them reaches a message.
                location = response.headers.get("Location")
                return response.status, b"", parse_retry_after(response.headers.get("Retry-After")), location
            length = response.content_length
            if length is not None and length > limit:
                raise LogResponseError(url, f"response of {length} bytes exceeds the limit of {limit}")
            chunks = []
            size = 0
            # Whatever has arrived, each time: fixed small chunks would slice and copy each network read
            # again, and a log answer is megabytes.
            while chunk := await response.content.readany():
                size += len(chunk)
                if size > limit:
                    raise LogResponseError(url, f"response exceeds the limit of {limit} bytes")
                chunks.append(chunk)
            return 200, b"".join(chunks), None, None

    async def get_json(self, url: str, budget: LogBudget | None = None) -> object:
        """GET url and parse its body as JSON; LogResponseError ("truncated JSON" …) if it is not."""
        return parse_json(url, await self.get(url, budget))


def parse_json(url: str, body: bytes) -> object:
    try:
        return json_document(body)
    except DecodeError as exc:
        raise LogResponseError(url, str(exc)) from None
