"""An Atom feed of each watch's alerts (`/watches/NAME/alerts.atom`), newest first, for feed readers and
chat integrations that poll. Certificate text is made visible (control characters as escapes, which XML
1.0 could not carry anyway) and escaped by the XML writer."""

from __future__ import annotations

import functools
from xml.etree import ElementTree as ET

from aiohttp import web

from ctsentinel.store.models import Alert
from ctsentinel.terminal import safe_text
from ctsentinel.timefmt import rfc3339
from ctsentinel.web.errors import NotFound
from ctsentinel.web.services import services

ATOM = "http://www.w3.org/2005/Atom"
FEED_SIZE = 100


def _text(parent: ET.Element, tag: str, value: str, **attributes: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attributes)
    element.text = safe_text(value)
    return element


def atom(base: str, watch: str, alerts: list[Alert]) -> bytes:
    feed = ET.Element("feed", {"xmlns": ATOM})
    _text(feed, "title", f"ctsentinel alerts for watch {watch}")
    _text(feed, "id", f"{base}/watches/{watch}/alerts.atom")
    ET.SubElement(feed, "link", {"rel": "self", "href": f"{base}/watches/{watch}/alerts.atom"})
    ET.SubElement(feed, "link", {"rel": "alternate", "href": f"{base}/alerts?watch={watch}"})
    updated = max((a.first_seen for a in alerts), default=None)
    _text(feed, "updated", rfc3339(updated) if updated else "1970-01-01T00:00:00Z")
    author = ET.SubElement(feed, "author")
    _text(author, "name", "ctsentinel")
    for alert in alerts:
        entry = ET.SubElement(feed, "entry")
        names = ", ".join([*alert.dns_names, *alert.ip_addresses][:20])
        _text(entry, "title", f"{alert.severity.value.upper()} {alert.reason}: {', '.join(alert.matched)}")
        _text(entry, "id", f"{base}/alerts/{alert.id}")
        _text(entry, "updated", rfc3339(alert.first_seen))
        if alert.sha256:
            ET.SubElement(entry, "link", {"href": f"{base}/certificates/{alert.sha256[-1]}"})
        _text(
            entry,
            "summary",
            f"Alert #{alert.id} ({alert.state.value}) on watch {alert.watch}: issuer {alert.issuer or '?'}, "
            f"serial {alert.serial or '?'}, names {names}",
        )
    document: bytes = ET.tostring(feed, encoding="utf-8", xml_declaration=True)
    return document


async def watch_feed(request: web.Request) -> web.Response:
    svc = services(request)
    name = request.match_info["name"]
    if svc.watch(name) is None:
        raise NotFound(f"no watch named {name[:200]!r} in the config")
    page = await svc.query(functools.partial(svc.reader.browse.alerts, watch=name, limit=FEED_SIZE))
    base = f"{request.scheme}://{request.host}"
    return web.Response(body=atom(base, name, page.items), content_type="application/atom+xml")


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/watches/{name}/alerts.atom", watch_feed)
