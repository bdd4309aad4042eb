"""`ctsentinel search QUERY`: parse the query (DESIGN.md section 3) and find issuances by index.

domain       the name and its subdomains      one range scan over reversed names
*.domain     its subdomains only              one range scan
IP, CIDR     an address or a network          one range scan over 16-byte keys
sha256:HEX   certificate SHA-256 or TBS hash
serial:HEX   colons allowed, any case, leading zeros ignored (a prefix scan of the issuance key)
issuer:TEXT  substring of the issuer DN, case-insensitive (a table scan)
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, func, or_, select

from ctsentinel.certs.hosts import stored_name
from ctsentinel.store.errors import StoreError
from ctsentinel.store.issuances import issuance_records
from ctsentinel.store.keys import ip_key, name_key, network_range, normalise_serial, serial_key
from ctsentinel.store.models import SearchResult
from ctsentinel.store.schema import cert_ips, cert_names, certificates

_HEX = re.compile(r"^[0-9a-f]+$")
_SERIAL = re.compile(r"^[0-9a-f]+(:[0-9a-f]+)*$")


class QueryError(StoreError):
    """A search query that cannot be understood, in one line."""


class QueryKind(StrEnum):
    DOMAIN = "domain"  # the name and its subdomains
    SUBDOMAINS = "subdomains"
    IP = "ip"
    CIDR = "cidr"
    SHA256 = "sha256"
    SERIAL = "serial"
    ISSUER = "issuer"


@dataclass(frozen=True)
class Query:
    """A parsed query."""

    kind: QueryKind
    value: str  # the A-label domain, normalised hex, address text or issuer text
    low: bytes | None = None  # ip/cidr: the inclusive range of 16-byte keys
    high: bytes | None = None


def parse_query(text: str) -> Query:
    """Parse a QUERY of the CLI contract; QueryError (one line) on bad input."""
    raw = text.strip()
    if not raw:
        raise QueryError("search: empty query")
    prefix, sep, rest = raw.partition(":")
    if sep and prefix.lower() in ("sha256", "serial", "issuer"):
        return _prefixed(prefix.lower(), rest.strip(), raw)
    if "/" in raw:
        try:
            network = ipaddress.ip_network(raw, strict=False)
        except ValueError:
            raise QueryError(f"search: {raw!r} is not a CIDR network") from None
        low, high = network_range(network)
        return Query(QueryKind.CIDR, str(network), low, high)
    try:
        address = ipaddress.ip_address(raw)
    except ValueError:
        pass
    else:
        key = ip_key(address)
        return Query(QueryKind.IP, str(address), key, key)
    if raw.startswith("*."):
        return Query(QueryKind.SUBDOMAINS, _a_label(raw[2:], raw))
    return Query(QueryKind.DOMAIN, _a_label(raw, raw))


def _prefixed(kind: str, rest: str, raw: str) -> Query:
    if kind == "issuer":
        if not rest:
            raise QueryError("search: issuer: needs some text of the issuer name")
        return Query(QueryKind.ISSUER, rest)
    digits = rest.lower()
    if kind == "sha256":
        if len(digits) != 64 or not _HEX.match(digits):
            raise QueryError(f"search: {raw!r}: sha256: needs 64 hex digits")
        return Query(QueryKind.SHA256, digits)
    if not _SERIAL.match(digits):
        raise QueryError(f"search: {raw!r}: serial: needs hex digits (colons allowed)")
    return Query(QueryKind.SERIAL, normalise_serial(digits))


def _a_label(name: str, raw: str) -> str:
    """The form a CertRecord stores the name in (lower case, IDNs as A-labels; IDNs may be typed in
    Unicode). Names that are not valid IDNA (an "_", a label that is not punycode) are searched as they
    are: certificates carry them, so a user must be able to look for them."""
    name = name.rstrip(".")
    if not name or "*" in name:
        raise QueryError(
            f"search: {raw!r} is not a domain, address or known query (sha256:, serial:, issuer:)"
        )
    if not name.isprintable() or any(c.isspace() for c in name):
        raise QueryError(f"search: {raw!r} is not a valid domain name (a space or control character)")
    if "" in name.split("."):
        raise QueryError(f"search: {raw!r} is not a valid domain name (an empty label)")
    return stored_name(name)


def _matching(query: Query) -> Select[Any]:
    """The issuance keys of the certificates the query selects, newest first."""
    c = certificates.c
    if query.kind in (QueryKind.DOMAIN, QueryKind.SUBDOMAINS):
        rev = name_key(query.value)
        # "com.example." .. "com.example/" ("/" follows "."): exactly the names below the domain.
        below = (cert_names.c.name_rev >= rev + ".") & (cert_names.c.name_rev < rev + "/")
        cond = or_(cert_names.c.name_rev == rev, below) if query.kind is QueryKind.DOMAIN else below
        base = select(c.issuance).join(cert_names, cert_names.c.cert_sha256 == c.sha256).where(cond)
    elif query.kind in (QueryKind.IP, QueryKind.CIDR):
        assert query.low is not None and query.high is not None
        base = (
            select(c.issuance)
            .join(cert_ips, cert_ips.c.cert_sha256 == c.sha256)
            .where(cert_ips.c.ip >= query.low, cert_ips.c.ip <= query.high)
        )
    elif query.kind is QueryKind.SHA256:
        digest = bytes.fromhex(query.value)
        base = select(c.issuance).where(or_(c.sha256 == digest, c.tbs_sha256 == digest))
    elif query.kind is QueryKind.SERIAL:
        base = select(c.issuance).where(serial_condition(c.issuance, c.serial, query.value))
    else:  # QueryKind.ISSUER
        base = select(c.issuance).where(func.lower(c.issuer).contains(query.value.lower(), autoescape=True))
    return base.group_by(c.issuance).order_by(func.max(c.first_seen).desc(), c.issuance)


def serial_condition(
    issuance: ColumnElement[str], serial: ColumnElement[str], value: str
) -> ColumnElement[bool]:
    """The certificates of one serial (`value` as normalise_serial writes it), by their issuance key."""
    # Issuance keys are "<serial>:<issuer key hash>"; ";" follows ":".
    key = serial_key(value)
    keyed = and_(issuance >= key + ":", issuance < key + ";")
    # A certificate that no chain certificate verifies has no known issuer and is an issuance of its own,
    # keyed "sha256:<its hash>" (keys.issuance_key); its serial column finds it among those few.
    alone = and_(issuance >= "sha256:", issuance < "sha256;", serial == value)
    return or_(keyed, alone)


def search(conn: Connection, query: Query, limit: int) -> list[SearchResult]:
    if limit <= 0:
        return []
    keys = [str(key) for key in conn.execute(_matching(query).limit(limit)).scalars()]
    return issuance_records(conn, keys)
