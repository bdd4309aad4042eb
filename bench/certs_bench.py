"""Throughput of ctsentinel.certs on one core, beside a cryptography-based baseline doing the same job.

Sets: (a) record_from_der over the real corpus certificates that cryptography parses, (b) over
certificates generated here (realistic extensions, 1-10 SAN entries, some IPs, some precertificates),
(c) record_from_entry over get-entries items built from (b) plus the real Pilot and ct-go entries.
Baseline: cryptography's load_der_x509_certificate, then SAN dNSNames and iPAddresses, subject CN, issuer
RFC 4514 text and the SubjectPublicKeyInfo hash of the same DER (for entries: after the same TLS
decoding, with the issuer key hash cached as ours is).

Our caches (Names, IDNs, issuer keys) are cleared before every pass, so a subject is never served from
a previous pass: in a real log nearly every subject is new, while issuers repeat.
Run: .venv/bin/python bench/certs_bench.py
"""

from __future__ import annotations

import base64
import datetime
import gc
import hashlib
import json
import random
import re
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from ipaddress import IPv4Address, IPv6Address
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from ctsentinel.certs import hosts, issuer, names  # noqa: E402
from ctsentinel.certs.decode import match_view, record_from_der, record_from_entry  # noqa: E402
from ctsentinel.certs.der import wrap  # noqa: E402
from ctsentinel.certs.record import CertRecord  # noqa: E402
from ctsentinel.ct.tls import (  # noqa: E402
    LogEntryType,
    MerkleTreeLeaf,
    PrecertExtraData,
    TimestampedEntry,
    X509ExtraData,
    decode_extra_data,
    decode_merkle_tree_leaf,
    encode_extra_data,
)

DATA = ROOT / "tests" / "data" / "certs"
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)
SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")
rng = random.Random(20240201)


# --- inputs -----------------------------------------------------------------------------------------------


def corpus_ders() -> list[bytes]:
    out = []
    for path in sorted((DATA / "corpus").rglob("*")):
        if not path.is_file():
            continue
        raw = path.read_bytes()
        ders = (
            [raw]
            if path.suffix == ".der"
            else [base64.b64decode(b"".join(m[1].split())) for m in _PEM.finditer(raw)]
        )
        for der in ders:
            try:
                baseline_der(der)
            except Exception:  # the baseline cannot read it, so there is nothing to compare
                continue
            out.append(der)
    return out


def make_ca(name: str) -> tuple[rsa.RSAPrivateKey, x509.Certificate]:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Bench Trust Services"),
            x509.NameAttribute(NameOID.COMMON_NAME, name),
        ]
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(datetime.datetime(2024, 1, 1))
        .not_valid_after(datetime.datetime(2030, 1, 1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def sct_list_extension(count: int) -> bytes:
    """extnValue of an embedded SCT list: `count` well-formed v1 SCTs, random log ids and signatures."""
    scts = b""
    for _ in range(count):
        sct = (
            b"\x00"
            + rng.randbytes(32)
            + (1746000000000 + rng.getrandbits(24)).to_bytes(8, "big")
            + b"\x00\x00\x04\x03\x00\x47"
            + rng.randbytes(71)
        )
        scts += len(sct).to_bytes(2, "big") + sct
    body = len(scts).to_bytes(2, "big") + scts
    return wrap(0x04, body)


# About 2% of names in CT are IDNs; one domain in 40 here.
DOMAINS = ["example.com", "shop.example.net", "cdn.example.org"] * 13 + ["xn--bcher-kva.de"]


def generated(count: int) -> list[tuple[bytes, bytes | None, x509.Certificate]]:
    """(DER, the log's TBS if it is a precertificate, issuer) for leaf certificates like today's DV ones."""
    cas = [make_ca(f"Bench CA R{n}") for n in range(3)]
    subject_keys = [ec.generate_private_key(ec.SECP256R1()) for _ in range(8)]
    subject_keys += [rsa.generate_private_key(public_exponent=65537, key_size=2048) for _ in range(2)]
    out = []
    for n in range(count):
        ca_key, ca_cert = cas[n % len(cas)]
        base = f"host{n}.{rng.choice(DOMAINS)}"
        sans: list[x509.GeneralName] = [x509.DNSName(base)]
        for k in range(rng.randint(0, 9)):
            if rng.random() < 0.1:
                address = (
                    IPv4Address(rng.getrandbits(32))
                    if rng.random() < 0.7
                    else IPv6Address(rng.getrandbits(128))
                )
                sans.append(x509.IPAddress(address))
            else:
                sans.append(x509.DNSName(f"{rng.choice(['www', 'api', 'mail', '*'])}{k}.{base}"))
        key = rng.choice(subject_keys)
        precert = rng.random() < 0.5
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, base)]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(datetime.datetime(2025, 5, 1, 12, 0, 0))
            .not_valid_after(datetime.datetime(2025, 7, 30, 12, 0, 0))
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_cert.public_key()),  # type: ignore[arg-type]
                critical=False,
            )
            .add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            x509.oid.AuthorityInformationAccessOID.CA_ISSUERS,
                            x509.UniformResourceIdentifier("http://r11.i.example.org/"),
                        )
                    ]
                ),
                critical=False,
            )
            .add_extension(
                x509.CertificatePolicies(
                    [x509.PolicyInformation(x509.ObjectIdentifier("2.23.140.1.2.1"), None)]
                ),
                critical=False,
            )
            .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        )
        scts = x509.UnrecognizedExtension(SCT_LIST_OID, sct_list_extension(2))
        final = builder.add_extension(scts, critical=False).sign(ca_key, hashes.SHA256())
        if precert:
            pre = builder.add_extension(x509.PrecertPoison(), critical=True).sign(ca_key, hashes.SHA256())
            # The log's TBS: the precertificate's without the poison, i.e. the final one's without SCTs.
            out.append((pre.public_bytes(Encoding.DER), final.tbs_precertificate_bytes, ca_cert))
        else:
            out.append((final.public_bytes(Encoding.DER), None, ca_cert))
    return out


def entries_from(certs: Sequence[tuple[bytes, bytes | None, x509.Certificate]]) -> list[tuple[bytes, bytes]]:
    out = []
    for n, (der, tbs, ca) in enumerate(certs):
        ca_der = ca.public_bytes(Encoding.DER)
        if tbs is not None:
            # What the log logs: the TBSCertificate without the poison, and the issuer's key hash.
            key_hash = hashlib.sha256(
                ca.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
            ).digest()
            entry = TimestampedEntry(1746000000000 + n, LogEntryType.PRECERT_ENTRY, tbs, key_hash, b"")
            extra = encode_extra_data(PrecertExtraData(der, [ca_der]))
        else:
            entry = TimestampedEntry(1746000000000 + n, LogEntryType.X509_ENTRY, der, None, b"")
            extra = encode_extra_data(X509ExtraData([ca_der]))
        out.append((MerkleTreeLeaf(entry).encode(), extra))
    for name in (
        "get-entries_0_3.json",
        "ctgo-client-test_x509-entry.json",
        "ctgo-client-test_precert-entry.json",
    ):
        doc = json.loads((DATA / "entries" / name).read_text())
        out += [
            (base64.b64decode(e["leaf_input"]), base64.b64decode(e["extra_data"])) for e in doc["entries"]
        ]
    return out


# --- the baseline -----------------------------------------------------------------------------------------


def baseline_der(der: bytes) -> tuple[object, ...]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        cert = x509.load_der_x509_certificate(der)
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
            dns = san.get_values_for_type(x509.DNSName)
            ips = [str(a) for a in san.get_values_for_type(x509.IPAddress)]
        except x509.ExtensionNotFound:
            dns, ips = [], []
        cn = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
        issuer = cert.issuer.rfc4514_string()
        spki = hashlib.sha256(
            cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        ).hexdigest()
        return dns, ips, cn, issuer, spki


_BASELINE_ISSUERS: dict[bytes, str] = {}


def baseline_entry(leaf_input: bytes, extra_data: bytes) -> tuple[object, ...]:
    entry = decode_merkle_tree_leaf(leaf_input).timestamped_entry
    extra = decode_extra_data(entry.entry_type, extra_data)
    if isinstance(extra, PrecertExtraData):
        return baseline_der(extra.pre_certificate)
    issuer_der = extra.certificate_chain[0]
    issuer_hash = _BASELINE_ISSUERS.get(issuer_der)
    if issuer_hash is None:
        cert = x509.load_der_x509_certificate(issuer_der)
        spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
        issuer_hash = _BASELINE_ISSUERS[issuer_der] = hashlib.sha256(spki).hexdigest()
    return (*baseline_der(entry.signed_entry), issuer_hash)


def unverified_entry(leaf_input: bytes, extra_data: bytes) -> CertRecord:
    return record_from_entry(leaf_input, extra_data, verify_issuer=False)


# --- timing -----------------------------------------------------------------------------------------------


def clear_caches() -> None:
    names._CACHE.clear()
    hosts._IDN_CACHE.clear()
    hosts._ULABEL_CACHE.clear()
    issuer._KEYS.clear()
    _BASELINE_ISSUERS.clear()


def per_item_us(fn: Callable[..., object], items: Sequence[tuple[object, ...]], passes: int = 5) -> float:
    best = float("inf")
    for _ in range(passes):
        clear_caches()
        gc.collect()
        # CPU time of this process: other work on the machine inflates wall time, not this.
        start = time.process_time()
        for args in items:
            fn(*args)
        best = min(best, time.process_time() - start)
    return best / len(items) * 1e6


def main() -> None:
    t0 = time.perf_counter()
    real = corpus_ders()
    made = generated(3000)
    entries = entries_from(made)
    print(
        f"inputs ready in {time.perf_counter() - t0:.1f} s: {len(real)} corpus certificates, "
        f"{len(made)} generated ({sum(t is not None for _, t, _ in made)} precerts), {len(entries)} entries"
    )
    sets = [
        ("(a) record_from_der, real corpus", record_from_der, baseline_der, [(d,) for d in real]),
        ("(b) record_from_der, generated", record_from_der, baseline_der, [(d,) for d, _, _ in made]),
        ("(c) record_from_entry, get-entries", record_from_entry, baseline_entry, entries),
        # What verifying a final certificate's issuer costs: the monitor pays it only for what it keeps.
        ("(d) (c) with verify_issuer=False", unverified_entry, baseline_entry, entries),
        # The monitor's fast path for the entries that match nothing: names, addresses, issuer only.
        ("(e) match_view, get-entries", match_view, baseline_entry, entries),
    ]
    print()
    print(
        f"{'set':38} {'items':>6} {'ours µs':>8} {'ours/s':>9} {'base µs':>8} {'base/s':>9} {'speed-up':>8}"
    )
    for label, ours, base, items in sets:
        us = per_item_us(ours, items)
        base_us = per_item_us(base, items)
        print(
            f"{label:38} {len(items):6d} {us:8.2f} {1e6 / us:9.0f} {base_us:8.2f} {1e6 / base_us:9.0f} "
            f"{base_us / us:7.1f}x"
        )
    print(f"\ntotal {time.perf_counter() - t0:.1f} s; one core, Python {sys.version.split()[0]}")


if __name__ == "__main__":
    main()
