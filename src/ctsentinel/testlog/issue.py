"""How one CA issues: precertificate, SCT from the log, final certificate; or a lone certificate.

The final certificate is made the way RFC 6962 section 3.1 expects CAs to make it: its TBSCertificate is
the precertificate's with the poison extension replaced, in place, by the SCT list extension, so that
"TBS minus SCT list" of the certificate equals "TBS minus poison" of the precertificate byte for byte.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID, ExtensionOID

from ctsentinel.ct.signatures import LogSigner
from ctsentinel.ct.tiles import encode_leaf_index_extension
from ctsentinel.ct.tls import (
    DigitallySigned,
    LogEntryType,
    SignedCertificateTimestamp,
    encode_sct_list,
    sct_signature_input,
)
from ctsentinel.testlog import tbs as der_edit
from ctsentinel.testlog.ca import CA, CAKey

SubscriberPublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

POLICY_DV = x509.ObjectIdentifier("2.23.140.1.2.1")
POLICY_OV = x509.ObjectIdentifier("2.23.140.1.2.2")


@dataclass(frozen=True)
class SubscriberKey:
    """A subscriber's public key with what every certificate for it repeats (SKI), computed once."""

    public_key: SubscriberPublicKey
    ski: x509.SubjectKeyIdentifier
    spki_sha256: bytes

    @classmethod
    def of(cls, public_key: SubscriberPublicKey) -> SubscriberKey:
        spki = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return cls(
            public_key, x509.SubjectKeyIdentifier.from_public_key(public_key), hashlib.sha256(spki).digest()
        )

    @property
    def is_rsa(self) -> bool:
        return isinstance(self.public_key, rsa.RSAPublicKey)


@dataclass(frozen=True)
class CertRequest:
    serial: int
    subject: x509.Name
    dns_names: Sequence[str]
    ips: Sequence[IPAddress]
    key: SubscriberKey
    not_before: datetime.datetime
    not_after: datetime.datetime
    # The SAN extension's extnValue as raw DER, for hostile names cryptography would not encode.
    raw_san: bytes | None = None


class Issuer:
    """A CA as a signer of subscriber certificates, with its per-certificate extensions prepared once."""

    def __init__(self, ca: CA, *, validation: str = "dv") -> None:
        self.ca_id = ca.id
        self.name = ca.cert.subject
        self.key: CAKey = ca.key
        self.spki_sha256 = ca.spki_sha256
        host = ca.id.replace("-", "")
        self._aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key())
        self._aia = x509.AuthorityInformationAccess(
            [
                x509.AccessDescription(
                    AuthorityInformationAccessOID.OCSP,
                    x509.UniformResourceIdentifier(f"http://ocsp.{host}.example"),
                ),
                x509.AccessDescription(
                    AuthorityInformationAccessOID.CA_ISSUERS,
                    x509.UniformResourceIdentifier(f"http://cacerts.{host}.example/{host}.crt"),
                ),
            ]
        )
        self._policies = x509.CertificatePolicies(
            [x509.PolicyInformation(POLICY_OV if validation == "ov" else POLICY_DV, None)]
        )
        self._crl = x509.CRLDistributionPoints(
            [
                x509.DistributionPoint(
                    [x509.UniformResourceIdentifier(f"http://crl.{host}.example/{host}.crl")],
                    None,
                    None,
                    None,
                )
            ]
        )
        self._eku = x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH])
        self._bc = x509.BasicConstraints(ca=False, path_length=None)
        self._ku_ec = x509.KeyUsage(True, False, False, False, False, False, False, False, False)
        self._ku_rsa = x509.KeyUsage(True, False, True, False, False, False, False, False, False)
        self._poison = x509.PrecertPoison()
        self._hash = hashes.SHA256()

    def _builder(self, req: CertRequest) -> x509.CertificateBuilder:
        general: list[x509.GeneralName] = [x509.DNSName(n) for n in req.dns_names]
        general.extend(x509.IPAddress(ip) for ip in req.ips)
        if req.raw_san is not None:
            san: x509.ExtensionType = x509.UnrecognizedExtension(
                ExtensionOID.SUBJECT_ALTERNATIVE_NAME, req.raw_san
            )
        else:
            san = x509.SubjectAlternativeName(general)
        return (
            x509.CertificateBuilder(
                issuer_name=self.name,
                subject_name=req.subject,
                public_key=req.key.public_key,
                serial_number=req.serial,
                not_valid_before=req.not_before,
                not_valid_after=req.not_after,
            )
            .add_extension(self._ku_rsa if req.key.is_rsa else self._ku_ec, critical=True)
            .add_extension(self._eku, critical=False)
            .add_extension(self._bc, critical=True)
            .add_extension(req.key.ski, critical=False)
            .add_extension(self._aki, critical=False)
            .add_extension(self._aia, critical=False)
            # RFC 5280 4.2.1.6: critical when the subject is empty.
            .add_extension(san, critical=len(req.subject) == 0)
            .add_extension(self._policies, critical=False)
            .add_extension(self._crl, critical=False)
        )

    def precertificate(self, req: CertRequest) -> bytes:
        cert = self._builder(req).add_extension(self._poison, critical=True).sign(self.key, self._hash)
        return cert.public_bytes(serialization.Encoding.DER)

    def certificate(self, req: CertRequest) -> bytes:
        """A certificate with neither poison nor SCTs: logged on its own, as some CAs and crawlers do."""
        return self._builder(req).sign(self.key, self._hash).public_bytes(serialization.Encoding.DER)

    def final_certificate(self, precertificate: bytes, sct_list: bytes) -> bytes:
        """The certificate for `precertificate`, carrying `sct_list` (a TLS SCT list)."""
        tbs, algorithm, _ = der_edit.split_certificate(precertificate)
        sct_extension = der_edit.extension(
            der_edit.SCT_LIST_OID, der_edit.tlv(der_edit.OCTET_STRING, sct_list)
        )
        final_tbs = der_edit.rewrite_extensions(
            tbs, lambda oid, _: sct_extension if oid == der_edit.POISON_OID else None
        )
        return der_edit.certificate(final_tbs, algorithm, self.sign(final_tbs))

    def sign(self, data: bytes) -> bytes:
        if isinstance(self.key, rsa.RSAPrivateKey):
            return self.key.sign(data, padding.PKCS1v15(), self._hash)
        return self.key.sign(data, ec.ECDSA(self._hash))


def precert_signed_entry(precertificate: bytes) -> bytes:
    """RFC 6962's precert_entry signed_entry: the TBSCertificate without the poison extension."""
    tbs, _, _ = der_edit.split_certificate(precertificate)
    return der_edit.without_extensions(tbs, der_edit.POISON_OID)


def log_sct(
    signer: LogSigner, timestamp: int, precertificate: bytes, issuer_key_hash: bytes, leaf_index: int
) -> SignedCertificateTimestamp:
    """The SCT the log issues for `precertificate` logged at `leaf_index` and `timestamp`.

    A real signature by the log's key, with the static-ct-api leaf_index extension that this log (like
    Sunlight) puts in every SCT: the same bytes LogStorage.add(sign=True) would return, bar ECDSA's nonce.
    """
    extensions = encode_leaf_index_extension(leaf_index)
    unsigned = SignedCertificateTimestamp(
        0, signer.public_key.log_id, timestamp, extensions, DigitallySigned(0, 0, b"")
    )
    data = sct_signature_input(
        unsigned, LogEntryType.PRECERT_ENTRY, precert_signed_entry(precertificate), issuer_key_hash
    )
    return dataclasses.replace(unsigned, signature=signer.sign(data))


def embedded_sct_list(
    signer: LogSigner, timestamp: int, precertificate: bytes, issuer_key_hash: bytes, leaf_index: int
) -> bytes:
    """The SignedCertificateTimestampList a CA embeds in the final certificate."""
    return encode_sct_list([log_sct(signer, timestamp, precertificate, issuer_key_hash, leaf_index)])
