"""Index keys: DNS names reversed by label, IP addresses as 16 bytes, issuance keys."""

from __future__ import annotations

import ipaddress

from ctsentinel.certs.record import CertRecord

_V4_MAPPED = bytes(10) + b"\xff\xff"


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
        return f"{record.serial}:{record.issuer_spki_sha256}"
    return f"sha256:{record.sha256}"


def normalise_serial(text: str) -> str:
    """Hex as CertRecord.serial writes it: lower case, no separators, whole bytes, no leading zero bytes."""
    digits = text.replace(":", "").strip().lower().lstrip("0")
    if len(digits) % 2:
        digits = "0" + digits
    return digits or "00"
