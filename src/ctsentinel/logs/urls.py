"""Which URLs ctsentinel will request: a log list downloaded from the network must not point it at hosts of
its own network, nor smuggle anything into a request.

A log's URL from a list is a base that ctsentinel appends API paths to: it never needs credentials, a query
or a fragment, and it names a public host. Only a list the user gave by path (a local test log, the demo)
may name loopback or private hosts; the bundled lists and any list fetched over HTTP may not, so that a
tampered list cannot turn the monitor against an internal service or a cloud metadata endpoint. A host name
is checked again when it is resolved (HttpClient's public_only), since its DNS answer can change.
"""

from __future__ import annotations

import ipaddress
import urllib.parse

# Names that always mean this machine or a local network, whatever DNS says (RFC 6761, RFC 6762, RFC 8375,
# and the ".internal" top-level domain ICANN reserved for private use).
_LOCAL_NAMES = ("localhost", "local", "localdomain", "internal", "home.arpa", "lan", "intranet")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def is_public_address(address: IPAddress) -> bool:
    """True for a globally routable unicast address: not loopback, private, link-local, shared (CGNAT),
    multicast, reserved or unspecified; an IPv4-mapped IPv6 address is judged as its IPv4 address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_global and not address.is_multicast


def _host_problem(host: str) -> str | None:
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        name = host.rstrip(".").lower()
        if any(name == local or name.endswith("." + local) for local in _LOCAL_NAMES):
            return f"names host {host}, a local name"
        if "." not in name:
            return f"names host {host}, not a fully qualified name"
        return None
    if not is_public_address(address):
        return f"names host {host}, not a public address"
    return None


def url_problem(url: str, *, internal_hosts: bool) -> str | None:
    """Why `url` may not be a log's URL, as a phrase ("has a query string"), or None if it may: not http(s),
    credentials, a query, a fragment, no host, or (unless internal_hosts) a host that is loopback, private,
    link-local, reserved or local."""
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return f"is not a URL ({exc})"
    if parts.scheme not in ("https", "http"):
        return "is not an http(s) URL"
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        return "carries credentials"
    if parts.query or "?" in url:
        return "has a query string"
    if parts.fragment or "#" in url:
        return "has a fragment"
    host = parts.hostname
    if not host:
        return "names no host"
    if port == 0:
        return "names port 0"
    if any(ord(c) < 0x21 or ord(c) == 0x7F or c == "\\" for c in url):
        return "holds spaces, control characters or backslashes"
    if not internal_hosts:
        return _host_problem(host)
    return None


def same_origin(url: str, target: str) -> bool:
    """Whether a redirect from `url` to `target` stays on the same host and port, and is not a downgrade
    from https to http (http to https on the same host is allowed)."""
    a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(target)
    if b.scheme not in ("https", "http") or (a.scheme == "https" and b.scheme == "http"):
        return False
    if b.username is not None or (a.hostname or "").lower() != (b.hostname or "").lower():
        return False
    try:
        a_port = a.port or (443 if a.scheme == "https" else 80)
        b_port = b.port or (443 if b.scheme == "https" else 80)
    except ValueError:
        return False
    # An upgrade to https moves to the https port; otherwise the port stays.
    return a.scheme != b.scheme or a_port == b_port
