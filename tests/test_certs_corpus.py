"""record_from_der over the real certificate corpus, with cryptography 50 as the oracle.

For every certificate cryptography parses, each field it can report must equal ours; for the ones it
refuses, we must still return a record filled with what is readable. The counts at the end guard against
a comparison that silently compares nothing.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import ipaddress
import re
import warnings
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

import idna
import pytest
from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtensionOID, NameOID

from ctsentinel.certs.decode import record_from_der
from ctsentinel.certs.record import CertRecord

CORPUS = Path(__file__).parent / "data" / "certs" / "corpus"
POISON_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.3")
_PEM = re.compile(rb"-----BEGIN CERTIFICATE-----(.*?)-----END CERTIFICATE-----", re.S)


def load_ders(path: Path) -> list[bytes]:
    data = path.read_bytes()
    if path.suffix == ".der":
        return [data]
    return [base64.b64decode(b"".join(m.group(1).split())) for m in _PEM.finditer(data)]


def corpus() -> list[tuple[str, int, bytes]]:
    out = []
    for path in sorted(CORPUS.rglob("*")):
        if path.is_file() and path.suffix in (".pem", ".der", ".crttest"):
            for n, der in enumerate(load_ders(path)):
                out.append((str(path.relative_to(CORPUS)), n, der))
    return out


CORPUS_CERTS = corpus()


def test_corpus_is_complete() -> None:
    # 342 files; CATALOG.tsv counts every certificate of a chain file, hence 348.
    assert len({name for name, _, _ in CORPUS_CERTS}) == 342
    assert len(CORPUS_CERTS) == 348


# --- the oracle -------------------------------------------------------------------------------------------


def _ips_of_text(text: str) -> list[str] | None:
    s = text[:-1] if text.endswith(".") else text
    if s.startswith("[") and s.endswith("]"):
        s = s[1:-1]
        if ":" not in s:
            return None
    try:
        address = ipaddress.ip_address(s)
    except ValueError:
        return None
    out = [str(address)]
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        out.append(str(address.ipv4_mapped))
    return out


def _dns_of_text(text: str) -> str:
    if text.endswith(".") and len(text) > 1:
        text = text[:-1]
    if text.isascii():
        return text.lower()
    return idna.encode(text, uts46=True).decode("ascii")


def _serial_hex(n: int, der_len: int) -> str:
    if n < 0:
        return n.to_bytes(der_len, "big", signed=True).hex()
    return n.to_bytes(max(1, (n.bit_length() + 7) // 8), "big").hex()


def _time(t: datetime) -> str:
    return f"{t.year:04d}-{t.month:02d}-{t.day:02d}T{t.hour:02d}:{t.minute:02d}:{t.second:02d}Z"


def _raw_spki_sha256(cert: x509.Certificate, der: bytes) -> str:
    # cryptography re-encodes the key; only when that equals the certificate's own bytes is it the oracle.
    spki = cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    if spki not in der:
        raise ValueError("re-encoded SubjectPublicKeyInfo differs from the certificate's")
    return hashlib.sha256(spki).hexdigest()


# How cryptography says it cannot read a field (idna's errors are UnicodeErrors).
_REFUSALS = (
    ValueError,
    UnicodeError,
    UnsupportedAlgorithm,
    x509.UnsupportedGeneralNameType,
    x509.DuplicateExtension,
)


def oracle(der: bytes, ours: CertRecord) -> dict[str, object]:
    """What cryptography reports for each field it can read; a field it cannot read is left out."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            cert = x509.load_der_x509_certificate(der)
        except (ValueError, x509.InvalidVersion):
            return {}
        out: dict[str, object] = {}

        def field(name: str, fn: Callable[[], object]) -> None:
            with contextlib.suppress(*_REFUSALS):
                out[name] = fn()

        field("serial", lambda: _serial_hex(cert.serial_number, len(bytes.fromhex(ours.serial or "00"))))
        field("issuer", lambda: cert.issuer.rfc4514_string())
        field("subject", lambda: cert.subject.rfc4514_string())
        field("not_before", lambda: _time(cert.not_valid_before_utc))
        field("not_after", lambda: _time(cert.not_valid_after_utc))
        field("subject_spki_sha256", lambda: _raw_spki_sha256(cert, der))
        field("precert", lambda: any(ext.oid == POISON_OID for ext in cert.extensions))

        def identifiers() -> tuple[list[str], list[str]]:
            dns: dict[str, None] = {}
            ips: dict[str, None] = {}
            try:
                san = list(cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value)
            except x509.ExtensionNotFound:
                san = []
            texts = []
            for general_name in san:
                if isinstance(general_name, x509.DNSName):
                    texts.append(general_name.value)
                elif isinstance(general_name, x509.IPAddress):
                    value = general_name.value
                    if isinstance(value, ipaddress.IPv4Address | ipaddress.IPv6Address):
                        texts.append(str(value))
            cns = [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
            texts += [cn for cn in cns if isinstance(cn, str) and " " not in cn]
            for text in texts:
                if not text:
                    continue
                addresses = _ips_of_text(text)
                if addresses is not None:
                    ips.update(dict.fromkeys(addresses))
                else:
                    dns[_dns_of_text(text)] = None
            return list(dns), list(ips)

        with contextlib.suppress(*_REFUSALS):
            out["dns_names"], out["ip_addresses"] = identifiers()
        return out


# --- tests ------------------------------------------------------------------------------------------------


def _compare(name: str, der: bytes) -> list[str]:
    """Check every field the oracle can read; return the names of the fields compared."""
    ours = record_from_der(der)
    assert ours.sha256 == hashlib.sha256(der).hexdigest()
    assert ours.error is None or "\n" not in ours.error
    expected = oracle(der, ours)
    for key, value in expected.items():
        assert getattr(ours, key) == value, f"{name}: {key}"
    return list(expected)


@pytest.mark.parametrize(("name", "index", "der"), CORPUS_CERTS, ids=[f"{n}#{i}" for n, i, _ in CORPUS_CERTS])
def test_matches_cryptography(name: str, index: int, der: bytes) -> None:
    _compare(f"{name}#{index}", der)


def test_oracle_compared_enough() -> None:
    """Each field was really compared on most of the corpus (cryptography refuses the rest)."""
    compared: Counter[str] = Counter()
    for name, _, der in CORPUS_CERTS:
        compared.update(_compare(name, der))
    for key in ("serial", "not_before", "not_after", "subject_spki_sha256"):
        assert compared[key] >= 320, key
    for key in ("issuer", "subject", "precert", "dns_names", "ip_addresses"):
        assert compared[key] >= 260, key


def test_corpus_totals() -> None:
    """Facts from the corpus catalogue: iPAddress SANs, IPv6 ones, precertificates."""
    records = [record_from_der(der) for _, _, der in CORPUS_CERTS]
    with_ips = [r for r in records if r.ip_addresses]
    assert len(with_ips) >= 32
    assert sum(1 for r in with_ips if any(":" in ip for ip in r.ip_addresses)) >= 8
    assert sum(1 for r in records if r.precert) >= 49
    assert all(r.error is None or "\n" not in r.error for r in records)


# --- cryptography refuses these; we fill in what is readable ---------------------------------------------


def _one(name: str) -> CertRecord:
    return record_from_der(load_ders(CORPUS / name)[0])


def test_negative_serial() -> None:
    r = _one("ct-python-testdata/negative_serial.pem")
    assert r.serial == "ffd5d5453d324e958b7fc5d04777dbbe"  # raw two's-complement octets
    assert r.error is not None and "serialNumber: negative INTEGER" in r.error
    assert r.dns_names == ["*.nyc.gov"]
    assert r.issuer == "CN=DigiCert Global CA,OU=www.digicert.com,O=DigiCert Inc,C=US"
    assert r.not_before is not None and r.tbs_sha256 is not None


def test_null_chars_kept_raw() -> None:
    r = _one("ct-python-testdata/null_chars.pem")
    assert r.error is None
    assert "null.python.org\x00example.org" in r.dns_names  # the CN, NUL and all
    assert "altnull.python.org\x00example.com" in r.dns_names
    assert r.ip_addresses == ["192.0.2.1", "2001:db8::1"]
    assert r.subject is not None and "CN=null.python.org\\00example.org" in r.subject


def test_bad_utf8_subject() -> None:
    r = _one("ct-python-testdata/cert_bad_utf8_subject.pem")
    assert r.error is not None and r.error.startswith("subject: invalid encoding of a tag 0x0c string")
    assert r.issuer is not None and "CN=UTN-USERFirst-Hardware" in r.issuer
    assert r.serial == "e4fe8d513a64f7c1579e0a59b3e46a5e"
    assert r.dns_names and r.subject_spki_sha256 is not None


def test_bad_time_is_reported_rest_read() -> None:
    r = _one("cryptography_vectors/badasn1time.pem")
    assert r.not_before == "2011-03-21T09:25:52Z"
    assert r.not_after is None
    assert r.error == "validity: notAfter: bad UTCTime 19020701025736Z at offset 105"
    assert r.subject is not None and r.subject_spki_sha256 is not None


def test_nonstandard_times_read_leniently() -> None:
    r = _one("zlint/generalizedNoSeconds.pem")
    # UTCTime with a -0500 offset, and a GeneralizedTime without seconds.
    assert (r.not_before, r.not_after) == ("2016-08-11T15:08:31Z", "2057-12-01T06:07:00Z")


def test_duplicate_san_reads_both() -> None:
    r = _one("zlint/extSANDuplicated.pem")
    assert r.error is not None and "duplicate subjectAltName" in r.error
    assert r.dns_names[:2] == ["*.gov.us", "gov.us"]


def test_non_text_dnsname() -> None:
    r = _one("zlint/generalizedNoSeconds.pem")
    assert r.error is not None and "dNSName of 2 bytes is not text" in r.error
    assert "gov.us" in r.dns_names


def test_refused_by_cryptography_still_recorded() -> None:
    refused = 0
    for name, _, der in CORPUS_CERTS:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                cert = x509.load_der_x509_certificate(der)
                _ = cert.extensions, cert.subject, cert.issuer, cert.not_valid_after_utc
                continue
            except (*_REFUSALS, x509.InvalidVersion):
                pass
        refused += 1
        r = record_from_der(der)
        assert r.sha256 == hashlib.sha256(der).hexdigest(), name
        assert r.serial is not None, name
        assert r.subject_spki_sha256 is not None or r.error is not None, name
    assert refused >= 60
