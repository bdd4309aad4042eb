"""Ordinary end-entity traffic: who issues, for which names, which keys, when, and in what log order.

Most issuances are a precertificate followed a few entries later by its final certificate (the TBS minus
poison equal to the TBS minus SCT list, the SCT a real one from this log's key); some precertificates
never get a final certificate logged and some certificates are logged alone, as in real logs. Issuers
have different volumes, validity periods and serial-number habits.

A chunk of log positions is generated from its own RNG (seed, start of the run, chunk number), so worker
processes can produce chunks in any order and the same seed still gives the same issuers, names, serials,
dates and order (not the same bytes: RSA subscriber keys and ECDSA signatures are fresh each run).
"""

from __future__ import annotations

import datetime
import functools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from ctsentinel.ct.signatures import LogSigner
from ctsentinel.testlog.ca import CA, SPECS_BY_ID, load_key
from ctsentinel.testlog.issue import CertRequest, Issuer, SubscriberKey, embedded_sct_list
from ctsentinel.testlog.names import HR_TLDS, TLDS, WORDS, Identifiers, NameGenerator

_P256_ORDER = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
MS = 1000
DAY = datetime.timedelta(days=1)

# The window ordinary traffic is spread over: it covers the fina-1.1.1.1 incident (Feb 2024 - Aug 2025).
TIMELINE_START = datetime.datetime(2024, 1, 1, tzinfo=datetime.UTC)
TIMELINE_END = datetime.datetime(2025, 9, 1, tzinfo=datetime.UTC)

PAIR, LONE_PRECERT, LONE_CERT = "pair", "precert", "cert"
_KINDS = (PAIR, LONE_PRECERT, LONE_CERT)
_KIND_WEIGHTS = (78, 12, 10)
# Free log positions between a precertificate and its final certificate, drawn from 1..6; when several
# certificates fall due together they queue, one per position.
_MAX_FINAL_DELAY = 6


@dataclass(frozen=True)
class IssuerProfile:
    ca_id: str
    weight: int  # share of ordinary traffic, in percent
    validity: datetime.timedelta
    serial_style: str  # "random18" (Let's Encrypt-like), "random16", "random20", "fina"
    validation: str  # "dv": subject is the CN only; "ov": organisation, locality, country too
    rsa_keys: float  # share of subscribers with RSA keys
    tlds: tuple[str, ...] = TLDS


# R10/E6 carry most volume, as Let's Encrypt's intermediates do; RSA signing is what costs time.
PROFILES: tuple[IssuerProfile, ...] = (
    IssuerProfile("example-r10", 32, 90 * DAY, "random18", "dv", 1.0),
    IssuerProfile("example-e6", 30, 90 * DAY, "random18", "dv", 0.0),
    IssuerProfile("example-tls-ecc-ca-1", 14, 365 * DAY, "random20", "dv", 0.0),
    IssuerProfile("example-tls-rsa-ca-1", 10, 365 * DAY, "random16", "ov", 0.7),
    IssuerProfile("example-global-g2-tls-rsa-sha256-2020-ca1", 9, 396 * DAY, "random16", "ov", 0.6),
    IssuerProfile("fina-rdc-2020", 5, 365 * DAY, "fina", "ov", 0.8, HR_TLDS),
)
PROFILES_BY_ID = {p.ca_id: p for p in PROFILES}

_CITIES = (
    ("US", "California", "San Francisco"),
    ("US", "New York", "New York"),
    ("DE", "Bayern", "München"),
    ("GB", "England", "London"),
    ("FR", "Île-de-France", "Paris"),
    ("NL", "Noord-Holland", "Amsterdam"),
)
_HR_CITIES = (
    ("HR", "Grad Zagreb", "Zagreb"),
    ("HR", "Splitsko-dalmatinska", "Split"),
    ("HR", "Primorsko-goranska", "Rijeka"),
)
_ORG_SUFFIXES = ("Inc.", "LLC", "Ltd", "GmbH", "S.A.", "B.V.")


def fina_serial(rng: random.Random, counter: int) -> int:
    """Fina RDC 2020's serial layout, as reported: 8 random bytes, 4 zero bytes, a counter."""
    return (rng.getrandbits(64) | (1 << 63)) << 64 | (counter & 0xFFFFFFFF)


def fina_counter(when_ms: int) -> int:
    """A plausible Fina issuance counter at `when_ms`: near 0x5fc7c672 in May 2025, as reported."""
    anchor_ms = int(datetime.datetime(2025, 5, 15, tzinfo=datetime.UTC).timestamp() * MS)
    # about 2000 certificates a day
    return 0x5FC7C672 + (when_ms - anchor_ms) * 2000 // (86400 * MS)


def draw_serial(style: str, rng: random.Random, when_ms: int) -> int:
    if style == "random18":
        return rng.getrandbits(143) | (1 << 136)  # 18 octets, positive without a sign byte
    if style == "random16":
        return rng.getrandbits(128) | (1 << 120)  # 16 random octets; a set top bit adds a 0x00 sign byte
    if style == "random20":
        return rng.getrandbits(159) | (1 << 152)  # RFC 5280's maximum: 20 octets
    if style == "fina":
        return fina_serial(rng, fina_counter(when_ms) + rng.randrange(0, 1000))
    raise ValueError(f"unknown serial style {style!r}")


@dataclass(frozen=True)
class Timeline:
    """Entry timestamps of a run of `count` positions: evenly spread over [start_ms, end_ms)."""

    start_ms: int
    end_ms: int
    count: int

    def at(self, position: int) -> int:
        return self.start_ms + position * (self.end_ms - self.start_ms) // max(self.count, 1)

    def position(self, when_ms: int) -> int:
        """The position whose timestamp is nearest `when_ms`, clamped to the run."""
        span = self.end_ms - self.start_ms
        pos = round((when_ms - self.start_ms) * self.count / span) if span else 0
        return min(max(pos, 0), self.count - 1)

    @classmethod
    def default(cls, count: int) -> Timeline:
        return cls(int(TIMELINE_START.timestamp() * MS), int(TIMELINE_END.timestamp() * MS), count)


@dataclass(frozen=True)
class Entry:
    """One log entry to submit: `der` is the (pre)certificate, issued by `ca_id`."""

    ca_id: str
    der: bytes
    precert: bool
    timestamp: int


@dataclass(frozen=True)
class TrafficConfig:
    """Everything a generator process needs, as plain picklable data."""

    seed: int
    first_index: int  # the log index of run position 0 (the log's size when the run started)
    timeline: Timeline
    cas: tuple[tuple[str, bytes, bytes], ...]  # (id, certificate DER, PKCS#8 PEM key) of each issuing CA
    signer_pem: bytes
    rsa_keys: tuple[bytes, ...]  # SPKI DER of the RSA subscriber keys to reuse
    repository: str  # base URL of the CAs' CRLs and OCSP responders


def subscriber_ec_keys(seed: int, count: int) -> list[SubscriberKey]:
    rng = random.Random(f"ctsentinel-testlog-subscribers:{seed}")
    return [
        SubscriberKey.of(ec.derive_private_key(rng.randrange(1, _P256_ORDER), ec.SECP256R1()).public_key())
        for _ in range(count)
    ]


def fresh_rsa_keys(count: int) -> tuple[bytes, ...]:
    # Real subscribers reuse keys across renewals and CAs; a small pool keeps RSA key generation (~40 ms
    # each) out of the per-certificate cost.
    return tuple(
        rsa.generate_private_key(public_exponent=65537, key_size=2048)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
        for _ in range(count)
    )


def _rsa_subscriber(spki: bytes) -> SubscriberKey:
    key = serialization.load_der_public_key(spki)
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("RSA subscriber pool holds a non-RSA key")
    return SubscriberKey.of(key)


def make_config(
    seed: int,
    first_index: int,
    timeline: Timeline,
    cas: Iterable[CA],
    signer: LogSigner,
    rsa_keys: tuple[bytes, ...],
) -> TrafficConfig:
    issuing = [ca for ca in cas if ca.id in PROFILES_BY_ID]
    materials = tuple(
        (
            ca.id,
            ca.der,
            ca.key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            ),
        )
        for ca in issuing
    )
    (repository,) = {ca.repository for ca in issuing}  # one hierarchy, one repository
    return TrafficConfig(seed, first_index, timeline, materials, signer.to_pem(), rsa_keys, repository)


class TrafficGenerator:
    def __init__(self, config: TrafficConfig) -> None:
        self.config = config
        self.signer = LogSigner.from_pem(config.signer_pem)
        self.issuers: dict[str, Issuer] = {}
        for ca_id, cert_der, key_pem in config.cas:
            cert = x509.load_der_x509_certificate(cert_der)
            key = load_key(key_pem)
            spki = cert.public_key().public_bytes(
                serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
            )
            ca = CA(SPECS_BY_ID[ca_id], key, cert, cert_der, spki, config.repository)
            self.issuers[ca_id] = Issuer(ca, validation=PROFILES_BY_ID[ca_id].validation)
        self.profiles = [p for p in PROFILES if p.ca_id in self.issuers]
        self.weights = [p.weight for p in self.profiles]
        self.ec_keys = subscriber_ec_keys(config.seed, 96)
        self.rsa_keys = [_rsa_subscriber(spki) for spki in config.rsa_keys]

    def chunk(self, index: int, start: int, end: int, reserved: Sequence[int] = ()) -> list[Entry]:
        """Entries for the positions in [start, end) not in `reserved`, in log order."""
        rng = random.Random(
            f"ctsentinel-testlog-traffic:{self.config.seed}:{self.config.first_index}:{index}"
        )
        taken = set(reserved)
        free = [p for p in range(start, end) if p not in taken]
        names = {p.ca_id: NameGenerator(rng, p.tlds) for p in self.profiles}
        out: list[Entry] = []
        pending: list[tuple[int, Entry]] = []  # (slot due, final certificate)
        for slot, position in enumerate(free):
            remaining = len(free) - slot
            if pending and (pending[0][0] <= slot or remaining <= len(pending)):
                _, final = pending.pop(0)
                out.append(Entry(final.ca_id, final.der, False, self.config.timeline.at(position)))
                continue
            kind = rng.choices(_KINDS, _KIND_WEIGHTS)[0]
            if kind == PAIR and remaining - len(pending) < 2:
                kind = LONE_CERT
            when = self.config.timeline.at(position)
            profile = rng.choices(self.profiles, self.weights)[0]
            issuer = self.issuers[profile.ca_id]
            req = self.request(rng, profile, names[profile.ca_id].draw(), when)
            if kind == LONE_CERT:
                out.append(Entry(profile.ca_id, issuer.certificate(req), False, when))
                continue
            if kind == LONE_PRECERT:
                out.append(Entry(profile.ca_id, issuer.precertificate(req), True, when))
                continue
            index = self.config.first_index + position
            sct_list = functools.partial(self._sct_list, issuer.spki_sha256, when, index)
            precert_der, final_der = issuer.pair(req, sct_list)
            out.append(Entry(profile.ca_id, precert_der, True, when))
            due = slot + rng.randrange(1, _MAX_FINAL_DELAY + 1)
            pending.append((due, Entry(profile.ca_id, final_der, False, 0)))
            pending.sort(key=lambda item: item[0])
        return out

    def _sct_list(self, issuer_key_hash: bytes, when: int, index: int, signed_entry: bytes) -> bytes:
        return embedded_sct_list(self.signer, when, signed_entry, issuer_key_hash, index)

    def request(
        self, rng: random.Random, profile: IssuerProfile, ids: Identifiers, when_ms: int
    ) -> CertRequest:
        # CAs sign a little before the log sees the precertificate, and backdate notBefore by an hour.
        issued = datetime.datetime.fromtimestamp((when_ms - rng.randrange(2_000, 90_000)) / MS, datetime.UTC)
        not_before = issued.replace(microsecond=0) - datetime.timedelta(hours=1)
        use_rsa = self.rsa_keys and rng.random() < profile.rsa_keys
        key = rng.choice(self.rsa_keys) if use_rsa else rng.choice(self.ec_keys)
        return CertRequest(
            serial=draw_serial(profile.serial_style, rng, when_ms),
            subject=subject_name(rng, profile, ids.common_name),
            dns_names=ids.dns_names,
            ips=ids.ips,
            key=key,
            not_before=not_before,
            not_after=not_before + profile.validity - datetime.timedelta(seconds=1),
        )


def subject_name(rng: random.Random, profile: IssuerProfile, common_name: str) -> x509.Name:
    cn = x509.NameAttribute(NameOID.COMMON_NAME, common_name)
    if profile.validation != "ov":
        return x509.Name([cn])
    country, state, city = rng.choice(_HR_CITIES if profile.ca_id == "fina-rdc-2020" else _CITIES)
    word = rng.choice(WORDS).title()
    org = f"{word} d.o.o." if country == "HR" else f"{word} {rng.choice(_ORG_SUFFIXES)}"
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, country),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, state),
            x509.NameAttribute(NameOID.LOCALITY_NAME, city),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, org),
            cn,
        ]
    )


# --- worker-process entry points (multiprocessing pickles functions by name) ------------------------------

_WORKER: TrafficGenerator | None = None


def worker_init(config: TrafficConfig) -> None:
    global _WORKER
    _WORKER = TrafficGenerator(config)


def worker_chunk(job: tuple[int, int, int, tuple[int, ...]]) -> list[tuple[str, bytes, bool, int]]:
    """One chunk as plain tuples: entries pickle faster that way, and the parent rebuilds the chains."""
    if _WORKER is None:
        raise RuntimeError("worker_init was not called")
    index, start, end, reserved = job
    return [(e.ca_id, e.der, e.precert, e.timestamp) for e in _WORKER.chunk(index, start, end, reserved)]
