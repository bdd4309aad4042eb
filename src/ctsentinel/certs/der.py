"""A small, lenient DER reader (internal): TLV headers as offsets into the caller's bytes.

Nothing is copied or built: callers walk a certificate by offsets and slice only what they keep. It
accepts what real CAs have emitted and strict parsers refuse (non-minimal lengths, high tag numbers);
indefinite lengths are handled out of the hot path by re-encoding the whole input once (`to_definite`).
Every problem is a DecodeError whose message ends with the offset, so callers can prefix the structure.
"""

from __future__ import annotations

from ctsentinel.ct.errors import DecodeError
from ctsentinel.errors import Error

SEQUENCE = 0x30
SET = 0x31
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
OID = 0x06
BOOLEAN = 0x01

_MAX_DEPTH = 64
_MAX_OID_OCTETS = 48


class IndefiniteLength(Error):
    """Raised on a BER indefinite length, so the top level can re-encode the input and retry.

    Deliberately not a DecodeError: the per-field handlers must let it through to that top level.
    """


def read_tlv(b: bytes, i: int, end: int) -> tuple[int, int, int]:
    """The element at offset i, bounded by end: (first tag octet, content start, content end)."""
    if i + 2 > end:
        raise DecodeError(f"truncated header at offset {i}")
    tag = b[i]
    j = i + 1
    if tag & 0x1F == 0x1F:
        # High tag number: skip its base-128 octets; callers compare only the first octet, which
        # never equals a low tag they look for, so such elements are skipped as unknown.
        while j < end and b[j] & 0x80:
            j += 1
        j += 1
        if j >= end:
            raise DecodeError(f"truncated tag at offset {i}")
    n = b[j]
    j += 1
    if n >= 0x80:
        k = n & 0x7F
        if k == 0:
            raise IndefiniteLength(f"indefinite length at offset {i}")
        if k > 4:
            raise DecodeError(f"length of {k} octets at offset {i}")
        if j + k > end:
            raise DecodeError(f"truncated length at offset {i}")
        n = int.from_bytes(b[j : j + k], "big")
        j += k
    e = j + n
    if e > end:
        raise DecodeError(f"element of {n} bytes overruns its container by {e - end} at offset {i}")
    return tag, j, e


def read_header(b: bytes, i: int) -> tuple[int, int, int]:
    """Like read_tlv for a top-level element, but its content may end past the data (a truncated input):
    the caller sees the declared end and decides how to go on."""
    end = len(b)
    if i + 2 > end:
        raise DecodeError(f"truncated header at offset {i}")
    j = i + 1
    if b[i] & 0x1F == 0x1F:
        while j < end and b[j] & 0x80:
            j += 1
        j += 1
        if j >= end:
            raise DecodeError(f"truncated tag at offset {i}")
    n = b[j]
    j += 1
    if n >= 0x80:
        k = n & 0x7F
        if k == 0:
            raise IndefiniteLength(f"indefinite length at offset {i}")
        if k > 4 or j + k > end:
            raise DecodeError(f"truncated length at offset {i}")
        n = int.from_bytes(b[j : j + k], "big")
        j += k
    return b[i], j, j + n


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def wrap(tag: int, content: bytes) -> bytes:
    return bytes((tag,)) + encode_length(len(content)) + content


def to_definite(b: bytes) -> bytes:
    """Re-encode BER indefinite lengths as definite ones (rare input, so clarity over speed)."""
    out, nxt = _reencode(b, 0, len(b), 0)
    return out + b[nxt:]


def _reencode(b: bytes, i: int, end: int, depth: int) -> tuple[bytes, int]:
    if depth > _MAX_DEPTH:
        raise DecodeError(f"nesting deeper than {_MAX_DEPTH} at offset {i}")
    if i + 2 > end:
        raise DecodeError(f"truncated header at offset {i}")
    tag = b[i]
    j = i + 1
    if tag & 0x1F == 0x1F:
        while j < end and b[j] & 0x80:
            j += 1
        j += 1
    if j >= end:
        raise DecodeError(f"truncated tag at offset {i}")
    head = b[i:j]
    constructed = bool(tag & 0x20)
    if b[j] == 0x80:
        if not constructed:
            raise DecodeError(f"indefinite length on a primitive element at offset {i}")
        k = j + 1
        parts: list[bytes] = []
        while True:
            if k + 2 > end:
                raise DecodeError(f"missing end-of-contents for the element at offset {i}")
            if b[k] == 0 and b[k + 1] == 0:
                k += 2
                break
            part, k = _reencode(b, k, end, depth + 1)
            parts.append(part)
        content = b"".join(parts)
        return head + encode_length(len(content)) + content, k
    _, s, e = read_tlv(b, i, end)
    if not constructed:
        return b[i:e], e
    parts = []
    k = s
    while k < e:
        part, k = _reencode(b, k, e, depth + 1)
        parts.append(part)
    content = b"".join(parts)
    return head + encode_length(len(content)) + content, e


def oid_dotted(content: bytes) -> str:
    """Dotted text of an OBJECT IDENTIFIER's content octets (lenient: a truncated arc ends the text)."""
    if len(content) > _MAX_OID_OCTETS:
        # Arcs are unbounded integers; building huge ones is quadratic, and nobody reads such an OID.
        return "oid:" + content[:_MAX_OID_OCTETS].hex() + "..."
    arcs: list[int] = []
    value = 0
    for octet in content:
        value = (value << 7) | (octet & 0x7F)
        if not octet & 0x80:
            arcs.append(value)
            value = 0
    if not arcs:
        return ""
    first = arcs[0]
    head = [0, first] if first < 40 else [1, first - 40] if first < 80 else [2, first - 80]
    return ".".join(str(a) for a in head + arcs[1:])
