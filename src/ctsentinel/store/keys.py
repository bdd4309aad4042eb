"""Index keys: DNS names reversed by label, IP addresses as 16 bytes, issuance keys.

Keys hold what a certificate says, and a certificate can say what no index takes: PostgreSQL text refuses
NUL, and a btree entry is limited to about 2,700 bytes. A batch that cannot be written would be retried
forever and block its log, so keys are made storable here, on every backend alike: NUL is written as the
four characters "\\x00", and a name key is cut to KEY_BYTES of UTF-8. What is cut is the end of the
reversed name (its leftmost labels), so a search by a parent domain still finds the certificate; a serial
too long for a key keeps its first digits and a hash of the whole, so a search by the whole serial does too.
The exact names and serial stay in the certificate's row.
"""

from __future__ import annotations

import hashlib
import ipaddress

from ctsentinel.certs.record import CertRecord

_V4_MAPPED = bytes(10) + b"\xff\xff"
# Far beyond any real name (253 octets) or serial (20 octets), far below the btree limit.
KEY_BYTES = 1024
FITS_CHARACTERS = KEY_BYTES // 4  # at most 4 UTF-8 bytes a character: a text this short is never cut


def storable_text(text: str) -> str:
    """`text` with NUL written as "\\x00": PostgreSQL text cannot hold NUL."""
    return text.replace("\x00", "\\x00") if "\x00" in text else text


def _cut(text: str, limit: int = KEY_BYTES) -> str:
    if len(text) <= FITS_CHARACTERS:
        return text
    return text.encode("utf-8")[:limit].decode("utf-8", "ignore")


def name_key(name: str) -> str:
    """The cert_names key of a DNS name: reversed by label, storable, at most KEY_BYTES of UTF-8."""
    return _cut(storable_text(reverse_name(name)))


def reverse_name(name: str) -> str:
    """ "www.example.com" -> "com.example.www": a domain's subdomains share its reversed prefix plus "."."""
    return ".".join(name.split(".")[::-1])


def ip_key(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bytes:
    """16 bytes, IPv4 mapped into ::ffff:0:0/96 so one column (and one range scan) serves both."""
    if address.version == 4:
        return _V4_MAPPED + address.packed
    return address.packed


def ip_text_key(text: str) -> bytes | None:
    """The key of an address as a CertRecord writes it; None if it is not an address."""
    try:
        return ip_key(ipaddress.ip_address(text))
    except ValueError:
        return None


def network_range(network: ipaddress.IPv4Network | ipaddress.IPv6Network) -> tuple[bytes, bytes]:
    """First and last key of a network, inclusive."""
    return ip_key(network.network_address), ip_key(network.broadcast_address)


def issuance_key(record: CertRecord) -> str:
    """One issuance: a precertificate and its final certificate carry the same issuer key and serial."""
    if record.serial is not None and record.issuer_spki_sha256 is not None:
        return f"{serial_key(record.serial)}:{record.issuer_spki_sha256}"
    return f"sha256:{record.sha256}"


def serial_key(serial: str) -> str:
    """A serial (lowercase hex) as issuance keys hold it: as it is, or past 512 hex digits (RFC 5280 allows
    40) its first 448 digits, "~" and a hash of the whole, so that one serial still has one key."""
    if len(serial) <= 512:
        return serial
    return f"{serial[:448]}~{hashlib.sha256(serial.encode()).hexdigest()}"


def normalise_serial(text: str) -> str:
    """Hex as CertRecord.serial writes it: lower case, no separators, whole bytes, no leading zero bytes."""
    digits = text.replace(":", "").strip().lower().lstrip("0")
    if len(digits) % 2:
        digits = "0" + digits
    return digits or "00"
