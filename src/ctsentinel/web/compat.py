"""The APIs that existing tools speak, answered from this store.

crt.sh JSON (`/?q=…&output=json`): subfinder, amass and scripts written for crt.sh work unchanged. `q` is a
name (exact), `%.domain` or `*.domain` (every name below it), or any `search` query (IP, CIDR, sha256:,
serial:, issuer:). `exclude=expired` drops expired issuances; `deduplicate=Y` gives one row per issuance
(a precertificate and its certificate once), otherwise one row per certificate. There is no row cap: the
rows are streamed, fetched a page at a time, each page under the query time limit. `id` is this store's
issuance number; `entry_timestamp` is when this store first saw the issuance.

Cert Spotter v1 (`/v1/issuances?domain=…`): unexpired issuances, oldest first, 100 a page; the next page
is `after=<last id>`. `include_subdomains`, `match_wildcards` and `expand` (dns_names, issuer, revocation,
cert_der) as documented by SSLMate; `ip=ADDRESS_OR_CIDR` instead of `domain` is our extension.
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from ctsentinel.certs.dn import COMMON_NAME, attribute_values
from ctsentinel.store import QueryKind, parse_query
from ctsentinel.store.browse import Match, NameMatch
from ctsentinel.store.browse_models import Issuance, SearchFilters
from ctsentinel.timefmt import rfc3339
from ctsentinel.watch.policy import organizations
from ctsentinel.web import params
from ctsentinel.web.errors import BadRequest
from ctsentinel.web.services import services
from ctsentinel.web.settings import MAX_PAGE_SIZE

CERTSPOTTER_PAGE = 100
EXPANDABLE = ("dns_names", "issuer", "revocation", "cert_der")


def _now() -> str:
    return rfc3339(datetime.now(UTC))


# -- crt.sh -----------------------------------------------------------------------------------------------


def crtsh_match(q: str) -> Match:
    text = q.strip()
    if not text:
        raise BadRequest("q: required")
    for prefix in ("%.", "*."):
        if text.startswith(prefix):
            query = parse_query(text[len(prefix) :])
            if query.kind is not QueryKind.DOMAIN:
                raise BadRequest(f"q: {text!r}: a wildcard needs a domain after it")
            return NameMatch(below=(query.value,))
    if "%" in text:
        raise BadRequest(f"q: {text!r}: only a leading %. wildcard is supported")
    query = parse_query(text)
    if query.kind is QueryKind.DOMAIN:
        return NameMatch(exact=(query.value,))
    return query


def _crt_time(value: str | None) -> str | None:
    return value.removesuffix("Z") if value else None


def _common_name(subject: str | None) -> str | None:
    """The CN= value of an RFC 4514 subject (the last one, as crt.sh shows)."""
    values = attribute_values(subject, COMMON_NAME) if subject else []
    return values[-1] if values else None


def crtsh_rows(issuance: Issuance, deduplicate: bool) -> list[dict[str, Any]]:
    record = issuance.record
    row = {
        "issuer_ca_id": issuance.issuer_id,
        "issuer_name": record.issuer,
        "common_name": _common_name(record.subject),
        "name_value": "\n".join(sorted(set(record.dns_names) | set(record.ip_addresses))),
        "id": issuance.id,
        "entry_timestamp": issuance.first_seen.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3],
        "not_before": _crt_time(record.not_before),
        "not_after": _crt_time(record.not_after),
        "serial_number": record.serial,
    }
    copies = 1 if deduplicate else max(1, len(issuance.found.fingerprints))
    return [dict(row) for _ in range(copies)]


async def crtsh(request: web.Request) -> web.StreamResponse:
    svc = services(request)
    match = crtsh_match(params.text(request, "q", required=True) or "")
    exclude = params.text(request, "exclude", max_length=20)
    if exclude not in (None, "", "expired"):
        raise BadRequest(f"exclude: {exclude!r} is not expired")
    dedupe = (params.text(request, "deduplicate", max_length=5) or "N").upper() in ("Y", "YES", "TRUE", "1")
    filters = SearchFilters(unexpired_at=_now() if exclude == "expired" else None)
    search = svc.reader.browse.search
    # The first page before any byte is sent, so that a bad or too slow query is still a clean error.
    page = await svc.query(functools.partial(search, match, filters, limit=MAX_PAGE_SIZE))
    response = web.StreamResponse(headers={"Content-Type": "application/json; charset=utf-8"})
    await response.prepare(request)
    first = True
    while True:
        for issuance in page.items:
            for row in crtsh_rows(issuance, dedupe):
                await response.write((b"[" if first else b",") + json.dumps(row).encode())
                first = False
        if not page.more or not page.items:
            break
        after = page.items[-1].id
        page = await svc.query(functools.partial(search, match, filters, limit=MAX_PAGE_SIZE, after=after))
    await response.write(b"[]" if first else b"]")
    await response.write_eof()
    return response


# -- Cert Spotter -----------------------------------------------------------------------------------------


def certspotter_match(request: web.Request) -> Match:
    domain = params.text(request, "domain", max_length=300)
    ip = params.text(request, "ip", max_length=100)
    if domain and ip:
        raise BadRequest("give domain or ip, not both")
    if ip:
        query = parse_query(ip)
        if query.kind not in (QueryKind.IP, QueryKind.CIDR):
            raise BadRequest(f"ip: {ip!r} is not an IP address or CIDR range")
        return query
    if not domain:
        raise BadRequest("domain: required (or ip)")
    query = parse_query(domain)
    if query.kind is not QueryKind.DOMAIN:
        raise BadRequest(f"domain: {domain!r} is not a DNS name")
    exact = [query.value]
    if params.flag(request, "match_wildcards"):
        parent = query.value.partition(".")[2]
        if parent:
            exact.append(f"*.{parent}")
    below = (query.value,) if params.flag(request, "include_subdomains") else ()
    return NameMatch(exact=tuple(exact), below=below)


def expansions(request: web.Request) -> set[str]:
    asked = set()
    for value in request.query.getall("expand", []):
        for part in value.split(","):
            part = part.strip()
            if part not in EXPANDABLE:
                raise BadRequest(f"expand: {part[:40]!r} is not one of {', '.join(EXPANDABLE)}")
            asked.add(part)
    return asked


def issuance_json(issuance: Issuance, expand: set[str], der: bytes | None) -> dict[str, Any]:
    record = issuance.record
    out: dict[str, Any] = {
        "id": str(issuance.id),
        "tbs_sha256": record.tbs_sha256,
        "cert_sha256": record.sha256,
        "pubkey_sha256": record.subject_spki_sha256,
        "not_before": record.not_before,
        "not_after": record.not_after,
        "revoked": bool(issuance.revoked and issuance.revoked.get("status") == "revoked"),
    }
    if "dns_names" in expand:
        out["dns_names"] = list(record.dns_names)
    if "issuer" in expand:
        orgs = sorted(organizations(record.issuer or ""))
        out["issuer"] = {
            "friendly_name": orgs[0] if orgs else record.issuer,
            "name": record.issuer,
            "pubkey_sha256": record.issuer_spki_sha256,
        }
    if "revocation" in expand:
        revoked = issuance.revoked or {}
        out["revocation"] = {
            "time": revoked.get("revoked_at"),
            "reason": revoked.get("reason"),
            "checked_at": revoked.get("checked_at"),
        }
    if "cert_der" in expand:
        out["cert_der"] = base64.b64encode(der).decode() if der is not None else None
    return out


def _ders(svc_reader: Any, shas: Sequence[str]) -> dict[str, bytes | None]:
    return {sha: svc_reader.certificate_der(bytes.fromhex(sha)) for sha in shas}


async def certspotter(request: web.Request) -> web.Response:
    svc = services(request)
    match = certspotter_match(request)
    expand = expansions(request)
    after_text = params.text(request, "after", max_length=20)
    after = None
    if after_text:
        if not after_text.isdigit():
            raise BadRequest(f"after: {after_text!r} is not an issuance id")
        after = int(after_text)
    filters = SearchFilters(unexpired_at=_now())
    search = functools.partial(
        svc.reader.browse.search, match, filters, limit=CERTSPOTTER_PAGE, after=after, oldest_first=True
    )
    page = await svc.query(search)
    ders: dict[str, bytes | None] = {}
    if "cert_der" in expand:
        ders = await svc.query(_ders, svc.reader, [i.record.sha256 for i in page.items])
    body = [issuance_json(i, expand, ders.get(i.record.sha256)) for i in page.items]
    return web.Response(text=json.dumps(body, indent=2), content_type="application/json")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/v1/issuances", certspotter)
