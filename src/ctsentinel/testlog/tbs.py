"""Editing a TBSCertificate the way a CA does between the precertificate and the final certificate.

`cryptography` builds certificates but cannot swap one extension for another in an existing TBS. Real CAs
sign the final certificate over the precertificate's TBS with the poison replaced, in place, by the SCT
list; doing the same here on bytes makes "TBS minus SCT list" of the certificate equal "TBS minus poison"
of the precertificate by construction. The log's storage uses the same editor to cut the poison out of a
submitted precertificate (cryptography's `tbs_precertificate_bytes` strips only the embedded-SCT
extension, so it cannot give RFC 6962's precert_entry TBS).
"""

from __future__ import annotations

from collections.abc import Callable

from ctsentinel.certs.der import BIT_STRING, BOOLEAN, OCTET_STRING, OID, SEQUENCE, elements, read_tlv
from ctsentinel.certs.der import wrap as tlv
from ctsentinel.ct.errors import DecodeError

__all__ = [
    "BIT_STRING",
    "BOOLEAN",
    "OCTET_STRING",
    "OID",
    "POISON_OID",
    "SAN_OID",
    "SCT_LIST_OID",
    "SEQUENCE",
    "certificate",
    "extension",
    "rewrite_extensions",
    "split_certificate",
    "tbs_without_poison",
    "tlv",
    "without_extensions",
]

_EXTENSIONS_TAG = 0xA3  # [3] EXPLICIT Extensions inside TBSCertificate

# Contents (no tag or length) of the OBJECT IDENTIFIERs this module edits.
POISON_OID = bytes.fromhex("2b06010401d679020403")  # 1.3.6.1.4.1.11129.2.4.3, RFC 6962 3.1
SCT_LIST_OID = bytes.fromhex("2b06010401d679020402")  # 1.3.6.1.4.1.11129.2.4.2, RFC 6962 3.3
SAN_OID = bytes.fromhex("551d11")  # 2.5.29.17


def extension(oid: bytes, value: bytes, *, critical: bool = False) -> bytes:
    """One Extension: SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue OCTET STRING }."""
    crit = tlv(BOOLEAN, b"\xff") if critical else b""
    return tlv(SEQUENCE, tlv(OID, oid) + crit + tlv(OCTET_STRING, value))


def rewrite_extensions(tbs: bytes, edit: Callable[[bytes, bytes], bytes | None]) -> bytes:
    """The TBSCertificate with each Extension passed through edit(oid contents, extension DER).

    edit returns the replacement bytes (b"" drops the extension), or None to keep it unchanged.
    """
    tag, body, end = read_tlv(tbs, 0, len(tbs))
    if tag != SEQUENCE or end != len(tbs):
        raise DecodeError("TBSCertificate: not one SEQUENCE")
    parts: list[bytes] = []
    found = False
    for child_tag, start, child_body, stop in elements(tbs, body, end):
        if child_tag != _EXTENSIONS_TAG:
            parts.append(tbs[start:stop])
            continue
        found = True
        seq_tag, seq_body, seq_end = read_tlv(tbs, child_body, stop)
        if seq_tag != SEQUENCE:
            raise DecodeError(f"TBSCertificate: extensions at offset {child_body} are not a SEQUENCE")
        kept: list[bytes] = []
        for _, ext_start, ext_body, ext_stop in elements(tbs, seq_body, seq_end):
            oid_tag, oid_body, oid_end = read_tlv(tbs, ext_body, ext_stop)
            if oid_tag != OID:
                raise DecodeError(
                    f"TBSCertificate: Extension at offset {ext_start} does not start with an OID"
                )
            original = tbs[ext_start:ext_stop]
            replaced = edit(tbs[oid_body:oid_end], original)
            kept.append(original if replaced is None else replaced)
        # Extensions is SIZE (1..MAX): when none is left, the [3] field goes too.
        if any(kept):
            parts.append(tlv(_EXTENSIONS_TAG, tlv(SEQUENCE, b"".join(kept))))
    if not found:
        raise DecodeError("TBSCertificate: no extensions")
    return tlv(SEQUENCE, b"".join(parts))


def without_extensions(tbs: bytes, *oids: bytes) -> bytes:
    """The TBS minus the named extensions: RFC 6962's precert_entry signed_entry when oids = (poison,)."""
    return rewrite_extensions(tbs, lambda oid, _der: b"" if oid in oids else None)


def tbs_without_poison(tbs: bytes) -> bytes:
    """The TBSCertificate a log records for a precertificate: without the CT poison extension."""
    return without_extensions(tbs, POISON_OID)


def split_certificate(cert: bytes) -> tuple[bytes, bytes, bytes]:
    """(TBSCertificate, signatureAlgorithm, signatureValue), each as a whole DER element."""
    tag, body, end = read_tlv(cert, 0, len(cert))
    if tag != SEQUENCE or end != len(cert):
        raise DecodeError("Certificate: not one SEQUENCE")
    parts = [cert[start:stop] for _, start, _, stop in elements(cert, body, end)]
    if len(parts) != 3:
        raise DecodeError(f"Certificate: {len(parts)} top-level elements, expected 3")
    return parts[0], parts[1], parts[2]


def certificate(tbs: bytes, signature_algorithm: bytes, signature: bytes) -> bytes:
    """Certificate ::= SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }."""
    return tlv(SEQUENCE, tbs + signature_algorithm + tlv(BIT_STRING, b"\x00" + signature))
