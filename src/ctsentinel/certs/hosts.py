"""Host identifiers (internal): DNS names and IP addresses as a watch compares them.

A certificate can name an address three ways: an iPAddress SAN, IP text in a dNSName SAN, or IP text in
the subject CN. Some clients have accepted the latter two, so a watch for 1.1.1.1 must see all three;
every IP literal therefore goes to the addresses, in the ipaddress module's canonical text. An
IPv4-mapped IPv6 address (::ffff:1.1.1.1) is reported in both forms, so that a watch on the IPv4 address
sees it. Only exact literals count: "1.example", "10.0.0.com" and zero-padded or shortened quads stay
names, as no resolver treats them as addresses.

DNS names are lower-cased, IDNs become A-labels (U-labels converted leniently under UTS 46 / IDNA2008,
with a raw punycode fallback when a label breaks the rules, because the watch must still see it), one
trailing root dot is dropped, and the Unicode form of every IDN is kept separately for display. A CN
containing a space is not taken as a host name at all (the caller filters those).
"""

from __future__ import annotations

from ipaddress import IPv4Address, IPv6Address

import idna

_IP_LAST_CHARS = frozenset("0123456789.]")
# RFC 1035 2.3.4: at most 63 octets a label, 255 a name on the wire (253 as text without the root dot).
# A longer "name" no resolver can look up: it is kept as written (lower-cased), reported, and matched on
# nothing (watch.names refuses it), and no IDNA or IP parsing is spent on it (punycode alone is quadratic
# in the label length: a 20,000-character label takes minutes to encode).
MAX_NAME = 253
MAX_LABEL = 63
_IDN_CACHE: dict[str, tuple[str, str | None]] = {}
_ULABEL_CACHE: dict[str, str] = {}
_IDN_CACHE_LIMIT = 16384


class Identifiers:
    """Ordered, de-duplicated names and addresses collected from one certificate."""

    __slots__ = ("dns", "ips", "unicode")

    def __init__(self) -> None:
        # Dicts as ordered sets: first-seen order is kept, repeats are dropped.
        self.dns: dict[str, None] = {}
        self.ips: dict[str, None] = {}
        self.unicode: dict[str, None] = {}

    def add_name(self, text: str) -> str | None:
        """A dNSName SAN or CN value: to the addresses if it is an IP literal, else to the names. Returns
        why it cannot be a DNS name when it is too long for one (None otherwise)."""
        if not text:
            return None
        if len(text) > MAX_NAME + 1:  # one trailing root dot is allowed
            self.dns[text.lower()] = None
            return _too_long(len(text.encode("utf-8", "replace")))
        if text[-1] in _IP_LAST_CHARS or ":" in text:
            addresses = ip_literal(text)
            if addresses is not None:
                for address in addresses:
                    self.ips[address] = None
                return None
            if text[-1] == "." and len(text) > 1:
                text = text[:-1]
        display: str | None = None
        if text.isascii():
            name = text.lower()
            if "xn--" in name:
                display = _to_unicode(name)
        else:
            name, display = _idn_forms(text)
        self.dns[name] = None
        if display is not None:
            self.unicode[display] = None
        return name_problem(name)

    def add_ip_bytes(self, raw: bytes) -> bool:
        """An iPAddress SAN; False (nothing added) unless it is 4 or 16 bytes long."""
        if len(raw) == 4:
            self.ips[f"{raw[0]}.{raw[1]}.{raw[2]}.{raw[3]}"] = None
            return True
        if len(raw) == 16:
            address = IPv6Address(raw)
            self.ips[str(address)] = None
            mapped = address.ipv4_mapped
            if mapped is not None:
                self.ips[str(mapped)] = None
            return True
        return False


def name_problem(name: str) -> str | None:
    """Why `name` (A-labels, no trailing dot) cannot be a DNS name, or None; linear in its length."""
    if len(name) > MAX_NAME:
        return _too_long(len(name))
    if len(name) > MAX_LABEL:
        longest = max(len(label) for label in name.split("."))
        if longest > MAX_LABEL:
            return f"a label of {longest} octets, over {MAX_LABEL}: not a DNS name, not matched"
    return None


def _too_long(length: int) -> str:
    return f"{length} octets, over {MAX_NAME}: not a DNS name, not matched"


def ip_literal(text: str) -> list[str] | None:
    """Canonical texts of the address that `text` spells exactly, or None if it is not an IP literal.

    Accepted: dotted-quad IPv4, IPv6 (any case, optionally in brackets), either with one trailing dot.
    """
    s = text[:-1] if text.endswith(".") else text
    bracketed = s.startswith("[") and s.endswith("]")
    if bracketed:
        s = s[1:-1]
    if ":" in s:
        try:
            address = IPv6Address(s)
        except ValueError:
            return None
        mapped = address.ipv4_mapped
        return [str(address)] if mapped is None else [str(address), str(mapped)]
    if bracketed or s.count(".") != 3 or not s.replace(".", "").isdigit():
        return None
    try:
        return [str(IPv4Address(s))]
    except ValueError:
        return None


def _idn_forms(text: str) -> tuple[str, str | None]:
    """(A-label form, Unicode display form) of a name with non-ASCII characters."""
    hit = _IDN_CACHE.get(text)
    if hit is None:
        hit = _to_ascii(text)
        if len(_IDN_CACHE) >= _IDN_CACHE_LIMIT:
            _IDN_CACHE.clear()
        _IDN_CACHE[text] = hit
    return hit


def _to_ascii(text: str) -> tuple[str, str | None]:
    try:
        mapped = idna.uts46_remap(text, std3_rules=False, transitional=False)
    except (UnicodeError, ValueError):
        mapped = text.lower()
    if mapped.endswith(".") and len(mapped) > 1:
        mapped = mapped[:-1]
    labels = []
    for label in mapped.split("."):
        if label.isascii() or len(label) > MAX_LABEL:
            labels.append(label.lower())
            continue
        try:
            labels.append(idna.alabel(label).decode("ascii"))
        except (UnicodeError, ValueError):
            # Not valid IDNA2008 (e.g. a symbol IDNA2003 allowed): punycode it anyway, as the A-label
            # a browser of that era would have looked up.
            labels.append("xn--" + label.encode("punycode").decode("ascii"))
    return ".".join(labels), mapped


def _to_unicode(name: str) -> str | None:
    """Display form of an ASCII name with A-labels, or None if no label decodes."""
    labels = name.split(".")
    changed = False
    for n, label in enumerate(labels):
        if label.startswith("xn--") and len(label) <= MAX_LABEL:
            # Labels repeat across names (every host of one IDN domain), full names rarely do.
            ulabel = _ULABEL_CACHE.get(label)
            if ulabel is None:
                ulabel = _ulabel(label)
                if len(_ULABEL_CACHE) >= _IDN_CACHE_LIMIT:
                    _ULABEL_CACHE.clear()
                _ULABEL_CACHE[label] = ulabel
            if ulabel:
                labels[n] = ulabel
                changed = True
    return ".".join(labels) if changed else None


def _ulabel(label: str) -> str:
    # Display only, so plain punycode decoding: IDNA validation (idna.ulabel) costs ~100 µs a label and
    # would reject exactly the odd labels an attacker would use. "" when it does not decode at all.
    try:
        return label[4:].encode("ascii").decode("punycode")
    except (UnicodeError, ValueError):
        return ""


def stored_name(text: str) -> str:
    """A DNS name in the form records hold it (lower case, IDNs as A-labels, leniently), so that a name
    typed by a user finds what a certificate wrote, valid or not (an "_" or a label that is not punycode)."""
    return text.lower() if text.isascii() else _idn_forms(text)[0]
