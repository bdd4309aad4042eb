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
from collections.abc import Callable, Sequence
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
    spki_der: bytes
    spki_sha256: bytes
    ski_extension: bytes  # the whole SubjectKeyIdentifier Extension, DER

    @classmethod
    def of(cls, public_key: SubscriberPublicKey) -> SubscriberKey:
        spki = public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
        return cls(public_key, ski, spki, hashlib.sha256(spki).digest(), _extension(ski, critical=False))

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


_SHA256_WITH_RSA = bytes.fromhex("300d06092a864886f70d01010b0500")  # AlgorithmIdentifier, NULL parameters
_ECDSA_WITH_SHA256 = bytes.fromhex("300a06082a8648ce3d040302")  # AlgorithmIdentifier, no parameters
_VERSION_3 = bytes.fromhex("a003020102")
_DNS_NAME_TAG = 0x82  # GeneralName [2] IA5String
_IP_ADDRESS_TAG = 0x87  # GeneralName [7] OCTET STRING


def oid_contents(dotted: str) -> bytes:
    """The contents octets of an OBJECT IDENTIFIER (X.690 8.19)."""
    arcs = [int(a) for a in dotted.split(".")]
    out = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return bytes(out)


def _extension(value: x509.ExtensionType, *, critical: bool) -> bytes:
    return der_edit.extension(oid_contents(value.oid.dotted_string), value.public_bytes(), critical=critical)


def _time(when: datetime.datetime) -> bytes:
    """RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050."""
    when = when.astimezone(datetime.UTC)
    if 1950 <= when.year < 2050:
        return der_edit.tlv(0x17, when.strftime("%y%m%d%H%M%SZ").encode("ascii"))
    return der_edit.tlv(0x18, when.strftime("%Y%m%d%H%M%SZ").encode("ascii"))


def _integer(value: int) -> bytes:
    return der_edit.tlv(0x02, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def san_value(dns_names: Sequence[str], ips: Sequence[IPAddress]) -> bytes:
    """GeneralNames DER, dNSNames then iPAddresses, as cryptography's SubjectAlternativeName encodes them."""
    names = [der_edit.tlv(_DNS_NAME_TAG, n.encode("ascii")) for n in dns_names]
    names.extend(der_edit.tlv(_IP_ADDRESS_TAG, ip.packed) for ip in ips)
    return der_edit.tlv(der_edit.SEQUENCE, b"".join(names))


class Issuer:
    """A CA as a signer of subscriber certificates, with its per-certificate extensions prepared once.

    Certificates are assembled from prepared DER pieces (about five times cheaper than CertificateBuilder,
    whose per-extension Python objects cost more than an ECDSA signature); `build_with_cryptography` is the
    reference the tests hold the assembly to, byte for byte.
    """

    def __init__(self, ca: CA, *, validation: str = "dv") -> None:
        self.ca_id = ca.id
        self.name = ca.cert.subject
        self.key: CAKey = ca.key
        self.spki_sha256 = ca.spki_sha256
        self._aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key())
        self._aia = x509.AuthorityInformationAccess(
            [
                x509.AccessDescription(
                    AuthorityInformationAccessOID.OCSP,
                    x509.UniformResourceIdentifier(ca.ocsp_url),
                ),
                x509.AccessDescription(
                    AuthorityInformationAccessOID.CA_ISSUERS,
                    x509.UniformResourceIdentifier(ca.certificate_url),
                ),
            ]
        )
        self._policies = x509.CertificatePolicies(
            [x509.PolicyInformation(POLICY_OV if validation == "ov" else POLICY_DV, None)]
        )
        self._crl = x509.CRLDistributionPoints(
            [
                x509.DistributionPoint(
                    [x509.UniformResourceIdentifier(ca.crl_url)],
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
        self._algorithm = _SHA256_WITH_RSA if isinstance(self.key, rsa.RSAPrivateKey) else _ECDSA_WITH_SHA256
        self._issuer_der = self.name.public_bytes()
        self._ku_ec_der = _extension(self._ku_ec, critical=True)
        self._ku_rsa_der = _extension(self._ku_rsa, critical=True)
        self._middle_der = _extension(self._eku, critical=False) + _extension(self._bc, critical=True)
        self._authority_der = _extension(self._aki, critical=False) + _extension(self._aia, critical=False)
        self._tail_der = _extension(self._policies, critical=False) + _extension(self._crl, critical=False)
        self._poison_der = _extension(self._poison, critical=True)

    def _parts(self, req: CertRequest) -> tuple[bytes, bytes]:
        """(TBS fields before the extensions, the extensions before any CT extension)."""
        value = req.raw_san if req.raw_san is not None else san_value(req.dns_names, req.ips)
        extensions = b"".join(
            (
                self._ku_rsa_der if req.key.is_rsa else self._ku_ec_der,
                self._middle_der,
                req.key.ski_extension,
                self._authority_der,
                # RFC 5280 4.2.1.6: critical when the subject is empty.
                der_edit.extension(der_edit.SAN_OID, value, critical=len(req.subject) == 0),
                self._tail_der,
            )
        )
        head = b"".join(
            (
                _VERSION_3,
                _integer(req.serial),
                self._algorithm,
                self._issuer_der,
                der_edit.tlv(der_edit.SEQUENCE, _time(req.not_before) + _time(req.not_after)),
                req.subject.public_bytes(),
                req.key.spki_der,
            )
        )
        return head, extensions

    @staticmethod
    def _assemble(head: bytes, extensions: bytes) -> bytes:
        return der_edit.tlv(
            der_edit.SEQUENCE, head + der_edit.tlv(0xA3, der_edit.tlv(der_edit.SEQUENCE, extensions))
        )

    def tbs(self, req: CertRequest, *, poison: bool) -> bytes:
        """The TBSCertificate for `req`, with the CT poison last when `poison`."""
        head, extensions = self._parts(req)
        return self._assemble(head, extensions + self._poison_der if poison else extensions)

    def pair(self, req: CertRequest, sct_list_for: Callable[[bytes], bytes]) -> tuple[bytes, bytes]:
        """(precertificate, final certificate); sct_list_for(precert_entry signed_entry) returns the SCT list.

        The three TBSes (with poison, with neither, with the SCT list) share every byte but the last
        extension, so nothing is parsed back.
        """
        head, extensions = self._parts(req)
        precertificate = self._signed(self._assemble(head, extensions + self._poison_der))
        sct_list = sct_list_for(self._assemble(head, extensions))
        sct_extension = der_edit.extension(
            der_edit.SCT_LIST_OID, der_edit.tlv(der_edit.OCTET_STRING, sct_list)
        )
        return precertificate, self._signed(self._assemble(head, extensions + sct_extension))

    def _signed(self, tbs: bytes) -> bytes:
        return der_edit.certificate(tbs, self._algorithm, self.sign(tbs))

    def _builder(self, req: CertRequest) -> x509.CertificateBuilder:
        san: x509.ExtensionType
        if req.raw_san is not None:
            san = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, req.raw_san)
        else:
            general: list[x509.GeneralName] = [x509.DNSName(n) for n in req.dns_names]
            general.extend(x509.IPAddress(ip) for ip in req.ips)
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

    def build_with_cryptography(self, req: CertRequest, *, poison: bool) -> bytes:
        """The same certificate through CertificateBuilder: the reference, and the benchmark's baseline."""
        builder = self._builder(req)
        if poison:
            builder = builder.add_extension(self._poison, critical=True)
        return builder.sign(self.key, self._hash).public_bytes(serialization.Encoding.DER)

    def precertificate(self, req: CertRequest) -> bytes:
        return self._signed(self.tbs(req, poison=True))

    def certificate(self, req: CertRequest) -> bytes:
        """A certificate with neither poison nor SCTs: logged on its own, as some CAs and crawlers do."""
        return self._signed(self.tbs(req, poison=False))

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
    signer: LogSigner, timestamp: int, signed_entry: bytes, issuer_key_hash: bytes, leaf_index: int
) -> SignedCertificateTimestamp:
    """The SCT the log issues for a precertificate (`signed_entry`: its TBS minus poison) at `leaf_index`.

    A real signature by the log's key, with the static-ct-api leaf_index extension that this log (like
    Sunlight) puts in every SCT: the same bytes LogStorage.add(sign=True) would return, bar ECDSA's nonce.
    """
    extensions = encode_leaf_index_extension(leaf_index)
    unsigned = SignedCertificateTimestamp(
        0, signer.public_key.log_id, timestamp, extensions, DigitallySigned(0, 0, b"")
    )
    data = sct_signature_input(unsigned, LogEntryType.PRECERT_ENTRY, signed_entry, issuer_key_hash)
    return dataclasses.replace(unsigned, signature=signer.sign(data))


def embedded_sct_list(
    signer: LogSigner, timestamp: int, signed_entry: bytes, issuer_key_hash: bytes, leaf_index: int
) -> bytes:
    """The SignedCertificateTimestampList a CA embeds in the final certificate."""
    return encode_sct_list([log_sct(signer, timestamp, signed_entry, issuer_key_hash, leaf_index)])
