"""The generated CA hierarchy that issues the test log's traffic.

Fictional but plausible public CAs (an "R10"/"E6"-like pair, two commercial CAs, a DigiCert-like CA that
the fina-1.1.1.1 scenario treats as Cloudflare's authorized issuer) plus the real names of the Fina
hierarchy, because the incident is about exactly those names. Certificates live in DIR/cas/<id>.pem and
keys in DIR/cas/private/<id>.key.pem (0600) so that a later populate run continues the same hierarchy.

Names, structure and ECDSA keys follow from the seed; RSA keys are generated fresh (cryptography cannot
seed them), which is harmless: everything downstream reads keys back from DIR.

The CAs publish CRLs and answer OCSP at their repository, http://127.0.0.1:PORT/ (repository.py), and
every certificate they issue names it. The port is chosen once, when DIR/cas is created, and recorded in
DIR/cas/repository.json: the certificates are signed, so the URL they carry cannot follow whatever port
`testlog serve` binds for the log itself later. Like a real CA's crl.<ca> host, the repository is a place
of its own, served beside the log on that recorded port.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
import random
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from ctsentinel.timefmt import rfc3339

CAKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey

RSA_2048 = "rsa-2048"
ECDSA_P256 = "ecdsa-p256"
_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551


def _utc(year: int, month: int, day: int) -> datetime.datetime:
    return datetime.datetime(year, month, day, tzinfo=datetime.UTC)


@dataclass(frozen=True)
class CASpec:
    id: str
    subject: tuple[tuple[x509.ObjectIdentifier, str], ...]  # in DER order: C first, CN last
    key_type: str
    parent: str | None
    not_before: datetime.datetime
    not_after: datetime.datetime

    @property
    def name(self) -> str:
        return next(value for oid, value in self.subject if oid == NameOID.COMMON_NAME)

    def x509_name(self) -> x509.Name:
        return x509.Name([x509.NameAttribute(oid, value) for oid, value in self.subject])


def _dn(*pairs: tuple[x509.ObjectIdentifier, str]) -> tuple[tuple[x509.ObjectIdentifier, str], ...]:
    return pairs


_C, _O, _OU, _CN = (
    NameOID.COUNTRY_NAME,
    NameOID.ORGANIZATION_NAME,
    NameOID.ORGANIZATIONAL_UNIT_NAME,
    NameOID.COMMON_NAME,
)

# Parents come before their children: creation walks this list in order.
SPECS: tuple[CASpec, ...] = (
    CASpec(
        "example-trust-rsa-root",
        _dn((_C, "US"), (_O, "Example Security Research Group"), (_CN, "Example Trust RSA Root X1")),
        RSA_2048,
        None,
        _utc(2015, 6, 4),
        _utc(2035, 6, 4),
    ),
    CASpec(
        "example-trust-ecc-root",
        _dn((_C, "US"), (_O, "Example Security Research Group"), (_CN, "Example Trust ECC Root X2")),
        ECDSA_P256,
        None,
        _utc(2020, 9, 4),
        _utc(2040, 9, 17),
    ),
    CASpec(
        "example-global-root-g2",
        _dn((_C, "US"), (_O, "Example Inc"), (_OU, "www.example.com"), (_CN, "Example Global Root G2")),
        RSA_2048,
        None,
        _utc(2013, 8, 1),
        _utc(2038, 1, 15),
    ),
    CASpec(
        "fina-root-ca",
        _dn((_C, "HR"), (_O, "Financijska agencija"), (_CN, "Fina Root CA")),
        RSA_2048,
        None,
        _utc(2015, 11, 24),
        _utc(2035, 11, 24),
    ),
    CASpec(
        "example-r10",
        _dn((_C, "US"), (_O, "Example Encrypt"), (_CN, "R10")),
        RSA_2048,
        "example-trust-rsa-root",
        _utc(2023, 3, 13),
        _utc(2027, 3, 12),
    ),
    CASpec(
        "example-e6",
        _dn((_C, "US"), (_O, "Example Encrypt"), (_CN, "E6")),
        ECDSA_P256,
        "example-trust-ecc-root",
        _utc(2023, 3, 13),
        _utc(2027, 3, 12),
    ),
    CASpec(
        "example-tls-ecc-ca-1",
        _dn((_C, "US"), (_O, "Example Trust Services"), (_CN, "Example TLS ECC CA 1")),
        ECDSA_P256,
        "example-trust-ecc-root",
        _utc(2022, 1, 10),
        _utc(2032, 1, 10),
    ),
    CASpec(
        "example-tls-rsa-ca-1",
        _dn((_C, "US"), (_O, "Example Trust Services"), (_CN, "Example TLS RSA CA 1")),
        RSA_2048,
        "example-trust-rsa-root",
        _utc(2022, 1, 10),
        _utc(2032, 1, 10),
    ),
    CASpec(
        "example-global-g2-tls-rsa-sha256-2020-ca1",
        _dn((_C, "US"), (_O, "Example Inc"), (_CN, "Example Global G2 TLS RSA SHA256 2020 CA1")),
        RSA_2048,
        "example-global-root-g2",
        _utc(2021, 3, 30),
        _utc(2031, 3, 29),
    ),
    CASpec(
        "fina-rdc-2020",
        _dn((_C, "HR"), (_O, "Financijska agencija"), (_CN, "Fina RDC 2020")),
        RSA_2048,
        "fina-root-ca",
        _utc(2020, 12, 3),
        _utc(2035, 11, 3),
    ),
)
SPECS_BY_ID = {spec.id: spec for spec in SPECS}


REPOSITORY_FILE = "repository.json"  # in DIR/cas


def crl_path(ca_id: str) -> str:
    return f"crl/{ca_id}.crl"


def ocsp_path(ca_id: str) -> str:
    return f"ocsp/{ca_id}"


def certificate_path(ca_id: str) -> str:
    return f"issuers/{ca_id}.crt"


@dataclass(frozen=True)
class CA:
    spec: CASpec
    key: CAKey
    cert: x509.Certificate
    der: bytes
    spki_der: bytes
    repository: str  # base URL of the CAs' repository, ending in "/"

    @property
    def crl_url(self) -> str:
        """Where this CA publishes the CRL of the certificates it issued."""
        return self.repository + crl_path(self.id)

    @property
    def ocsp_url(self) -> str:
        """This CA's OCSP responder (RFC 6960 POST, or GET with the request in the path)."""
        return self.repository + ocsp_path(self.id)

    @property
    def certificate_url(self) -> str:
        """This CA's own certificate (DER), for the caIssuers access method of what it issues."""
        return self.repository + certificate_path(self.id)

    @property
    def id(self) -> str:
        return self.spec.id

    @property
    def role(self) -> str:
        return "root" if self.spec.parent is None else "intermediate"

    @property
    def subject(self) -> str:
        """RFC 4514, as the monitor prints issuers: "CN=Fina RDC 2020,O=Financijska agencija,C=HR"."""
        return self.cert.subject.rfc4514_string()

    @property
    def spki_sha256(self) -> bytes:
        """RFC 6962's issuer_key_hash, and what a watch's authorized_issuers lists as sha256:<hex>."""
        return hashlib.sha256(self.spki_der).digest()


def _spki(key: CAKey) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _new_key(key_type: str, rng: random.Random) -> CAKey:
    if key_type == ECDSA_P256:
        return ec.derive_private_key(rng.randrange(1, _P256_ORDER), ec.SECP256R1())
    if key_type == RSA_2048:
        return rsa.generate_private_key(public_exponent=65537, key_size=2048)
    raise ValueError(f"unknown CA key type {key_type!r}")


def _ca_certificate(spec: CASpec, key: CAKey, issuer: CA | None, rng: random.Random) -> x509.Certificate:
    # An intermediate names its issuer's CRL, on which a revoked intermediate would appear.
    public = key.public_key()
    signing_key = key if issuer is None else issuer.key
    builder = (
        x509.CertificateBuilder()
        .subject_name(spec.x509_name())
        .issuer_name(spec.x509_name() if issuer is None else issuer.cert.subject)
        .public_key(public)
        .serial_number(rng.getrandbits(127) | (1 << 126))
        .not_valid_before(spec.not_before)
        .not_valid_after(spec.not_after)
        .add_extension(
            x509.KeyUsage(
                digital_signature=issuer is not None,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(
            x509.BasicConstraints(ca=True, path_length=None if issuer is None else 0), critical=True
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
    )
    if issuer is not None:
        builder = (
            builder.add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False
            )
            .add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            [x509.UniformResourceIdentifier(issuer.crl_url)],
                            None,
                            None,
                            None,
                        )
                    ]
                ),
                critical=False,
            )
        )
    return builder.sign(signing_key, hashes.SHA256())


class CAHierarchy:
    """Every CA of SPECS, loaded from DIR/cas or created there."""

    def __init__(self, cas: dict[str, CA]) -> None:
        self._cas = cas

    def __getitem__(self, ca_id: str) -> CA:
        return self._cas[ca_id]

    def __iter__(self) -> Iterator[CA]:
        return iter(self._cas.values())

    def chain(self, ca_id: str) -> tuple[bytes, ...]:
        """The issuer chain a subscriber certificate of `ca_id` is submitted with: the CA first, root last."""
        out = []
        current: str | None = ca_id
        while current is not None:
            out.append(self._cas[current].der)
            current = self._cas[current].spec.parent
        return tuple(out)

    @property
    def repository(self) -> str:
        return next(iter(self._cas.values())).repository

    @classmethod
    def load(cls, directory: Path) -> CAHierarchy | None:
        """The hierarchy populate made in DIR, or None where it made none (a log only ever served)."""
        repository = read_repository(directory)
        paths = {spec.id: ca_paths(directory, spec.id) for spec in SPECS}
        if repository is None or not all(c.exists() and k.exists() for c, k in paths.values()):
            return None
        return cls({spec.id: _load(spec, *paths[spec.id], repository) for spec in SPECS})

    @classmethod
    def load_or_create(cls, directory: Path, seed: int) -> CAHierarchy:
        cas_dir = directory / "cas"
        private_dir = cas_dir / "private"
        private_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(private_dir, 0o700)
        repository = read_repository(directory) or _create_repository(directory)
        rng = random.Random(f"ctsentinel-testlog-ca:{seed}")
        cas: dict[str, CA] = {}
        for spec in SPECS:
            # Draw from the RNG for every spec, loaded or not, so that a CA added later to SPECS does not
            # shift the serials and keys of the others.
            spec_rng = random.Random(rng.getrandbits(64))
            cert_path, key_path = ca_paths(directory, spec.id)
            if cert_path.exists() and key_path.exists():
                cas[spec.id] = _load(spec, cert_path, key_path, repository)
                continue
            key = _new_key(spec.key_type, spec_rng)
            issuer = None if spec.parent is None else cas[spec.parent]
            cert = _ca_certificate(spec, key, issuer, spec_rng)
            _write_private(
                key_path,
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                ),
            )
            cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            der = cert.public_bytes(serialization.Encoding.DER)
            cas[spec.id] = CA(spec, key, cert, der, _spki(key), repository)
        return cls(cas)

    def describe(self, directory: Path) -> list[dict[str, object]]:
        """scenario.json's "cas": what a monitor test needs to authorize or recognise each CA."""
        out: list[dict[str, object]] = []
        for ca in self:
            cert_path, key_path = ca_paths(directory, ca.id)
            out.append(
                {
                    "id": ca.id,
                    "name": ca.spec.name,
                    "subject": ca.subject,
                    "role": ca.role,
                    "parent": ca.spec.parent,
                    "key_type": ca.spec.key_type,
                    "spki_sha256": ca.spki_sha256.hex(),
                    "cert_sha256": hashlib.sha256(ca.der).hexdigest(),
                    "pem": str(cert_path.relative_to(directory)),
                    "private_key": str(key_path.relative_to(directory)),
                    "not_before": rfc3339(ca.spec.not_before),
                    "not_after": rfc3339(ca.spec.not_after),
                    "crl": ca.crl_url,
                    "ocsp": ca.ocsp_url,
                }
            )
        return out


def ca_paths(directory: Path, ca_id: str) -> tuple[Path, Path]:
    return directory / "cas" / f"{ca_id}.pem", directory / "cas" / "private" / f"{ca_id}.key.pem"


def read_repository(directory: Path) -> str | None:
    """The repository URL recorded in DIR/cas, or None if none was recorded yet."""
    path = directory / "cas" / REPOSITORY_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise ValueError(f"{path}: unreadable ({exc})") from None
    url = data.get("url") if isinstance(data, dict) else None
    if not isinstance(url, str) or not url.startswith("http://127.0.0.1:") or not url.endswith("/"):
        raise ValueError(f"{path}: no http://127.0.0.1:PORT/ url")
    return url


def repository_port(url: str) -> int:
    return int(url.removeprefix("http://127.0.0.1:").rstrip("/"))


def _create_repository(directory: Path) -> str:
    # A port free now, that `serve` binds later. The kernel picks it as for --port 0, so that test logs
    # made on one machine do not all pick the same one.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/"
    path = directory / "cas" / REPOSITORY_FILE
    path.write_text(json.dumps({"url": url}) + "\n", encoding="utf-8")
    return url


def _write_private(path: Path, data: bytes) -> None:
    # Created 0600 from the start, never briefly world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.chmod(path, 0o600)


def _load(spec: CASpec, cert_path: Path, key_path: Path, repository: str) -> CA:
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError(f"{key_path}: not an RSA or ECDSA key")
    if _spki(key) != cert.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    ):
        raise ValueError(f"{key_path}: does not match {cert_path}")
    return CA(spec, key, cert, cert.public_bytes(serialization.Encoding.DER), _spki(key), repository)


def load_key(pem: bytes) -> CAKey:
    """A CA key as passed to generator processes (PKCS#8 PEM)."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey):
        raise ValueError("not an RSA or ECDSA key")
    return key
