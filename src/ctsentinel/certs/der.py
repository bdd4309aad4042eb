"""A small, lenient DER reader (internal): TLV headers as offsets into the caller's bytes.

Nothing is copied or built: callers walk a certificate by offsets and slice only what they keep. It
accepts what real CAs have emitted and strict parsers refuse (non-minimal lengths, high tag numbers);
indefinite lengths are handled out of the hot path by re-encoding the whole input once (`to_definite`).
Every problem is a DecodeError whose message ends with the offset, so callers can prefix the structure.

Hand-written rather than an ASN.1 library's parser, because this is the monitor's hot path: every entry
of every log goes through it, and building parsed objects is what makes the alternatives slow (with
cryptography the same record costs 1.8-2.7 times as long, measured by bench/certs_bench.py), on top of
their refusing certificates that CAs have really issued.
"""

from __future__ import annotations

from collections.abc import Iterator

from ctsentinel.ct.errors import DecodeError
from ctsentinel.errors import Error

SEQUENCE = 0x30
SET = 0x31
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
OID = 0x06
BOOLEAN = 0x01

# One element: (its first tag octet, offset of its header, content start, content end).
Element = tuple[int, int, int, int]

_MAX_DEPTH = 64
_MAX_OID_OCTETS = 48


class IndefiniteLength(Error):
    """Raised on a BER indefinite length, so the top level can re-encode the input and retry.

    Deliberately not a DecodeError: the per-field handlers must let it through to that top level.
    """


class Overrun(DecodeError):
    """An element whose content runs past its container; it carries the element as its header declares it,
    so that a reader of a truncated input can go on with what is there."""

    def __init__(self, message: str, tag: int, start: int, end: int) -> None:
        super().__init__(message)
        self.tag = tag
        self.start = start
        self.end = end


def _high_tag_end(b: bytes, i: int, end: int) -> int:
    """Offset of the length octet after the high tag number that starts at i."""
    # Callers compare only the first tag octet, which never equals a low tag they look for, so such
    # elements are skipped as unknown.
    j = i + 1
    while j < end and b[j] & 0x80:
        j += 1
    j += 1
    if j >= end:
        raise DecodeError(f"truncated tag at offset {i}")
    return j


def read_tlv(b: bytes, i: int, end: int) -> tuple[int, int, int]:
    """The element at offset i, bounded by end: (first tag octet, content start, content end).

    The one decoder of DER lengths: every other reader here is a fast path that comes back to it for
    anything but the usual forms.
    """
    if i + 2 > end:
        raise DecodeError(f"truncated header at offset {i}")
    tag = b[i]
    j = i + 1 if tag & 0x1F != 0x1F else _high_tag_end(b, i, end)
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
        if k == 1:
            n = b[j]
        elif k == 2:
            n = b[j] << 8 | b[j + 1]
        else:
            n = int.from_bytes(b[j : j + k], "big")
        j += k
    e = j + n
    if e > end:
        raise Overrun(f"element of {n} bytes overruns its container by {e - end} at offset {i}", tag, j, e)
    return tag, j, e


def read_header(b: bytes, i: int) -> tuple[int, int, int]:
    """Like read_tlv for a top-level element, but its content may end past the data (a truncated input):
    the caller sees the declared end and decides how to go on."""
    try:
        return read_tlv(b, i, len(b))
    except Overrun as overrun:
        return overrun.tag, overrun.start, overrun.end


def elements(b: bytes, start: int, end: int) -> Iterator[Element]:
    """Each element of b[start:end] in turn; DecodeError at the first that does not fit, after those
    before it have been seen (a malformed certificate still yields its readable fields)."""
    i = start
    while i < end:
        # The usual forms (low tag, length below 64 KiB) are read here: a read_tlv call per element costs
        # as much as the rest of a certificate walk's loop. Anything else goes through read_tlv.
        tag = b[i]
        try:
            n = b[i + 1]
            if n < 0x80:
                s = i + 2
                e = s + n
            elif n == 0x81:
                s = i + 3
                e = s + b[i + 2]
            elif n == 0x82:
                s = i + 4
                e = s + (b[i + 2] << 8 | b[i + 3])
            else:
                e = end + 1
        except IndexError:  # the input ends inside this header: read_tlv says how
            e = end + 1
        if e > end or tag & 0x1F == 0x1F:
            tag, s, e = read_tlv(b, i, end)
        yield tag, i, s, e
        i = e


def encode_length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(raw),)) + raw


def header(tag: int, length: int) -> bytes:
    """The tag and length octets of an element with a one-octet tag and `length` content octets."""
    # The usual forms spelt out: a certificate's TBS re-encoded for its hash needs three headers.
    if length < 0x80:
        return bytes((tag, length))
    if length < 0x100:
        return bytes((tag, 0x81, length))
    if length < 0x10000:
        return bytes((tag, 0x82, length >> 8, length & 0xFF))
    return bytes((tag,)) + encode_length(length)


def wrap(tag: int, content: bytes) -> bytes:
    return header(tag, len(content)) + content


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
    j = i + 1 if tag & 0x1F != 0x1F else _high_tag_end(b, i, end)
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
