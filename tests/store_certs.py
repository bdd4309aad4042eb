"""Certificates for the store's tests, made with `cryptography` and decoded with ctsentinel.certs.

An Issuance is one precertificate (poison extension) and its final certificate (an embedded SCT list in
place of the poison), on the same subject key, serial, validity and names: what a CA logs in real life.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID, ObjectIdentifier

from ctsentinel.certs.decode import record_from_der
from ctsentinel.certs.record import CertRecord
from ctsentinel.ct.merkle import CompactRange, leaf_hash
from ctsentinel.ct.signatures import LogSigner
from ctsentinel.ct.tls import DigitallySigned, SignedCertificateTimestamp, encode_sct_list
from ctsentinel.logs.client import TreeHead
from ctsentinel.logs.loglist import LogInfo
from ctsentinel.store import CommitBatch, Route, Store, StoredEntry
from ctsentinel.watch import Finding

_SCT_LIST_OID = ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
NOT_BEFORE = dt.datetime(2024, 2, 1, tzinfo=dt.UTC)
NOT_AFTER = dt.datetime(2025, 2, 1, tzinfo=dt.UTC)


@dataclass
class CA:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def spki_sha256(self) -> bytes:
        spki = self.key.public_key().public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return hashlib.sha256(spki).digest()


def make_ca(cn: str, org: str = "Store Tests") -> CA:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOT_BEFORE - dt.timedelta(days=365))
        .not_valid_after(NOT_AFTER + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return CA(key, cert)


def _sct_extension() -> x509.UnrecognizedExtension:
    sct = SignedCertificateTimestamp(
        version=0,
        log_id=bytes(32),
        timestamp=1706788800000,
        extensions=b"",
        signature=DigitallySigned(4, 3, b"\x30\x06\x02\x01\x01\x02\x01\x01"),
    )
    inner = encode_sct_list([sct])
    # The extension value is an OCTET STRING holding the TLS-encoded list.
    octet = b"\x04" + _der_length(len(inner)) + inner
    return x509.UnrecognizedExtension(_SCT_LIST_OID, octet)


def _der_length(n: int) -> bytes:
    if n < 0x80:
        return bytes([n])
    body = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes([0x80 | len(body)]) + body


@dataclass
class Issuance:
    ca: CA
    precert_der: bytes
    cert_der: bytes

    @property
    def precert(self) -> CertRecord:
        return record_from_der(self.precert_der, issuer_spki_sha256=self.ca.spki_sha256)

    @property
    def cert(self) -> CertRecord:
        return record_from_der(self.cert_der, issuer_spki_sha256=self.ca.spki_sha256)


_SUBJECT_KEY = ec.generate_private_key(ec.SECP256R1())


def issue(ca: CA, dns: list[str], ips: list[str] | None = None, *, serial: int | None = None) -> Issuance:
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips or []]
    cn = dns[0] if dns else (ips or ["none"])[0]
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]))
        .issuer_name(ca.cert.subject)
        .public_key(_SUBJECT_KEY.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(NOT_BEFORE)
        .not_valid_after(NOT_AFTER)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
    )
    pre = builder.add_extension(x509.PrecertPoison(), critical=True).sign(ca.key, hashes.SHA256())
    final = builder.add_extension(_sct_extension(), critical=False).sign(ca.key, hashes.SHA256())
    der = serialization.Encoding.DER
    return Issuance(ca, pre.public_bytes(der), final.public_bytes(der))


# -- logs, heads and batches as the monitor hands them to the store ------------------------------------------

_SIGNERS: dict[str, LogSigner] = {}


def log_info(name: str, state: str = "usable", kind: str = "rfc6962") -> LogInfo:
    signer = _SIGNERS.setdefault(name, LogSigner.generate())
    key = signer.public_key
    return LogInfo(
        f"https://{name}.example/", kind, key.log_id, key, f"{name} log", "Store Tests", state, 86400
    )


def head(size: int, root: bytes, timestamp: int | None = None) -> TreeHead:
    return TreeHead(size, size if timestamp is None else timestamp, root, b'{"tree_size": %d}' % size)


class Feed:
    """One log's entries, committed in order with a true compact range and a head that proves it."""

    def __init__(self, store: Store, info: LogInfo) -> None:
        self.store, self.info = store, info
        self.range = CompactRange()
        store.sync_logs([info])
        store.start_log(info.log_id, 0, self.range.to_bytes(), head(0, self.range.root()))

    @property
    def position(self) -> int:
        return self.range.size

    def batch(
        self, entries: Sequence[tuple[str, CertRecord, bytes | None, list[Finding]]], gap: int = 0
    ) -> CommitBatch:
        """entries: (entry_type, record, der, findings) at the next indices; `gap` entries that do not
        matter follow them (stored nothing, but they move the position)."""
        start = self.range.size
        stored = []
        for offset, (kind, record, der, findings) in enumerate(entries):
            stored.append(
                StoredEntry(
                    start + offset, kind, 1_700_000_000_000 + start + offset, record, der, list(findings)
                )
            )
        after = self.range.copy()
        after.extend(leaf_hash(b"leaf %d" % i) for i in range(start, start + len(entries) + gap))
        return CommitBatch(
            self.info.log_id, start, after.size, after.to_bytes(), head(after.size, after.root()), stored
        )

    def commit(
        self,
        entries: Sequence[tuple[str, CertRecord, bytes | None, list[Finding]]],
        gap: int = 0,
        routes: Sequence[Route] = (),
    ) -> CommitBatch:
        batch = self.batch(entries, gap)
        self.store.commit_batch(batch, routes)
        self.range = CompactRange.from_bytes(batch.compact_range)
        return batch


def pair_entries(
    issuance: Issuance, findings: list[Finding] | None = None
) -> list[tuple[str, CertRecord, bytes | None, list[Finding]]]:
    """The precertificate then the final certificate, as a CA logs them."""
    return [
        ("precert", issuance.precert, issuance.precert_der, findings or []),
        ("x509", issuance.cert, issuance.cert_der, findings or []),
    ]
