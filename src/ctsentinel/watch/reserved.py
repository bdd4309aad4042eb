"""Addresses that are not globally routable: what no publicly trusted certificate should name.

Python's ipaddress knows most special-purpose ranges (RFC 1918, loopback, link-local, CGNAT 100.64/10,
the documentation and benchmarking ranges, "this network", 240/4, ULA, Teredo, ORCHID, ...). What it
leaves out is added here: multicast (ipaddress calls some multicast "global"), IPv6 outside the global
unicast block 2000::/3 (site-local fec0::/10 and the unallocated space), the IPv6 documentation prefix of
RFC 9637, and IPv6 forms that carry an IPv4 address (mapped, NAT64, 6to4), judged by that IPv4 address.
"""

from __future__ import annotations

import ipaddress

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_GLOBAL_UNICAST_V6 = ipaddress.IPv6Network("2000::/3")
_DOCUMENTATION_V6 = (ipaddress.IPv6Network("2001:db8::/32"), ipaddress.IPv6Network("3fff::/20"))
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")  # RFC 6052: the last 32 bits are an IPv4 address


def embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv4-mapped (::ffff:a.b.c.d), NAT64 (64:ff9b::a.b.c.d) or 6to4 address carries."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address in _NAT64:
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return address.sixtofour


def is_reserved(address: IPAddress) -> bool:
    """True for an address that is not globally routable."""
    if isinstance(address, ipaddress.IPv6Address):
        carried = embedded_ipv4(address)
        if carried is not None:
            return is_reserved(carried)
        return (
            address.is_multicast
            or address not in _GLOBAL_UNICAST_V6
            or not address.is_global
            or any(address in network for network in _DOCUMENTATION_V6)
        )
    return address.is_multicast or not address.is_global


def is_reserved_text(text: str) -> bool:
    """is_reserved for an address in text form; text that is no address is not an address to route."""
    try:
        return is_reserved(ipaddress.ip_address(text))
    except ValueError:
        return False
