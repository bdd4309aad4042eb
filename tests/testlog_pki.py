"""A tiny CA hierarchy made with `cryptography`, for the test log's tests (root -> intermediate -> leaves).

Independent of ctsentinel.testlog.ca on purpose: the server's tests must not depend on the traffic generator.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_NOT_BEFORE = dt.datetime(2024, 2, 1, tzinfo=dt.UTC)
_NOT_AFTER = dt.datetime(2025, 8, 1, tzinfo=dt.UTC)


def _name(cn: str, org: str = "ctsentinel tests") -> x509.Name:
    return x509.Name(
        [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org), x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    )


@dataclass
class Issuer:
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @property
    def der(self) -> bytes:
        return self.cert.public_bytes(serialization.Encoding.DER)


def make_ca(cn: str, parent: Issuer | None = None) -> Issuer:
    key = ec.generate_private_key(ec.SECP256R1())
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(parent.cert.subject if parent else _name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOT_BEFORE - dt.timedelta(days=365))
        .not_valid_after(_NOT_AFTER + dt.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
    )
    cert = builder.sign(parent.key if parent else key, hashes.SHA256())
    return Issuer(key, cert)


def make_leaf(
    issuer: Issuer,
    dns: list[str],
    ips: list[str] | None = None,
    *,
    precert: bool = False,
    serial: int | None = None,
) -> bytes:
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    names += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips or []]
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(dns[0] if dns else (ips or ["x"])[0]))
        .issuer_name(issuer.cert.subject)
        .public_key(key.public_key())
        .serial_number(serial or x509.random_serial_number())
        .not_valid_before(_NOT_BEFORE)
        .not_valid_after(_NOT_AFTER)
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
    )
    if precert:
        builder = builder.add_extension(x509.PrecertPoison(), critical=True)
    return builder.sign(issuer.key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


@dataclass
class Pki:
    root: Issuer
    intermediate: Issuer

    def chain(self, leaf: bytes) -> list[bytes]:
        return [leaf, self.intermediate.der, self.root.der]


def make_pki(name: str = "Test") -> Pki:
    root = make_ca(f"{name} Root CA")
    return Pki(root, make_ca(f"{name} Issuing CA", root))
