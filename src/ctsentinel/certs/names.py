"""X.501 Names (internal): the RFC 4514 string and the common names, cached by the Name's DER.

The string follows cryptography's Name.rfc4514_string() (most specific RDN first, its attribute
abbreviations, dotted OIDs otherwise, its escaping), so text shown by other tools matches ours. The
cache matters: a log repeats a few thousand issuer Names across millions of entries.
"""

from __future__ import annotations

import re

from ctsentinel.certs.der import BIT_STRING, OID, SEQUENCE, SET, oid_dotted, read_tlv
from ctsentinel.ct.errors import DecodeError

CN_OID = b"\x55\x04\x03"

_SHORT_NAMES: dict[bytes, str] = {
    CN_OID: "CN",
    b"\x55\x04\x07": "L",
    b"\x55\x04\x08": "ST",
    b"\x55\x04\x0a": "O",
    b"\x55\x04\x0b": "OU",
    b"\x55\x04\x06": "C",
    b"\x55\x04\x09": "STREET",
    b"\x09\x92\x26\x89\x93\xf2\x2c\x64\x01\x19": "DC",
    b"\x09\x92\x26\x89\x93\xf2\x2c\x64\x01\x01": "UID",
}

_UTF8_STRING = 0x0C
_BMP_STRING = 0x1E
_UNIVERSAL_STRING = 0x1C

_SPECIAL = re.compile(r'[\\"+,;<>\x00]').search
_UTF8_COMPATIBLE = frozenset((0x0C, 0x13, 0x16))  # UTF8String, PrintableString, IA5String

# (rfc4514 text, common names); only cleanly parsed Names are cached, so cached entries carry no error.
NameInfo = tuple[str, tuple[str, ...]]
_CACHE: dict[bytes, NameInfo] = {}
_CACHE_LIMIT = 65536


def decode_value(tag: int, raw: bytes) -> tuple[str, bool]:
    """Text of an attribute value and whether it was well-formed for its declared type.

    Unknown and legacy string types (T61String, VisibleString, ...) are read as UTF-8 when they are valid
    UTF-8 and as latin-1 otherwise, which is what such certificates meant in practice.
    """
    if tag == _BMP_STRING:
        return raw.decode("utf-16-be", "replace"), len(raw) % 2 == 0
    if tag == _UNIVERSAL_STRING:
        return raw.decode("utf-32-be", "replace"), len(raw) % 4 == 0
    try:
        return raw.decode("utf-8"), True
    except UnicodeDecodeError:
        if tag == _UTF8_STRING:
            return raw.decode("utf-8", "replace"), False
        return raw.decode("latin-1"), True


def _needs_escape(value: str) -> bool:
    """Whether _escape would change value: a special character anywhere, "#" or " " first, " " last, or
    empty. (One regex with those anchors as alternatives is tried at every position: 2-3 times slower.)"""
    return not value or value[0] in "# " or value[-1] == " " or _SPECIAL(value) is not None


def _escape(value: str) -> str:
    # Same steps, in the same order, as RFC 4514 section 2.4 as cryptography applies it.
    if not value:
        return ""
    if _SPECIAL(value) is not None:
        value = (
            value.replace("\\", "\\\\")
            .replace('"', '\\"')
            .replace("+", "\\+")
            .replace(",", "\\,")
            .replace(";", "\\;")
            .replace("<", "\\<")
            .replace(">", "\\>")
            .replace("\0", "\\00")
        )
    # A lone space gets one escape (as trailing), not two.
    if value[0] == "#" or (value[0] == " " and len(value) > 1):
        value = "\\" + value
    if value[-1] == " ":
        value = value[:-1] + "\\ "
    return value


def name_info(b: bytes, s: int, e: int, cache: bool = True) -> tuple[str, tuple[str, ...], str | None]:
    """The Name whose whole TLV is b[s:e]: (RFC 4514 text, common names, error or None).

    On a malformed Name the text holds the attributes read before the problem; the error names it.
    cache=False is for subjects: nearly each is new, so caching them would only churn the issuers out.
    """
    if cache:
        key = b[s:e]
        hit = _CACHE.get(key)
        if hit is not None:
            return hit[0], hit[1], None
    rdns: list[str] = []
    cns: list[str] = []
    error: str | None = None
    i = s
    try:
        tag, i, end = read_tlv(b, s, e)
        if tag != SEQUENCE:
            raise DecodeError(f"expected SEQUENCE, found tag 0x{tag:02x} at offset {s}")
        while i < end:
            # Fast path: the usual RDN of one attribute, all lengths short:
            # 31 L1 30 L1-2 06 OL <oid> VT VL <value>, checked byte by byte instead of 4 read_tlv calls.
            l1 = b[i + 1]
            if b[i] == SET and b[i + 2] == SEQUENCE and b[i + 4] == OID and l1 < 0x80 and b[i + 3] == l1 - 2:
                oe = i + 6 + b[i + 5]
                vs = oe + 2
                ve = i + 2 + l1
                if b[oe + 1] == ve - vs and ve <= end and b[oe] & 0x1F != 0x1F:
                    oid = b[i + 6 : oe]
                    text, cn, problem = _attribute(b, oid, b[oe], vs, ve, oe)
                    rdns.append(text)
                    if cn is not None:
                        cns.append(cn)
                    if problem is not None and error is None:
                        error = problem
                    i = ve
                    continue
            tag, j, rdn_end = read_tlv(b, i, end)
            if tag != SET:
                raise DecodeError(f"expected SET (RDN), found tag 0x{tag:02x} at offset {i}")
            attrs: list[str] = []
            while j < rdn_end:
                tag, k, attr_end = read_tlv(b, j, rdn_end)
                if tag != SEQUENCE:
                    raise DecodeError(f"expected SEQUENCE (attribute), found tag 0x{tag:02x} at offset {j}")
                tag, os_, oe = read_tlv(b, k, attr_end)
                if tag != OID:
                    raise DecodeError(f"expected OBJECT IDENTIFIER, found tag 0x{tag:02x} at offset {k}")
                vtag, vs, ve = read_tlv(b, oe, attr_end)
                text, cn, problem = _attribute(b, b[os_:oe], vtag, vs, ve, oe)
                attrs.append(text)
                if cn is not None:
                    cns.append(cn)
                if problem is not None and error is None:
                    error = problem
                j = attr_end
            # cryptography refuses an empty RDN; we skip it, since it names nothing.
            if attrs:
                rdns.append("+".join(attrs))
            i = rdn_end
    except DecodeError as exc:
        error = str(exc)
    except IndexError:
        error = f"truncated Name at offset {i}"
    rdns.reverse()
    text = ",".join(rdns)
    result = (text, tuple(cns))
    if cache and error is None:
        if len(_CACHE) >= _CACHE_LIMIT:
            _CACHE.clear()
        _CACHE[key] = result
    return text, result[1], error


def _attribute(
    b: bytes, oid: bytes, vtag: int, vs: int, ve: int, at: int
) -> tuple[str, str | None, str | None]:
    """One AttributeTypeAndValue: ("label=escaped value", the value if it is a CN, problem or None)."""
    label = _SHORT_NAMES.get(oid) or oid_dotted(oid)
    if vtag == BIT_STRING:
        return f"{label}={'#' + b[vs:ve].hex() if ve > vs else ''}", None, None
    ok = True
    if vtag in _UTF8_COMPATIBLE:
        try:
            text = b[vs:ve].decode("utf-8")
        except UnicodeDecodeError:
            text, ok = decode_value(vtag, b[vs:ve])
    else:
        text, ok = decode_value(vtag, b[vs:ve])
    problem = None if ok else f"invalid encoding of a tag 0x{vtag:02x} string at offset {at}"
    return (
        f"{label}={_escape(text) if _needs_escape(text) else text}",
        text if oid == CN_OID else None,
        problem,
    )
