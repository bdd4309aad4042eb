"""record_from_der on certificates built here with cryptography's CertificateBuilder.

Each one isolates one rule: IP text in names, iPAddress SANs of odd lengths, IDNs in both forms,
wildcards, hostile text, the precertificate/final-certificate TBS equality, BER leniency.
"""

from __future__ import annotations

import datetime
import hashlib
import json
from collections.abc import Sequence
from ipaddress import ip_address

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import ExtensionOID, NameOID

from ctsentinel.certs.decode import record_from_der
from ctsentinel.certs.record import CertRecord

KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")


def tlv(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(raw))) + raw + content


def dns(name: str | bytes) -> bytes:
    return tlv(0x82, name.encode() if isinstance(name, str) else name)


def ip(raw: bytes) -> bytes:
    return tlv(0x87, raw)


def raw_san(*general_names: bytes) -> x509.UnrecognizedExtension:
    """A subjectAltName with exactly these bytes, which cryptography's own types would refuse to write."""
    return x509.UnrecognizedExtension(
        ExtensionOID.SUBJECT_ALTERNATIVE_NAME, tlv(0x30, b"".join(general_names))
    )


def build(
    cn: str | None = "example.com",
    extensions: Sequence[x509.ExtensionType] = (),
    subject: x509.Name | None = None,
    serial: int = 0x0A1B2C,
) -> bytes:
    name = subject or x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)] if cn is not None else [])
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Test CA")]))
        .public_key(KEY.public_key())
        .serial_number(serial)
        .not_valid_before(datetime.datetime(2024, 2, 1, 12, 0, 0))
        .not_valid_after(datetime.datetime(2051, 3, 4, 5, 6, 7))
    )
    for ext in extensions:
        builder = builder.add_extension(ext, critical=False)
    return builder.sign(KEY, None).public_bytes(Encoding.DER)


def rec(*args: object, **kwargs: object) -> CertRecord:
    return record_from_der(build(*args, **kwargs))  # type: ignore[arg-type]


def test_basic_fields_and_json_contract() -> None:
    der = build("WWW.Example.COM", [x509.SubjectAlternativeName([x509.DNSName("www.example.com")])])
    r = record_from_der(der, issuer_spki_sha256=bytes(32))
    spki = KEY.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert r.serial == "0a1b2c"
    assert r.issuer == "O=Test CA"
    assert r.subject == "CN=WWW.Example.COM"
    assert r.issuer_spki_sha256 == "00" * 32
    assert r.subject_spki_sha256 == hashlib.sha256(spki).hexdigest()
    assert r.dns_names == ["www.example.com"]
    assert (r.not_before, r.not_after) == ("2024-02-01T12:00:00Z", "2051-03-04T05:06:07Z")
    assert r.sha256 == hashlib.sha256(der).hexdigest()
    assert (
        r.tbs_sha256 == hashlib.sha256(x509.load_der_x509_certificate(der).tbs_certificate_bytes).hexdigest()
    )
    assert (r.precert, r.error) == (False, None)
    assert list(r.to_json()) == [
        "serial", "issuer", "issuer_spki_sha256", "subject", "subject_spki_sha256", "dns_names",
        "ip_addresses", "not_before", "not_after", "sha256", "tbs_sha256", "precert", "error",
    ]  # fmt: skip
    json.dumps(r.to_json())
    assert record_from_der(der).issuer_spki_sha256 is None


def test_serial_leading_zero_dropped() -> None:
    assert rec(serial=0xD3167EFD77CAD759000000005FC7C672).serial == "d3167efd77cad759000000005fc7c672"
    assert rec(serial=1).serial == "01"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.1.1.1", ["1.1.1.1"]),
        ("1.1.1.1.", ["1.1.1.1"]),
        ("::ffff:1.1.1.1", ["::ffff:101:101", "1.1.1.1"]),
        ("[2606:4700:4700::1111]", ["2606:4700:4700::1111"]),
        ("2606:4700:4700::AAAA", ["2606:4700:4700::aaaa"]),
        ("[2606:4700:4700::1111].", ["2606:4700:4700::1111"]),
    ],
)
def test_ip_text_in_cn_and_dns_san(text: str, expected: list[str]) -> None:
    in_cn = rec(text)
    assert (in_cn.ip_addresses, in_cn.dns_names) == (expected, [])
    in_san = rec("x", [raw_san(dns(text))])
    assert (in_san.ip_addresses, in_san.dns_names) == (expected, ["x"])


@pytest.mark.parametrize(
    "text", ["1.example", "10.0.0.com", "01.1.1.1", "1.1.1", "1.1.1.1.1", "256.1.1.1", "[1.1.1.1]"]
)
def test_names_that_are_not_ips(text: str) -> None:
    r = rec(text)
    assert r.ip_addresses == []
    assert r.dns_names == [text.lower()]


def test_ip_address_sans_and_dedup() -> None:
    r = rec(
        "1.1.1.1",
        [
            x509.SubjectAlternativeName(
                [
                    x509.IPAddress(ip_address("1.1.1.1")),
                    x509.IPAddress(ip_address("2606:4700:4700::1111")),
                    x509.IPAddress(ip_address("::ffff:1.0.0.1")),
                    x509.DNSName("1.1.1.1"),
                    x509.DNSName("one.one.one.one"),
                ]
            )
        ],
    )
    assert r.ip_addresses == ["1.1.1.1", "2606:4700:4700::1111", "::ffff:100:1", "1.0.0.1"]
    assert r.dns_names == ["one.one.one.one"]
    assert r.error is None


@pytest.mark.parametrize("size", [0, 5, 8, 32])
def test_ip_address_of_bad_length_reported_rest_read(size: int) -> None:
    der = build(
        "x",
        [raw_san(dns("a.example"), ip(bytes(range(1, size + 1))), ip(b"\x01\x01\x01\x01"), dns("b.example"))],
    )
    r = record_from_der(der)
    offset = der.index(ip(bytes(range(1, size + 1))) + ip(b"\x01\x01\x01\x01"))
    assert r.error == f"subjectAltName: iPAddress of {size} bytes at offset {offset}"
    assert r.ip_addresses == ["1.1.1.1"]
    assert r.dns_names == ["a.example", "b.example", "x"]


def test_malformed_san_does_not_lose_the_rest() -> None:
    broken = x509.UnrecognizedExtension(ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x10\x82\x05a.com")
    der = build("cn.example", [broken, x509.PrecertPoison()])
    r = record_from_der(der)
    assert r.error is not None and r.error.startswith("subjectAltName: element of 16 bytes overruns")
    assert r.dns_names == ["cn.example"]
    assert r.precert is True
    assert r.serial == "0a1b2c" and r.not_after == "2051-03-04T05:06:07Z"


def test_idn_both_forms() -> None:
    r = rec(
        "Bücher.Example",
        [raw_san(dns("xn--bcher-kva.example"), dns("*.bücher.example".encode()), dns("straße.de".encode()))],
    )
    assert r.dns_names == ["xn--bcher-kva.example", "*.xn--bcher-kva.example", "xn--strae-oqa.de"]
    assert r.unicode_names == ["bücher.example", "*.bücher.example", "straße.de"]
    assert r.error is None


def test_wildcards_case_and_trailing_dot() -> None:
    r = rec(
        "ignored name with spaces",
        [x509.SubjectAlternativeName([x509.DNSName("*.Example.COM"), x509.DNSName("example.com.")])],
    )
    assert r.dns_names == ["*.example.com", "example.com"]


def test_hostile_cn_kept_raw_error_one_line() -> None:
    hostile = 'evil\x1b[31m<script>alert("x")</script>\r\n\x00.example'
    der = build(hostile, [raw_san(dns(hostile.encode()), ip(b"\x01\x02\x03"))])
    r = record_from_der(der)
    assert r.subject == 'CN=evil\x1b[31m\\<script\\>alert(\\"x\\")\\</script\\>\r\n\\00.example'
    assert r.subject == x509.load_der_x509_certificate(der).subject.rfc4514_string()
    assert r.dns_names == [hostile.lower()]
    assert r.error is not None and "\n" not in r.error and "\r" not in r.error
    json.loads(json.dumps(r.to_json()))


def test_legacy_string_types_in_names() -> None:
    from cryptography.x509.name import _ASN1Type

    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "HR"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Financijska agencija", _ASN1Type.BMPString),
            x509.NameAttribute(NameOID.COMMON_NAME, "Fina RDC 2020", _ASN1Type.T61String),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "ca@fina.hr"),
        ]
    )
    r = rec(subject=name)
    assert r.subject == "1.2.840.113549.1.9.1=ca@fina.hr,CN=Fina RDC 2020,O=Financijska agencija,C=HR"
    assert r.subject == name.rfc4514_string()
    assert r.dns_names == []  # the CN has spaces: not a host name


def test_multi_valued_rdn_and_escapes() -> None:
    name = x509.Name(
        [
            x509.RelativeDistinguishedName(
                [
                    x509.NameAttribute(NameOID.COMMON_NAME, " a+b,c "),
                    x509.NameAttribute(NameOID.USER_ID, "#u"),
                ]
            ),
            x509.RelativeDistinguishedName([x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example")]),
        ]
    )
    r = rec(subject=name)
    assert r.subject == name.rfc4514_string() == "DC=example,CN=\\ a\\+b\\,c\\ +UID=\\#u"


def _sct_list() -> x509.UnrecognizedExtension:
    return x509.UnrecognizedExtension(SCT_LIST_OID, tlv(0x04, b"\x00\x02\x00\x00"))


def test_precert_and_final_share_tbs_hash() -> None:
    san = x509.SubjectAlternativeName([x509.DNSName("a.example")])
    bc = x509.BasicConstraints(ca=False, path_length=None)
    precert = record_from_der(build("a.example", [san, x509.PrecertPoison(), bc]))
    final = record_from_der(build("a.example", [san, bc, _sct_list()]))
    plain_der = build("a.example", [san, bc])
    plain = x509.load_der_x509_certificate(plain_der)
    assert precert.precert and not final.precert
    assert precert.tbs_sha256 == final.tbs_sha256 == hashlib.sha256(plain.tbs_certificate_bytes).hexdigest()
    assert precert.sha256 != final.sha256
    other = record_from_der(build("b.example", [san, bc, _sct_list()]))
    assert other.tbs_sha256 != final.tbs_sha256


def test_tbs_hash_drops_empty_extensions() -> None:
    only_poison = record_from_der(build("a.example", [x509.PrecertPoison()]))
    only_scts = record_from_der(build("a.example", [_sct_list()]))
    none = x509.load_der_x509_certificate(build("a.example"))
    assert (
        only_poison.tbs_sha256
        == only_scts.tbs_sha256
        == hashlib.sha256(none.tbs_certificate_bytes).hexdigest()
    )


def _long_lengths(der: bytes) -> bytes:
    """Re-encode every constructed element with a non-minimal 4-octet length (with our reader, whose
    minimal-length reading the corpus tests check)."""
    from ctsentinel.certs.der import read_tlv

    def enc(i: int, end: int) -> tuple[bytes, int]:
        tag, s, e = read_tlv(der, i, end)
        if not tag & 0x20:
            return der[i:e], e
        parts = []
        k = s
        while k < e:
            part, k = enc(k, e)
            parts.append(part)
        content = b"".join(parts)
        return bytes((tag, 0x84)) + len(content).to_bytes(4, "big") + content, e

    return enc(0, len(der))[0]


FIELDS = ("serial", "issuer", "subject", "dns_names", "ip_addresses", "not_before", "not_after", "precert")


def _same_fields(a: CertRecord, b: CertRecord) -> None:
    for key in FIELDS:
        assert getattr(a, key) == getattr(b, key), key


def test_non_minimal_lengths() -> None:
    der = build("a.example", [x509.SubjectAlternativeName([x509.DNSName("b.example")]), x509.PrecertPoison()])
    lax = _long_lengths(der)
    assert lax != der
    r = record_from_der(lax)
    _same_fields(r, record_from_der(der))
    assert r.error is None
    # The key hash is over the key's bytes as the certificate encodes them, lax lengths included.
    spki = KEY.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert r.subject_spki_sha256 == hashlib.sha256(_long_lengths(spki)).hexdigest()


def test_indefinite_length() -> None:
    der = build("a.example", [x509.SubjectAlternativeName([x509.DNSName("b.example")])])
    # Outer Certificate SEQUENCE with a BER indefinite length and end-of-contents octets.
    header = 4 if der[1] == 0x82 else 3
    ber = b"\x30\x80" + der[header:] + b"\x00\x00"
    r = record_from_der(ber)
    _same_fields(r, record_from_der(der))
    assert r.subject_spki_sha256 == record_from_der(der).subject_spki_sha256
    assert r.error == "Certificate: BER indefinite length at offset 0, read as re-encoded DER"
    assert r.sha256 == hashlib.sha256(ber).hexdigest()


def test_flipped_byte_changes_hashes() -> None:
    der = bytearray(build("a.example"))
    good = record_from_der(bytes(der))
    spot = der.index(b"a.example")
    der[spot] ^= 0x01
    bad = record_from_der(bytes(der))
    assert bad.dns_names == ["`.example"]
    assert bad.tbs_sha256 != good.tbs_sha256 and bad.sha256 != good.sha256


def test_garbage_gives_a_record() -> None:
    for data in (b"", b"\x30", b"hello world", b"\x30\x03\x02\x01\x05", bytes(100)):
        r = record_from_der(data)
        assert r.sha256 == hashlib.sha256(data).hexdigest()
        assert r.error is not None and "\n" not in r.error


def test_truncated_certificate_keeps_what_it_has() -> None:
    der = build("a.example", [x509.SubjectAlternativeName([x509.DNSName("b.example")])])
    cut = der[: der.index(b"b.example") - 4]
    r = record_from_der(cut)
    assert r.error is not None and r.error.startswith("Certificate: truncated")
    assert r.serial == "0a1b2c" and r.subject == "CN=a.example" and r.subject_spki_sha256 is not None
    assert r.tbs_sha256 is None


def test_quadratic_inputs_stay_fast() -> None:
    """Punycode and big OID arcs are quadratic: a hostile certificate must not stall the monitor."""
    import time

    label = "".join(chr(0x4E00 + i) for i in range(20000))
    long_oid = x509.ObjectIdentifier("2.5" + ".1" * 60)  # 62 octets: near the most cryptography encodes
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x"), x509.NameAttribute(long_oid, "y")])
    der = build(
        subject=name,
        extensions=[raw_san(dns(f"{label}.example".encode()), dns(f"xn--{'a' * 30000}.example"))],
    )
    start = time.process_time()
    r = record_from_der(der)
    assert time.process_time() - start < 1.0
    assert r.dns_names[0] == f"{label}.example"  # kept as is: no DNS label is that long
    assert r.subject is not None and r.subject.startswith("oid:") and r.subject.endswith("...=y,CN=x")
