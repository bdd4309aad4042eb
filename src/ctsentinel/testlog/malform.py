"""Corrupt a certificate the way malformed certificates in real CT logs are corrupt.

The notBefore time gets an impossible character, as in real mis-encoded certificates (cf. pyca's
badasn1time.pem): every tag and length stays intact, so a lenient decoder still reads the names and the
issuer, while a strict parser refuses the certificate. The log hashes and signs the corrupted bytes, so
its tree stays consistent and a monitor must report a malformed certificate, not a lying log.
"""

from __future__ import annotations

from ctsentinel.certs.der import elements, read_tlv

_VALIDITY_POSITION = 4  # serialNumber, signature, issuer, validity (after the optional [0] version)


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
