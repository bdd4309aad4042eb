"""Editing a TBSCertificate the way a CA does between the precertificate and the final certificate.

`cryptography` builds certificates but cannot swap one extension for another in an existing TBS. Real CAs
sign the final certificate over the precertificate's TBS with the poison replaced, in place, by the SCT
list; doing the same here on bytes makes "TBS minus SCT list" of the certificate equal "TBS minus poison"
of the precertificate by construction. The log's storage uses the same editor to cut the poison out of a
submitted precertificate (cryptography's `tbs_precertificate_bytes` strips only the embedded-SCT
extension, so it cannot give RFC 6962's precert_entry TBS).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

SEQUENCE = 0x30
OCTET_STRING = 0x04
BIT_STRING = 0x03
BOOLEAN = 0x01
OID = 0x06
_EXTENSIONS_TAG = 0xA3  # [3] EXPLICIT Extensions inside TBSCertificate

# Contents (no tag or length) of the OBJECT IDENTIFIERs this module edits.
POISON_OID = bytes.fromhex("2b06010401d679020403")  # 1.3.6.1.4.1.11129.2.4.3, RFC 6962 3.1
SCT_LIST_OID = bytes.fromhex("2b06010401d679020402")  # 1.3.6.1.4.1.11129.2.4.2, RFC 6962 3.3
SAN_OID = bytes.fromhex("551d11")  # 2.5.29.17


class DERError(ValueError):
    """The bytes are not the DER this module expects (it is only fed certificates we built)."""


def length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def tlv(tag: int, value: bytes) -> bytes:
    return bytes((tag,)) + length(len(value)) + value


def read_header(data: bytes, offset: int) -> tuple[int, int, int]:
    """(tag, start of contents, end of contents) of the element at `offset`."""
    if offset + 2 > len(data):
        raise DERError(f"DER: truncated header at offset {offset}")
    tag = data[offset]
    first = data[offset + 1]
    pos = offset + 2
    if first < 0x80:
        size = first
    else:
        count = first & 0x7F
        if count == 0 or count > 4 or pos + count > len(data):
            raise DERError(f"DER: bad length at offset {offset + 1}")
        size = int.from_bytes(data[pos : pos + count], "big")
        pos += count
    if pos + size > len(data):
        raise DERError(f"DER: element at offset {offset} runs past the end")
    return tag, pos, pos + size


def children(data: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(tag, element start, contents start, element end) of each element in data[start:end]."""
    pos = start
    while pos < end:
        tag, body, stop = read_header(data, pos)
        yield tag, pos, body, stop
        pos = stop


def extension(oid: bytes, value: bytes, *, critical: bool = False) -> bytes:
    """One Extension: SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }."""
    crit = tlv(BOOLEAN, b"\xff") if critical else b""
    return tlv(SEQUENCE, tlv(OID, oid) + crit + tlv(OCTET_STRING, value))


def rewrite_extensions(tbs: bytes, edit: Callable[[bytes, bytes], bytes | None]) -> bytes:
    """The TBSCertificate with each Extension passed through edit(oid contents, extension DER).

    edit returns the replacement bytes (b"" drops the extension), or None to keep it unchanged.
    """
    tag, body, end = read_header(tbs, 0)
    if tag != SEQUENCE or end != len(tbs):
        raise DERError("TBSCertificate: not one SEQUENCE")
    parts: list[bytes] = []
    found = False
    for child_tag, start, child_body, stop in children(tbs, body, end):
        if child_tag != _EXTENSIONS_TAG:
            parts.append(tbs[start:stop])
            continue
        found = True
        seq_tag, seq_body, seq_end = read_header(tbs, child_body)
        if seq_tag != SEQUENCE:
            raise DERError(f"TBSCertificate: extensions at offset {child_body} are not a SEQUENCE")
        kept: list[bytes] = []
        for _, ext_start, ext_body, ext_stop in children(tbs, seq_body, seq_end):
            oid_tag, oid_body, oid_end = read_header(tbs, ext_body)
            if oid_tag != OID or oid_end > ext_stop:
                raise DERError(f"TBSCertificate: Extension at offset {ext_start} does not start with an OID")
            original = tbs[ext_start:ext_stop]
            replaced = edit(tbs[oid_body:oid_end], original)
            kept.append(original if replaced is None else replaced)
        # Extensions is SIZE (1..MAX): when none is left, the [3] field goes too.
        if any(kept):
            parts.append(tlv(_EXTENSIONS_TAG, tlv(SEQUENCE, b"".join(kept))))
    if not found:
        raise DERError("TBSCertificate: no extensions")
    return tlv(SEQUENCE, b"".join(parts))


def without_extensions(tbs: bytes, *oids: bytes) -> bytes:
    """The TBS minus the named extensions: RFC 6962's precert_entry signed_entry when oids = (poison,)."""
    return rewrite_extensions(tbs, lambda oid, _der: b"" if oid in oids else None)


def tbs_without_poison(tbs: bytes) -> bytes:
    """The TBSCertificate a log records for a precertificate: without the CT poison extension."""
    return without_extensions(tbs, POISON_OID)


def split_certificate(cert: bytes) -> tuple[bytes, bytes, bytes]:
    """(TBSCertificate, signatureAlgorithm, signatureValue), each as a whole DER element."""
    tag, body, end = read_header(cert, 0)
    if tag != SEQUENCE or end != len(cert):
        raise DERError("Certificate: not one SEQUENCE")
    parts = [cert[start:stop] for _, start, _, stop in children(cert, body, end)]
    if len(parts) != 3:
        raise DERError(f"Certificate: {len(parts)} top-level elements, expected 3")
    return parts[0], parts[1], parts[2]


def certificate(tbs: bytes, signature_algorithm: bytes, signature: bytes) -> bytes:
    """Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }."""
    return tlv(SEQUENCE, tbs + signature_algorithm + tlv(BIT_STRING, b"\x00" + signature))
