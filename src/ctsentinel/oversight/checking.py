"""Revocation checks on a schedule inside `run`: for every alerted issuance, and for every certificate of a
CA whose [[ca_watch]] asks (revocation = "all"), what its CA's CRL and OCSP responder say.

Each check fetches the certificate's CRL (once per check pass for all the certificates that name it) and
asks its OCSP responder (RFC 6960 GET), both through the run's HTTP client (its timeouts, size limit and
retries) within a budget per server, like a log's (LogBudget: the rate it tolerates, learned; backoff after
refusals; the [logs] ceilings).
Answers are verified against the issuer: the CA certificate whose key verifies the certificate, among
those logs served with it (a hint) or fetched from its caIssuers URL. The combined status:

- revoked if a fresh or stale source says so (revocation is final; a stale CRL still proves it);
- good if one says good (a stale source cannot say good: it says unknown);
- unknown if the sources answered but could not vouch either way; or if none answered and nothing was
  known before (a status already known stands when the sources are unreachable);

a CRL listing the certificate while the responder says good is a contradiction. Revoked and contradiction
are news: the store queues a RevocationEvent per alert of the issuance. The next check comes after
`interval` ([monitor] revocation_interval), sooner with backoff after checks that learned nothing; none
after a revocation, nor once the certificate has expired and a source has answered (a CA may drop an
expired certificate from its CRL: what it said last stands).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import os
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.serialization import Encoding

from ctsentinel.certs.issuer import verified_issuer
from ctsentinel.errors import Error
from ctsentinel.logs.budget import LogBudget
from ctsentinel.logs.http import HttpClient, LogHTTPError, LogResponseError
from ctsentinel.notify.events import RevocationEvent
from ctsentinel.oversight.crl import Crl, crl_urls, verify_crl
from ctsentinel.oversight.ocsp import build_ocsp_request, ocsp_urls, verify_ocsp_response
from ctsentinel.oversight.revocation import (
    RevocationAnswer,
    RevocationError,
    RevocationStatus,
    contradicts,
)
from ctsentinel.oversight.services import Services
from ctsentinel.retry import Backoff, Jitter
from ctsentinel.store import (
    Alert,
    RevocationChange,
    RevocationCheck,
    RevocationDue,
    SourceWord,
    StoredEntry,
)
from ctsentinel.timefmt import rfc3339

CHECK_INTERVAL = datetime.timedelta(hours=6)
BATCH = 64  # issuances per pass
_IDLE_POLL = 30.0  # seconds between looks for due checks when nothing woke us
_RETRY = Backoff(base=60.0, cap=CHECK_INTERVAL.total_seconds(), jitter=Jitter.EQUAL)
# Tries per CRL or OCSP request: a server that fails twice is unreachable for this pass, and the check is
# due again later (_RETRY), so retrying for half a minute as a log request does would only hold the pass.
TRIES = 2
# Statuses of a SourceWord without an answer.
UNREACHABLE, INVALID, ABSENT = "unreachable", "invalid", "absent"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _origin(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass
class _Pass:
    """What one pass over the due checks shares: each CRL fetched and verified once (per URL and the issuer
    it is checked against), each unreachable server tried once."""

    at: datetime.datetime
    crls: dict[tuple[str, bytes], asyncio.Task[Crl]] = field(default_factory=dict)
    issuers: dict[str, asyncio.Task[bytes]] = field(default_factory=dict)
    down: dict[str, str] = field(default_factory=dict)  # origin -> why it could not be reached


class RevocationChecker:
    """The run's companion that checks revocation when it is due (monitor.pipeline.Companion)."""

    def __init__(
        self,
        *,
        interval: datetime.timedelta = CHECK_INTERVAL,
        concurrency: int | None = None,
        requests_per_second: float | None = None,
    ) -> None:
        self.interval = interval
        self.concurrency = concurrency
        self.requests_per_second = requests_per_second
        self.checked = 0  # checks recorded by this run
        self._budgets: dict[str, LogBudget] = {}
        self._wake = asyncio.Event()

    def committed(self, entries: Sequence[StoredEntry]) -> None:
        if any(entry.revocation or entry.findings for entry in entries):
            self._wake.set()

    async def run(self, services: Services, stop: asyncio.Event) -> None:
        while not stop.is_set():
            if not await self.check_due(services):
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), _IDLE_POLL)

    async def finish(self, services: Services) -> None:
        """--once: every check due now, once (what it reschedules is for a later run)."""
        started = _now()
        while await self.check_due(services, due_by=started):
            pass

    async def check_due(self, services: Services, due_by: datetime.datetime | None = None) -> int:
        """One pass: the checks due now (or by `due_by`), at most BATCH; returns how many were recorded."""
        store = services.gateway.store
        now = _now()
        due: list[RevocationDue] = await services.gateway.call(store.revocations_due, due_by or now, BATCH)
        if not due:
            return 0
        shared = _Pass(now)
        try:
            checks = await asyncio.gather(*(self._check(services.http, item, shared) for item in due))
        finally:
            for task in [*shared.crls.values(), *shared.issuers.values()]:
                task.cancel()
        queued = 0
        for check in checks:
            queued += await services.gateway.call(
                store.record_revocation, check, services.gateway.routes, _EventFactory(check)
            )
        self.checked += len(checks)
        if queued:
            services.wake_sender()
        return len(checks)

    # --- one issuance ------------------------------------------------------------------------------------

    async def _check(self, http: HttpClient, item: RevocationDue, shared: _Pass) -> RevocationCheck:
        try:
            certificate = x509.load_der_x509_certificate(item.der or b"")
        except ValueError as exc:
            why = f"the certificate cannot be parsed: {_first_line(exc)}"
            return self._outcome(item, shared.at, [SourceWord("crl", None, INVALID, why)], final=True)
        try:
            crls, ocsps = crl_urls(certificate), ocsp_urls(certificate)
        except RevocationError as exc:
            return self._outcome(item, shared.at, [SourceWord("crl", None, INVALID, str(exc))], final=True)
        issuer, why = await self._issuer(http, certificate, item, shared)
        words: list[SourceWord] = []
        answers: dict[str, RevocationAnswer] = {}
        for source, urls in (("crl", crls), ("ocsp", ocsps)):
            if not urls:
                words.append(
                    SourceWord(source, None, ABSENT, f"the certificate names no {source.upper()} URL")
                )
            elif issuer is None:
                words.append(SourceWord(source, urls[0], INVALID, why))
            else:
                ask = self._crl if source == "crl" else self._ocsp
                word, answer = await ask(http, certificate, issuer, urls, shared)
                words.append(word)
                if answer is not None:
                    answers[source] = answer
        return self._combined(item, certificate, shared.at, words, answers)

    async def _issuer(
        self, http: HttpClient, certificate: x509.Certificate, item: RevocationDue, shared: _Pass
    ) -> tuple[x509.Certificate | None, str]:
        """The CA certificate whose key verifies `certificate`: one the logs served with it, else one from
        its caIssuers URL."""
        found = _verifying(item.der, item.issuers)
        if found is not None:
            return found, ""
        for url in _ca_issuers_urls(certificate):
            task = shared.issuers.get(url)
            if task is None:
                task = shared.issuers[url] = asyncio.create_task(self._get(http, url, shared))
            try:
                data = await asyncio.shield(task)
            except Error:
                continue
            found = _verifying(item.der, _certificates(data))
            if found is not None:
                return found, ""
        return None, "no issuer certificate at hand verifies it (from the logs or its caIssuers URL)"

    async def _crl(
        self,
        http: HttpClient,
        certificate: x509.Certificate,
        issuer: x509.Certificate,
        urls: Sequence[str],
        shared: _Pass,
    ) -> tuple[SourceWord, RevocationAnswer | None]:
        word = SourceWord("crl", urls[0], UNREACHABLE, "not tried")
        for url in urls:
            key = (url, issuer.fingerprint(hashes.SHA256()))
            task = shared.crls.get(key)
            if task is None:
                task = shared.crls[key] = asyncio.create_task(self._verified_crl(http, url, issuer, shared))
            try:
                crl = await asyncio.shield(task)
                answer = crl.answer(certificate.serial_number, shared.at)
            except RevocationError as exc:
                word = SourceWord("crl", url, INVALID, str(exc))
                continue
            except Error as exc:
                word = SourceWord("crl", url, UNREACHABLE, str(exc))
                continue
            return _word("crl", url, answer), answer
        return word, None

    async def _verified_crl(self, http: HttpClient, url: str, issuer: x509.Certificate, shared: _Pass) -> Crl:
        # A CRL may list a hundred thousand serials: parsed and its signature checked once a pass, not once
        # for each certificate of the CA that is due.
        return verify_crl(await self._get(http, url, shared), issuer)

    async def _ocsp(
        self,
        http: HttpClient,
        certificate: x509.Certificate,
        issuer: x509.Certificate,
        urls: Sequence[str],
        shared: _Pass,
    ) -> tuple[SourceWord, RevocationAnswer | None]:
        word = SourceWord("ocsp", urls[0], UNREACHABLE, "not tried")
        for url in urls:
            try:
                request = build_ocsp_request(certificate.serial_number, issuer, nonce=os.urandom(16))
                # RFC 6960 appendix A.1: GET {url}/{url-encoding of base-64 encoding of the DER request}
                path = urllib.parse.quote(base64.b64encode(request.der).decode("ascii"), safe="")
                data = await self._get(http, url.rstrip("/") + "/" + path, shared)
                answer = verify_ocsp_response(data, request, issuer, at=shared.at)
            except RevocationError as exc:
                word = SourceWord("ocsp", url, INVALID, str(exc))
                continue
            except Error as exc:
                word = SourceWord("ocsp", url, UNREACHABLE, str(exc))
                continue
            return _word("ocsp", url, answer), answer
        return word, None

    async def _get(self, http: HttpClient, url: str, shared: _Pass) -> bytes:
        """GET within the server's budget; a server that could not be reached at all (refused, timed out) in
        this pass is not asked again in it."""
        origin = _origin(url)
        if origin in shared.down:
            raise _Unreachable(f"{url}: not asked: {shared.down[origin]}")
        budget = self._budgets.get(origin)
        if budget is None:
            budget = self._budgets[origin] = LogBudget(self.concurrency, self.requests_per_second)
        try:
            return await http.get(url, budget, max_tries=TRIES)
        except LogHTTPError as exc:
            if exc.status is None and not isinstance(exc, LogResponseError):  # no answer at all
                shared.down.setdefault(origin, str(exc))
            raise

    # --- the outcome -------------------------------------------------------------------------------------

    def _combined(
        self,
        item: RevocationDue,
        certificate: x509.Certificate,
        at: datetime.datetime,
        words: list[SourceWord],
        answers: dict[str, RevocationAnswer],
    ) -> RevocationCheck:
        crl, ocsp = answers.get("crl"), answers.get("ocsp")
        contradiction = crl is not None and ocsp is not None and contradicts(crl, ocsp)
        chosen = (
            _first(RevocationStatus.REVOKED, crl, ocsp)
            or _first(RevocationStatus.GOOD, ocsp, crl)
            or _first(RevocationStatus.UNKNOWN, crl, ocsp)
        )
        expired = certificate.not_valid_after_utc < at
        if chosen is None:
            if item.status is not None:  # what is known stands while the sources are unreachable
                return self._outcome(item, at, words, final=False, contradiction=contradiction)
            source = next((w.source for w in words if w.status != ABSENT), None)
            final = all(w.status == ABSENT for w in words)  # nowhere to ask; else ask again later
            return RevocationCheck(
                item.issuance, RevocationStatus.UNKNOWN.value, None, None, source, tuple(words),
                contradiction, at, None if final else at + self._retry_after(item.failures + 1),
                answered=False,
            )  # fmt: skip
        revoked = chosen.status is RevocationStatus.REVOKED
        return RevocationCheck(
            issuance=item.issuance,
            status=chosen.status.value,
            reason=None if chosen.reason is None else chosen.reason.value,
            revoked_at=chosen.revoked_at,
            source=chosen.source.value,
            words=tuple(words),
            contradiction=contradiction,
            checked_at=at,
            next_check_at=None if revoked or expired else at + self.interval,
        )

    def _outcome(
        self,
        item: RevocationDue,
        at: datetime.datetime,
        words: list[SourceWord],
        *,
        final: bool,
        contradiction: bool = False,
    ) -> RevocationCheck:
        """Nothing new learned: the known status stands (or becomes unknown if there was none)."""
        status = None if item.status is not None else RevocationStatus.UNKNOWN.value
        source = None if status is None else words[0].source if words else None
        later = None if final else at + self._retry_after(item.failures + 1)
        return RevocationCheck(
            item.issuance, status, None, None, source, tuple(words), contradiction, at, later
        )

    def _retry_after(self, failures: int) -> datetime.timedelta:
        return min(self.interval, datetime.timedelta(seconds=_RETRY.delay(failures)))


class _Unreachable(Error):
    """A server already found unreachable in this pass."""


def _first(status: RevocationStatus, *answers: RevocationAnswer | None) -> RevocationAnswer | None:
    return next((a for a in answers if a is not None and a.status is status), None)


def _word(source: str, url: str, answer: RevocationAnswer) -> SourceWord:
    return SourceWord(
        source=source,
        url=url,
        status=answer.status.value,
        detail="stale: past its nextUpdate" if answer.stale else None,
        reason=None if answer.reason is None else answer.reason.value,
        revoked_at=answer.revoked_at,
        this_update=answer.this_update,
        next_update=answer.next_update,
    )


def _verifying(der: bytes | None, candidates: Sequence[bytes]) -> x509.Certificate | None:
    """The candidate whose key verifies the certificate `der` (certs.issuer: the issuer is that key)."""
    found = None if der is None else verified_issuer(der, candidates)
    if found is None:
        return None
    try:
        return x509.load_der_x509_certificate(found.der)
    except ValueError:
        return None


def _ca_issuers_urls(certificate: x509.Certificate) -> list[str]:
    try:
        access = certificate.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except (x509.ExtensionNotFound, ValueError):
        return []
    return [
        d.access_location.value
        for d in access
        if d.access_method == x509.oid.AuthorityInformationAccessOID.CA_ISSUERS
        and isinstance(d.access_location, x509.UniformResourceIdentifier)
        and d.access_location.value.lower().startswith(("http://", "https://"))
    ]


def _certificates(data: bytes) -> list[bytes]:
    """A caIssuers answer: a DER certificate (as RFC 5280 says), or PEM (seen in the wild)."""
    if data.lstrip().startswith(b"-----BEGIN"):
        with contextlib.suppress(ValueError):
            return [c.public_bytes(Encoding.DER) for c in x509.load_pem_x509_certificates(data)]
        return []
    return [data]


@dataclass(frozen=True)
class _EventFactory:
    """Builds, inside the store's transaction, the event for each alert a check has news about."""

    check: RevocationCheck

    def __call__(self, alert: Alert, change: RevocationChange) -> RevocationEvent:
        return RevocationEvent(alert, change.value, describe(self.check, change), self.check.checked_at)


def describe(check: RevocationCheck, change: RevocationChange) -> str:
    """One line: what each source said."""
    parts = []
    for word in check.words:
        said = word.status
        if word.status == RevocationStatus.REVOKED.value:
            when = "" if word.revoked_at is None else f" at {rfc3339(word.revoked_at)}"
            said = f"revoked ({word.reason or 'no reason given'}){when}"
        elif word.detail:
            said = f"{word.status} ({word.detail})"
        parts.append(f"{word.source.upper()} {word.url or '-'}: {said}")
    lead = (
        "the OCSP responder says good for a certificate its CA's CRL lists as revoked"
        if change is RevocationChange.CONTRADICTION
        else "revoked by its CA"
    )
    return f"{lead}; " + "; ".join(parts)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
