"""Corrupt a certificate the way malformed certificates in real CT logs are corrupt, or the way an attacker
would build one to stall a monitor (a name far longer than any DNS name).

The notBefore time gets an impossible character, as in real mis-encoded certificates (cf. pyca's
badasn1time.pem): every tag and length stays intact, so a lenient decoder still reads the names and the
issuer, while a strict parser refuses the certificate. The log hashes and signs the corrupted bytes, so
its tree stays consistent and a monitor must report a malformed certificate, not a lying log.
"""

from __future__ import annotations

from ctsentinel.certs.der import OCTET_STRING, SEQUENCE, elements, read_tlv, wrap
from ctsentinel.testlog.tbs import SAN_OID, rewrite_extensions, split_certificate

_VALIDITY_POSITION = 4  # serialNumber, signature, issuer, validity (after the optional [0] version)
_DNS_NAME = 0x82  # GeneralName [2] IA5String


def _corrupt_tbs_at(der: bytearray, tbs_pos: int) -> None:
    data = bytes(der)
    _, start, end = read_tlv(data, tbs_pos, len(data))
    fields = [(tag, content) for tag, _, content, _ in elements(data, start, end)]
    if fields and fields[0][0] == 0xA0:
        fields = fields[1:]
    tag, validity = fields[_VALIDITY_POSITION - 1]
    time_tag, time_start, time_end = read_tlv(data, validity, end)
    if tag != 0x30 or time_tag not in (0x17, 0x18) or time_end <= time_start:
        raise ValueError("certificate: no validity time where expected")
    der[time_start] = ord("Z")


def corrupt_tbs(tbs: bytes) -> bytes:
    out = bytearray(tbs)
    _corrupt_tbs_at(out, 0)
    return bytes(out)


def corrupt_certificate(der: bytes) -> bytes:
    out = bytearray(der)
    _, tbs_pos, _ = read_tlv(der, 0, len(der))
    _corrupt_tbs_at(out, tbs_pos)
    return bytes(out)


def long_dns_name(octets: int) -> str:
    """A dotted name of exactly `octets` octets made of one-letter labels, ending in ".example": the most
    dots a name of that length can have, the worst case for a matcher that copies a suffix at each one."""
    tail = "example"
    pairs, odd = divmod(max(0, octets - len(tail)), 2)
    return "a." * pairs + "b" * odd + tail


def _with_extra_dns_name(extension_der: bytes, name: bytes) -> bytes:
    """A subjectAltName Extension with one more dNSName after its own names."""
    _, body, end = read_tlv(extension_der, 0, len(extension_der))
    parts = [extension_der[start:stop] for _, start, _, stop in elements(extension_der, body, end)]
    _, value_start, _ = read_tlv(parts[-1], 0, len(parts[-1]))
    _, names_start, names_end = read_tlv(parts[-1], value_start, len(parts[-1]))
    names = parts[-1][names_start:names_end] + wrap(_DNS_NAME, name)
    parts[-1] = wrap(OCTET_STRING, wrap(SEQUENCE, names))
    return wrap(SEQUENCE, b"".join(parts))


def add_dns_name_to_tbs(tbs: bytes, name: str) -> bytes:
    """The TBSCertificate with `name` added to its subjectAltName (which it must have)."""
    raw = name.encode("utf-8")  # IA5String, but CAs have written UTF-8 there

    def edit(oid: bytes, der: bytes) -> bytes | None:
        return _with_extra_dns_name(der, raw) if oid == SAN_OID else None

    return rewrite_extensions(tbs, edit)


def add_dns_name(der: bytes, name: str) -> bytes:
    """The certificate with `name` added to its subjectAltName; its signature no longer verifies."""
    tbs, algorithm, signature = split_certificate(der)
    return wrap(SEQUENCE, add_dns_name_to_tbs(tbs, name) + algorithm + signature)
