"""Just enough DER to edit a certificate's TBS: walk elements, re-encode lengths.

cryptography's `tbs_precertificate_bytes` strips only the embedded-SCT extension (it serves final
certificates), so the precertificate TBS that RFC 6962 logs (the TBS minus the poison extension) is cut
here. Input is DER that cryptography already parsed, so the walk may assume well-formed lengths.
"""

from __future__ import annotations

from collections.abc import Iterator

# OBJECT IDENTIFIER 1.3.6.1.4.1.11129.2.4.3 (the CT precertificate poison), tag and length included.
POISON_OID = bytes.fromhex("060a2b06010401d679020403")
_EXTENSIONS_TAG = 0xA3


def header(der: bytes, pos: int) -> tuple[int, int, int]:
    """(tag, content start, content end) of the element at pos (single-byte tags only, as X.509 uses)."""
    tag = der[pos]
    first = der[pos + 1]
    if first < 0x80:
        return tag, pos + 2, pos + 2 + first
    n = first & 0x7F
    return tag, pos + 2 + n, pos + 2 + n + int.from_bytes(der[pos + 2 : pos + 2 + n], "big")


def children(der: bytes, start: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """(tag, element start, content start, element end) of each element in der[start:end]."""
    pos = start
    while pos < end:
        tag, content, element_end = header(der, pos)
        yield tag, pos, content, element_end
        pos = element_end


def encode(tag: int, content: bytes) -> bytes:
    n = len(content)
    if n < 0x80:
        return bytes((tag, n)) + content
    length = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((tag, 0x80 | len(length))) + length + content


def tbs_without_poison(tbs: bytes) -> bytes:
    """The TBSCertificate with the CT poison extension removed (and the extensions field, if it empties)."""
    _, start, end = header(tbs, 0)
    parts: list[bytes] = []
    for tag, element, content, element_end in children(tbs, start, end):
        if tag != _EXTENSIONS_TAG:
            parts.append(tbs[element:element_end])
            continue
        _, seq_start, seq_end = header(tbs, content)
        kept = [
            tbs[ext:ext_end]
            for _, ext, ext_content, ext_end in children(tbs, seq_start, seq_end)
            if not tbs.startswith(POISON_OID, ext_content)
        ]
        if kept:
            parts.append(encode(_EXTENSIONS_TAG, encode(0x30, b"".join(kept))))
    return encode(0x30, b"".join(parts))
