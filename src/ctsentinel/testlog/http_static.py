"""static-ct-api monitoring endpoints (c2sp.org/static-ct-api) under the same base as the RFC 6962 API."""

from __future__ import annotations

import gzip
import re

from aiohttp import web

from ctsentinel.ct.errors import DecodeError
from ctsentinel.ct.tiles import parse_tile_path
from ctsentinel.testlog import hostile
from ctsentinel.testlog.faults import HUGE_TREE_SIZE
from ctsentinel.testlog.service import SERVICE

_FINGERPRINT = re.compile("[0-9a-f]{64}")
_IMMUTABLE = "public, max-age=604800, immutable"


def accepts_gzip(header: str) -> bool:
    """Whether an Accept-Encoding header admits gzip (an explicit q=0 refuses it)."""
    for item in header.split(","):
        coding, _, params = item.strip().partition(";")
        if coding.strip().lower() in ("gzip", "x-gzip", "*"):
            q = params.strip().lower()
            if q.startswith("q="):
                try:
                    return float(q[2:]) > 0
                except ValueError:
                    return False
            return True
    return False


async def checkpoint(request: web.Request) -> web.StreamResponse:
    service = request.app[SERVICE]
    faults = service.faults
    if "bloated-sth" in faults:
        faults.bad_heads += 1
        padding = int(faults.value("bloated-sth") or 0)
        bad = hostile.bloated_checkpoint(service.storage, service.view().sth, faults.bad_heads, padding)
        return web.Response(body=bad, content_type="text/plain", charset="utf-8")
    body = service.storage.checkpoint(service.view().sth)
    if "trickle-sth" in faults:
        return await hostile.trickle(request, body, "text/plain", float(faults.value("trickle-sth") or 0))
    if "huge-tree-size" in service.faults:
        origin, _, rest = body.partition(b"\n")
        body = origin + b"\n" + HUGE_TREE_SIZE.encode() + b"\n" + rest.partition(b"\n")[2]
    # Mutable: the spec asks that caches keep it no longer than a few seconds.
    return web.Response(
        body=body, content_type="text/plain", charset="utf-8", headers={"Cache-Control": "no-store"}
    )


async def tile(request: web.Request) -> web.Response:
    try:
        level, index, width = parse_tile_path("tile/" + request.match_info["path"])
    except DecodeError as exc:
        raise web.HTTPNotFound(text=f"{exc}\n") from None
    view = request.app[SERVICE].view()
    if level == "data":
        body = view.data_tile(index, width)
    elif level <= 5:  # static-ct-api: hash tile levels 0 to 5
        body = view.hash_tile(level, index, width)
    else:
        body = None
    if body is None:
        raise web.HTTPNotFound(text="no such tile in the published tree\n")
    headers = {"Cache-Control": _IMMUTABLE}
    # Data tiles compress well; the spec lets logs gzip them, but we do so only for clients that accept it.
    if level == "data" and accepts_gzip(request.headers.get("Accept-Encoding", "")):
        body = gzip.compress(body, compresslevel=6, mtime=0)
        headers["Content-Encoding"] = "gzip"
    response = web.Response(body=body, content_type="application/octet-stream", headers=headers)
    return response


async def issuer(request: web.Request) -> web.Response:
    fingerprint = request.match_info["fingerprint"]
    if not _FINGERPRINT.fullmatch(fingerprint):
        raise web.HTTPNotFound(text="issuer fingerprint must be 64 lowercase hex digits\n")
    der = request.app[SERVICE].view().issuer(bytes.fromhex(fingerprint))
    if der is None:
        raise web.HTTPNotFound(text="no such issuer\n")
    return web.Response(body=der, content_type="application/pkix-cert", headers={"Cache-Control": _IMMUTABLE})


ROUTES = [
    ("GET", "checkpoint", checkpoint),
    ("GET", "tile/{path:.+}", tile),
    ("GET", "issuer/{fingerprint}", issuer),
]
