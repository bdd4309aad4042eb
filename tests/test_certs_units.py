"""The certs building blocks on their own: DER reading, times, host identifiers, RFC 4514 names."""

from __future__ import annotations

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519
from cryptography.x509.name import _ASN1Type
from cryptography.x509.oid import NameOID
from hypothesis import given, settings
from hypothesis import strategies as st

from ctsentinel.certs.der import (
    IndefiniteLength,
    elements,
    header,
    oid_dotted,
    read_header,
    read_tlv,
    to_definite,
    wrap,
)
from ctsentinel.certs.hosts import Identifiers, ip_literal
from ctsentinel.certs.names import name_info
from ctsentinel.certs.times import format_time, format_validity
from ctsentinel.ct.errors import DecodeError

# --- der --------------------------------------------------------------------------------------------------


def test_read_tlv_forms() -> None:
    assert read_tlv(b"\x04\x02ab", 0, 4) == (0x04, 2, 4)
    assert read_tlv(b"\x04\x81\x02ab", 0, 5) == (0x04, 3, 5)  # non-minimal long form is accepted
    assert read_tlv(b"\x04\x84\x00\x00\x00\x02ab", 0, 8) == (0x04, 6, 8)
    assert read_tlv(b"\x9f\x81\x01\x01x", 0, 5) == (0x9F, 4, 5)  # high tag number skipped over


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x04", "truncated header at offset 0"),
        (b"\x04\x05ab", "element of 5 bytes overruns its container by 3 at offset 0"),
        (b"\x04\x85\x00\x00\x00\x00\x01a", "length of 5 octets at offset 0"),
        (b"\x04\x82\x00", "truncated length at offset 0"),
    ],
)
def test_read_tlv_errors(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError) as info:
        read_tlv(data, 0, len(data))
    assert str(info.value) == message


def test_indefinite_lengths() -> None:
    with pytest.raises(IndefiniteLength):
        read_tlv(b"\x30\x80\x04\x01a\x00\x00", 0, 7)
    nested = b"\x30\x80\x31\x80\x04\x01a\x00\x00\x04\x00\x00\x00"
    assert to_definite(nested) == b"\x30\x07\x31\x03\x04\x01a\x04\x00"
    with pytest.raises(DecodeError):
        to_definite(b"\x30\x80\x04\x01a")  # no end-of-contents
    assert read_header(b"\x30\x82\x01\x00\x02", 0) == (0x30, 4, 260)  # a truncated input's declared end


def test_elements_yields_what_fits_then_fails_where_read_tlv_does() -> None:
    long = wrap(0x04, b"x" * 300)  # 0x82 length form
    data = b"\x02\x01\x05" + wrap(0x30, b"\x01" * 0x90) + long + b"\x9f\x81\x01\x01x"
    assert [tag for tag, _, _, _ in elements(data, 0, len(data))] == [0x02, 0x30, 0x04, 0x9F]
    for tag, offset, start, end in elements(data, 0, len(data)):
        assert (tag, start, end) == read_tlv(data, offset, len(data))
    seen = []
    bad = b"\x02\x01\x05\x04\x82\x01"  # the input ends inside the second element's length
    with pytest.raises(DecodeError) as info:
        seen.extend(elements(bad, 0, len(bad)))
    assert seen == [(0x02, 0, 2, 3)]
    assert str(info.value) == "truncated length at offset 3"


@pytest.mark.parametrize("length", [0, 0x7F, 0x80, 0xFF, 0x100, 0xFFFF, 0x10000, 0x123456])
def test_header_is_what_read_tlv_reads(length: int) -> None:
    element = header(0x30, length) + bytes(length)
    assert read_tlv(element, 0, len(element)) == (0x30, len(element) - length, len(element))
    assert wrap(0x30, bytes(length)) == element


def test_format_validity_reads_two_der_utc_times_or_leaves_them_to_format_time() -> None:
    validity = b"\x17\x0d240201120000Z\x17\x0d491231235959Z"
    assert format_validity(b"xx" + validity, 2, 2 + len(validity)) == (
        "2024-02-01T12:00:00Z",
        "2049-12-31T23:59:59Z",
    )
    for odd in (
        b"\x17\x0d240230120000Z\x17\x0d491231235959Z",  # February 30th: format_time's error says so
        b"\x17\x0d240201120000Z\x18\x0f20510101000000Z",  # a GeneralizedTime
        b"\x17\x0b2402011200Z\x17\x0d491231235959Z",  # no seconds
    ):
        assert format_validity(odd, 0, len(odd)) is None


def test_oid_dotted() -> None:
    assert oid_dotted(bytes.fromhex("2b06010401d679020403")) == "1.3.6.1.4.1.11129.2.4.3"
    assert oid_dotted(bytes.fromhex("551d11")) == "2.5.29.17"
    # One 100,000-octet arc would take quadratic time to build: such OIDs are shown as hex instead.
    assert oid_dotted(b"\xff" * 100000 + b"\x01") == "oid:" + "ff" * 48 + "..."


# --- times ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("tag", "raw", "text"),
    [
        (0x17, b"240201120000Z", "2024-02-01T12:00:00Z"),
        (0x17, b"491231235959Z", "2049-12-31T23:59:59Z"),
        (0x17, b"500101000000Z", "1950-01-01T00:00:00Z"),
        (0x17, b"240229000000Z", "2024-02-29T00:00:00Z"),  # leap day: the slow path's calendar
        (0x18, b"20510304050607Z", "2051-03-04T05:06:07Z"),
        (0x18, b"99991231235959Z", "9999-12-31T23:59:59Z"),
        (0x17, b"1608111008-0500", "2016-08-11T15:08:00Z"),
        (0x17, b"160811100831+0130", "2016-08-11T08:38:31Z"),
        (0x18, b"205712010607Z", "2057-12-01T06:07:00Z"),
        (0x18, b"20240201120000.123Z", "2024-02-01T12:00:00Z"),
    ],
)
def test_times(tag: int, raw: bytes, text: str) -> None:
    assert format_time(tag, raw) == text


@pytest.mark.parametrize(
    ("tag", "raw"),
    [
        (0x17, b"230229000000Z"),  # not a leap year
        (0x17, b"241301000000Z"),
        (0x17, b"240201246000Z"),
        (0x17, b"19020701025736Z"),  # a GeneralizedTime string in a UTCTime
        (0x17, b"240201120000"),  # no zone
        (0x18, b"2024020112\xff00Z"),
        (0x04, b"240201120000Z"),
    ],
)
def test_bad_times(tag: int, raw: bytes) -> None:
    with pytest.raises(DecodeError) as info:
        format_time(tag, raw)
    assert "\n" not in str(info.value)


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(
        min_value=__import__("datetime").datetime(1950, 1, 1),
        max_value=__import__("datetime").datetime(2049, 12, 31),
    )
)
def test_utctime_round_trip(when: datetime.datetime) -> None:
    raw = when.strftime("%y%m%d%H%M%SZ").encode()
    assert format_time(0x17, raw) == when.strftime("%Y-%m-%dT%H:%M:%SZ")
    general = when.strftime("%Y%m%d%H%M%SZ").encode()
    assert format_time(0x18, general) == format_time(0x17, raw)


# --- hosts ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1.1.1.1", ["1.1.1.1"]),
        ("1.1.1.1.", ["1.1.1.1"]),
        ("::ffff:1.1.1.1", ["::ffff:101:101", "1.1.1.1"]),
        ("[2606:4700:4700::1111]", ["2606:4700:4700::1111"]),
        ("2606:4700:4700:0:0:0:0:AAAA", ["2606:4700:4700::aaaa"]),
        ("1.example", None),
        ("10.0.0.com", None),
        ("01.1.1.1", None),
        ("1.1.1", None),
        ("[1.1.1.1]", None),
        ("example.com:443", None),
        ("", None),
        ("١.١.١.١", None),  # Arabic-Indic digits are digits to str.isdigit, not to an address parser
    ],
)
def test_ip_literal(text: str, expected: list[str] | None) -> None:
    assert ip_literal(text) == expected


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses())
def test_ip_literal_round_trip(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> None:
    got = ip_literal(str(address))
    assert got is not None and got[0] == str(address)
    assert ip_literal(f"{address.exploded.upper()}.") == got
    ids = Identifiers()
    assert ids.add_ip_bytes(address.packed)
    assert list(ids.ips) == got


def test_identifiers_dedup_and_order() -> None:
    ids = Identifiers()
    for text in [
        "B.example",
        "1.1.1.1",
        "b.example.",
        "a.example",
        "1.1.1.1.",
        "xn--bcher-kva.example",
        "bücher.example",
    ]:
        ids.add_name(text)
    assert list(ids.dns) == ["b.example", "a.example", "xn--bcher-kva.example"]
    assert list(ids.ips) == ["1.1.1.1"]
    assert list(ids.unicode) == ["bücher.example"]
    assert not ids.add_ip_bytes(b"\x01\x02\x03")


def test_broken_idns_still_named() -> None:
    ids = Identifiers()
    ids.add_name("xn--.example")  # an A-label that decodes to nothing
    ids.add_name("\u2764\ufe0f.example")  # disallowed by IDNA2008: raw punycode instead
    assert list(ids.dns) == ["xn--.example", "xn--qei.example"]


# --- names ------------------------------------------------------------------------------------------------

_TYPES = [_ASN1Type.UTF8String, _ASN1Type.BMPString, _ASN1Type.UniversalString]
_OIDS = [NameOID.COMMON_NAME, NameOID.ORGANIZATION_NAME, NameOID.LOCALITY_NAME, NameOID.EMAIL_ADDRESS,
         NameOID.DOMAIN_COMPONENT, NameOID.SERIAL_NUMBER, NameOID.BUSINESS_CATEGORY]  # fmt: skip
_TEXT = st.text(st.characters(exclude_categories=["Cs"]), min_size=1, max_size=12)


_KEY = ed25519.Ed25519PrivateKey.from_private_bytes(bytes(32))
_ATTRIBUTE = st.tuples(st.sampled_from(_OIDS), _TEXT, st.sampled_from(_TYPES))


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.lists(_ATTRIBUTE, min_size=1, max_size=3, unique_by=lambda a: a[:2]), min_size=1, max_size=4)
)
def test_rfc4514_matches_cryptography(rdns: list[list[tuple[x509.ObjectIdentifier, str, _ASN1Type]]]) -> None:
    name = x509.Name(
        [
            x509.RelativeDistinguishedName([x509.NameAttribute(o, v, t, _validate=False) for o, v, t in rdn])
            for rdn in rdns
        ]
    )
    # Through a certificate, so the oracle reads the Name as encoded (DER sorts a multi-valued RDN).
    when = datetime.datetime(2024, 1, 1)
    cert = x509.CertificateBuilder(name, name, _KEY.public_key(), 1, when, when).sign(_KEY, None)
    der = name.public_bytes()
    text, cns, error = name_info(der, 0, len(der), cache=False)
    assert error is None
    assert text == cert.subject.rfc4514_string()
    assert list(cns) == [a.value for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    assert name_info(der, 0, len(der)) == (text, cns, None) == name_info(der, 0, len(der))  # cached copy


def test_name_errors_keep_what_was_read() -> None:
    good = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a")]).public_bytes()
    broken = b"\x30\x0a" + good[2:] + b"\x31\x03\x02\x01\x00"  # a second RDN without an attribute SEQUENCE
    broken = b"\x30" + bytes((len(broken) - 2,)) + broken[2:]
    text, cns, error = name_info(broken, 0, len(broken))
    assert text == "CN=a" and cns == ("a",)
    assert error == "expected SEQUENCE (attribute), found tag 0x02 at offset 16"
