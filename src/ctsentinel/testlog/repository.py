"""The CAs' repository: real CRLs and an OCSP responder for every CA of the test log, on 127.0.0.1.

Served at the URL recorded in DIR/cas/repository.json (see ca.py), beside the log:

  GET  /crl/<ca>.crl           the CA's complete CRL (DER): every revocation of DIR/cas/revoked.json in
                               force now, with its reason; thisUpdate now, nextUpdate in 7 days
  POST /ocsp/<ca>              RFC 6960 OCSP (application/ocsp-request), answered and signed by the CA
  GET  /ocsp/<ca>/<request>    the same, the request base64 in the path (RFC 6960 appendix A.1)
  GET  /issuers/<ca>.crt       the CA's certificate (DER), the caIssuers URL of what it issues

Faults (testlog/faults.py) that touch only the repository: crl-unavailable, ocsp-unavailable (HTTP 503),
repository-refused (its port refuses connections), stale-crl (nextUpdate a day ago), ocsp-lies ("good"
for serials the CRL lists) and ocsp-unknown ("unknown" for every serial). The log's own faults (slow,
server-error, ...) do not apply here.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import logging
import urllib.parse

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from ctsentinel.certs.der import BIT_STRING, elements, read_tlv
from ctsentinel.testlog.ca import CA, CAHierarchy, repository_port
from ctsentinel.testlog.faults import Faults
from ctsentinel.testlog.revocations import RevocationBook

log = logging.getLogger("ctsentinel.testlog")

CRL_LIFETIME = datetime.timedelta(days=7)  # the BR allow up to 10 days for a CRL of subscriber certificates
OCSP_LIFETIME = datetime.timedelta(days=4)
_STALE_BY = datetime.timedelta(days=1)
_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    "sha1": hashes.SHA1,
    "sha256": hashes.SHA256,
    "sha384": hashes.SHA384,
    "sha512": hashes.SHA512,
}


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _subject_public_key(spki_der: bytes) -> bytes:
    """The subjectPublicKey BIT STRING contents (less its unused-bits octet): what OCSP key hashes cover."""
    _, start, end = read_tlv(spki_der, 0, len(spki_der))
    fields = list(elements(spki_der, start, end))
    tag, _, body, stop = fields[1]
    if tag != BIT_STRING:
        raise ValueError("SubjectPublicKeyInfo without a BIT STRING")
    return spki_der[body + 1 : stop]


class Repository:
    """What the CAs publish, computed per request from DIR's revocations and the active faults."""

    def __init__(self, hierarchy: CAHierarchy, book: RevocationBook, faults: Faults) -> None:
        self.hierarchy = hierarchy
        self.book = book
        self.faults = faults
        self._ids = {ca.id for ca in hierarchy}

    def ca(self, ca_id: str) -> CA:
        if ca_id not in self._ids:
            raise web.HTTPNotFound(text=f"no CA {ca_id!r} here\n")
        return self.hierarchy[ca_id]

    def crl(self, ca: CA, now: datetime.datetime) -> bytes:
        this_update = now
        if "stale-crl" in self.faults:
            # As if the CA stopped publishing: its last CRL expired a day ago.
            this_update = now - CRL_LIFETIME - _STALE_BY
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(ca.cert.subject)
            .last_update(this_update)
            .next_update(this_update + CRL_LIFETIME)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), False)
            .add_extension(x509.CRLNumber(int(this_update.timestamp())), critical=False)
        )
        for revocation in self.book.effective(ca.id, this_update):
            entry = (
                x509.RevokedCertificateBuilder()
                .serial_number(revocation.serial)
                .revocation_date(revocation.revoked_at)
            )
            if revocation.reason is not None:
                entry = entry.add_extension(x509.CRLReason(revocation.reason), critical=False)
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    def ocsp(self, ca: CA, request_der: bytes, now: datetime.datetime) -> bytes:
        try:
            request = ocsp.load_der_ocsp_request(request_der)
            algorithm = _HASHES[request.hash_algorithm.name]()
        except (ValueError, KeyError, NotImplementedError):
            return _unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST)
        if (request.issuer_name_hash, request.issuer_key_hash) != self._issuer_hashes(ca, algorithm):
            # A certificate of another CA: not this responder's to answer (RFC 6960 2.3).
            return _unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED)
        revocation = self.book.lookup(ca.id, request.serial_number, now)
        if revocation is not None and "ocsp-lies" not in self.faults:
            status = ocsp.OCSPCertStatus.REVOKED
        elif "ocsp-unknown" in self.faults:
            status = ocsp.OCSPCertStatus.UNKNOWN
        else:
            status = ocsp.OCSPCertStatus.GOOD
        listed = revocation if status == ocsp.OCSPCertStatus.REVOKED else None
        builder = (
            ocsp.OCSPResponseBuilder()
            .add_response_by_hash(
                request.issuer_name_hash,
                request.issuer_key_hash,
                request.serial_number,
                algorithm,
                status,
                now,
                now + OCSP_LIFETIME,
                None if listed is None else listed.revoked_at,
                None if listed is None else listed.reason,
            )
            .responder_id(ocsp.OCSPResponderEncoding.HASH, ca.cert)
        )
        try:
            nonce = request.extensions.get_extension_for_class(x509.OCSPNonce).value
            builder = builder.add_extension(nonce, critical=False)
        except x509.ExtensionNotFound:
            pass
        return builder.sign(ca.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)

    @staticmethod
    def _issuer_hashes(ca: CA, algorithm: hashes.HashAlgorithm) -> tuple[bytes, bytes]:
        name, key = hashlib.new(algorithm.name), hashlib.new(algorithm.name)
        name.update(ca.cert.subject.public_bytes())
        key.update(_subject_public_key(ca.spki_der))
        return name.digest(), key.digest()


def _unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


REPOSITORY: web.AppKey[Repository] = web.AppKey("repository", Repository)
_UNAVAILABLE = "Service Unavailable (injected fault)\n"


async def get_crl(request: web.Request) -> web.Response:
    repository = request.app[REPOSITORY]
    ca = repository.ca(request.match_info["ca"])
    if "crl-unavailable" in repository.faults:
        return web.Response(status=503, text=_UNAVAILABLE)
    return web.Response(body=repository.crl(ca, _now()), content_type="application/pkix-crl")


async def _answer_ocsp(request: web.Request, body: bytes) -> web.Response:
    repository = request.app[REPOSITORY]
    ca = repository.ca(request.match_info["ca"])
    if "ocsp-unavailable" in repository.faults:
        return web.Response(status=503, text=_UNAVAILABLE)
    return web.Response(body=repository.ocsp(ca, body, _now()), content_type="application/ocsp-response")


async def post_ocsp(request: web.Request) -> web.Response:
    return await _answer_ocsp(request, await request.read())


async def get_ocsp(request: web.Request) -> web.Response:
    text = urllib.parse.unquote(request.match_info["request"])
    try:
        body = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        body = b""
    return await _answer_ocsp(request, body)


async def get_certificate(request: web.Request) -> web.Response:
    ca = request.app[REPOSITORY].ca(request.match_info["ca"])
    return web.Response(body=ca.der, content_type="application/pkix-cert")


def create_repository_app(repository: Repository) -> web.Application:
    app = web.Application()
    app[REPOSITORY] = repository
    app.router.add_get("/crl/{ca}.crl", get_crl)
    app.router.add_post("/ocsp/{ca}", post_ocsp)
    app.router.add_get("/ocsp/{ca}/{request:.+}", get_ocsp)
    app.router.add_get("/issuers/{ca}.crt", get_certificate)
    return app


class RepositoryServer:
    """The repository's listener on its recorded port: open, or closed while repository-refused is set."""

    def __init__(self, repository: Repository) -> None:
        self.repository = repository
        self.url = repository.hierarchy.repository
        self._runner: web.AppRunner | None = None

    @property
    def is_open(self) -> bool:
        return self._runner is not None

    async def sync(self) -> None:
        """Open or close the listener as the repository-refused fault says."""
        if "repository-refused" in self.repository.faults:
            await self.close()
        elif self._runner is None:
            runner = web.AppRunner(create_repository_app(self.repository), access_log=None)
            await runner.setup()
            try:
                await web.TCPSite(runner, "127.0.0.1", repository_port(self.url), reuse_address=True).start()
            except OSError:
                await runner.cleanup()
                raise
            self._runner = runner

    async def close(self) -> None:
        if self._runner is not None:
            runner, self._runner = self._runner, None
            await runner.cleanup()
