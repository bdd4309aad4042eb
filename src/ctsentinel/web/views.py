"""The pages and their JSON twins: each pair is one function that queries the store and builds a model,
rendered once by a template and once as JSON (DESIGN.md section 7)."""

from __future__ import annotations

import functools
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from aiohttp import web

from ctsentinel.monitor.status import LogStatus, log_statuses
from ctsentinel.store import MisbehaviourRecord, Query, parse_query
from ctsentinel.store.browse_models import (
    AlertAction,
    CAReport,
    CertificateView,
    Issuance,
    IssuerInfo,
    Page,
    SearchFilters,
    TimelineBar,
)
from ctsentinel.store.models import Alert, AlertState
from ctsentinel.timefmt import rfc3339
from ctsentinel.watch.policy import organizations
from ctsentinel.web import charts, cursor, params
from ctsentinel.web.compat import crtsh
from ctsentinel.web.errors import BadRequest, NotFound
from ctsentinel.web.render import render
from ctsentinel.web.services import Services, services, session
from ctsentinel.web.settings import DEFAULT_PAGE_SIZE, WatchSpec


def page_context(request: web.Request, **values: Any) -> dict[str, Any]:
    """What every template gets: the session (if logged in), the CSRF token of its forms, the path."""
    svc = services(request)
    current = session(request)
    csrf = svc.auth.csrf_token(current.nonce) if current is not None else ""
    return {
        "session": current,
        "csrf": csrf,
        "actions_enabled": svc.auth.enabled,
        "path": request.rel_url.path_qs,
        "watches": svc.watches,
        **values,
    }


def json_response(data: object, *, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        text=json.dumps(data, indent=2, ensure_ascii=False),
        content_type="application/json",
        headers=headers,
    )


# -- search -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SearchView:
    q: str
    query: Query | None
    expired: str  # "include" | "exclude"
    issuer: str | None
    watch: str | None
    page: Page[Issuance]
    next: str | None  # cursor of the next page
    limit: int

    def to_json(self) -> dict[str, Any]:
        return {"results": [i.to_json() for i in self.page.items], "next": self.next}

    def link(self, after: str | None = None) -> str:
        pairs = [("q", self.q)]
        if self.expired == "exclude":
            pairs.append(("expired", "exclude"))
        if self.issuer:
            pairs.append(("issuer", self.issuer))
        if self.watch:
            pairs.append(("watch", self.watch))
        if self.limit != DEFAULT_PAGE_SIZE:
            pairs.append(("limit", str(self.limit)))
        if after:
            pairs.append(("after", after))
        return "/search?" + urlencode(pairs)


async def search_view(request: web.Request, *, required: bool) -> SearchView:
    svc = services(request)
    q = (params.text(request, "q", required=required) or "").strip()
    expired = params.text(request, "expired", max_length=10) or "include"
    if expired not in ("include", "exclude"):
        raise BadRequest(f"expired: {expired!r} is not include or exclude")
    issuer = params.text(request, "issuer", max_length=80) or None
    if issuer is not None:
        issuer = params.sha256_hex(issuer.removeprefix("sha256:"), "issuer")
    watch = params.text(request, "watch", max_length=200) or None
    limit = params.limit(request) or DEFAULT_PAGE_SIZE
    if not q:
        return SearchView("", None, expired, issuer, watch, Page([], False), None, limit)
    query = parse_query(q)
    scope = "\x00".join(["search", q, expired, issuer or "", watch or ""])
    after = params.after(request, scope)
    filters = SearchFilters(
        unexpired_at=rfc3339(datetime.now(UTC)) if expired == "exclude" else None,
        issuer_spki_sha256=issuer,
        watch=watch,
    )
    search = functools.partial(svc.reader.browse.search, query, filters, limit=limit, after=after)
    page = await svc.query(search)
    following = cursor.encode(scope, [page.items[-1].id]) if page.more and page.items else None
    return SearchView(q, query, expired, issuer, watch, page, following, limit)


async def search_page(request: web.Request) -> web.Response:
    view = await search_view(request, required=False)
    return render("search.html", page_context(request, view=view, title=f"Search {view.q}".strip()))


async def search_api(request: web.Request) -> web.Response:
    return json_response((await search_view(request, required=True)).to_json())


# -- one certificate --------------------------------------------------------------------------------------


async def certificate_view(request: web.Request) -> CertificateView:
    svc = services(request)
    sha = params.sha256_hex(request.match_info["sha256"], "certificate")
    view = await svc.query(svc.reader.browse.certificate, bytes.fromhex(sha))
    if view is None:
        raise NotFound(f"no certificate with SHA-256 {sha} in the store")
    return view


async def certificate_page(request: web.Request) -> web.Response:
    view = await certificate_view(request)
    return render(
        "certificate.html", page_context(request, cert=view, title=f"Certificate {view.record.sha256}")
    )


async def certificate_api(request: web.Request) -> web.Response:
    return json_response((await certificate_view(request)).to_json())


async def certificate_pem(request: web.Request) -> web.Response:
    view = await certificate_view(request)
    if view.pem is None:
        raise NotFound("the store kept this certificate's fields but not its bytes")
    kind = "precertificate" if view.record.precert else "certificate"
    return web.Response(
        text=view.pem,
        content_type="application/x-pem-file",
        headers={"Content-Disposition": f'attachment; filename="{view.record.sha256}-{kind}.pem"'},
    )


# -- alerts -----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlertsView:
    state: AlertState | None
    watch: str | None
    page: Page[Alert]
    next: str | None
    history: dict[int, list[AlertAction]]


async def alerts_view(request: web.Request, *, default_limit: int | None) -> AlertsView:
    svc = services(request)
    state = params.state(request)
    watch = params.text(request, "watch", max_length=200) or None
    limit = params.limit(request, default_limit)
    scope = "\x00".join(["alerts", state.value if state else "", watch or ""])
    after = params.after(request, scope)
    alerts = functools.partial(svc.reader.browse.alerts, state=state, watch=watch, limit=limit, after=after)
    page = await svc.query(alerts)
    history = await svc.query(svc.reader.alert_states.history, [a.id for a in page.items])
    following = cursor.encode(scope, [page.items[-1].id]) if page.more and page.items else None
    return AlertsView(state, watch, page, following, history)


async def alerts_page(request: web.Request) -> web.Response:
    view = await alerts_view(request, default_limit=DEFAULT_PAGE_SIZE)
    return render("alerts.html", page_context(request, view=view, states=list(AlertState), title="Alerts"))


async def alerts_api(request: web.Request) -> web.Response:
    """The alert JSON array of `alerts --json` (every alert unless limited); a Link header to the next
    page when `limit` cut it."""
    view = await alerts_view(request, default_limit=None)
    headers = {}
    if view.next is not None:
        query = {k: v for k, v in request.query.items() if k != "after"}
        next_url = request.rel_url.with_query({**query, "after": view.next})
        headers["Link"] = f'<{next_url}>; rel="next"'
    return json_response([a.to_json() for a in view.page.items], headers=headers)


async def alert_api(request: web.Request) -> web.Response:
    svc = services(request)
    alert_id = alert_number(request)
    alert = await svc.query(svc.reader.browse.alert, alert_id)
    if alert is None:
        raise NotFound(f"alert {alert_id}: no such alert")
    history = await svc.query(svc.reader.alert_states.history, [alert_id])
    return json_response({"alert": alert.to_json(), "actions": [a.to_json() for a in history[alert_id]]})


def alert_number(request: web.Request) -> int:
    text = request.match_info["id"]
    if not text.isdigit() or len(text) > 18:
        raise BadRequest(f"alert: {text[:40]!r} is not an alert number")
    return int(text)


# -- watches and their timelines --------------------------------------------------------------------------


@dataclass(frozen=True)
class IssuerSeries:
    issuer: IssuerInfo | None
    authorized: bool
    counts: dict[str, int]  # month -> issuances

    @property
    def label(self) -> str:
        if self.issuer is None:
            return "issuer not identified"
        return self.issuer.name or f"sha256:{self.issuer.spki_sha256}"

    @property
    def first_month(self) -> str:
        return min(self.counts)


@dataclass(frozen=True)
class TimelineView:
    watch: WatchSpec
    months: list[str]
    series: list[IssuerSeries]  # in the order each issuer first appeared
    alerts: list[Alert]

    def chart(self) -> Any:
        drawn = [
            charts.Series(s.label, tuple(s.counts.get(m, 0) for m in self.months), not s.authorized)
            for s in self.series
        ]
        return charts.stacked_bars(
            self.months, drawn, title=f"Issuances per month for watch {self.watch.name}"
        )

    def legend(self) -> list[charts.Legend]:
        return charts.legend(
            [charts.Series(s.label, tuple(s.counts.values()), not s.authorized) for s in self.series]
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "watch": self.watch.name,
            "months": self.months,
            "issuers": [
                {
                    "issuer": s.issuer.name if s.issuer else None,
                    "issuer_spki_sha256": s.issuer.spki_sha256 if s.issuer else None,
                    "authorized": s.authorized,
                    "first_month": s.first_month,
                    "by_month": s.counts,
                }
                for s in self.series
            ],
        }


def month_range(first: str, last: str) -> list[str]:
    """Every month from first to last ("2024-02" … "2025-08"), so gaps show as gaps."""
    try:
        year, month = int(first[:4]), int(first[5:7])
        end = (int(last[:4]), int(last[5:7]))
    except ValueError:
        return sorted({first, last})
    out: list[str] = []
    while (year, month) <= end and len(out) < 1200:
        out.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return out


def issuer_series(watch: WatchSpec, bars: Sequence[TimelineBar]) -> list[IssuerSeries]:
    grouped: dict[str | None, dict[str, int]] = {}
    issuers: dict[str | None, IssuerInfo | None] = {}
    for bar in bars:
        key = bar.issuer.spki_sha256 if bar.issuer else None
        issuers[key] = bar.issuer
        grouped.setdefault(key, {})[bar.month] = grouped.get(key, {}).get(bar.month, 0) + bar.count
    out: list[IssuerSeries] = []
    for key, counts in grouped.items():
        issuer = issuers[key]
        orgs = organizations(issuer.name or "") if issuer else frozenset()
        out.append(IssuerSeries(issuer, watch.authorizes(key, orgs), dict(sorted(counts.items()))))
    return sorted(out, key=lambda s: (s.first_month, s.label))


async def timeline_view(request: web.Request) -> TimelineView:
    svc = services(request)
    name = request.match_info["name"]
    watch = svc.watch(name)
    if watch is None:
        raise NotFound(f"no watch named {name[:200]!r} in the config")
    matches = [parse_query(text) for text in (*watch.domains, *watch.networks)]
    bars = await svc.query(svc.reader.browse.timeline, matches)
    months = sorted({b.month for b in bars if b.month != "unknown"})
    span = month_range(months[0], months[-1]) if months else []
    if any(b.month == "unknown" for b in bars):
        span.append("unknown")
    alerts = functools.partial(svc.reader.browse.alerts, watch=watch.name, limit=20)
    page = await svc.query(alerts)
    return TimelineView(watch, span, issuer_series(watch, bars), page.items)


async def watch_page(request: web.Request) -> web.Response:
    view = await timeline_view(request)
    return render("watch.html", page_context(request, view=view, title=f"Watch {view.watch.name}"))


async def watch_api(request: web.Request) -> web.Response:
    return json_response((await timeline_view(request)).to_json())


def watch_json(watch: WatchSpec) -> dict[str, Any]:
    return {"name": watch.name, "domains": list(watch.domains), "ips": list(watch.networks)}


async def watches_page(request: web.Request) -> web.Response:
    return render("watches.html", page_context(request, title="Watches"))


async def watches_api(request: web.Request) -> web.Response:
    return json_response([watch_json(w) for w in services(request).watches])


# -- logs -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LogView:
    status: LogStatus
    misbehaviour: list[MisbehaviourRecord]


def _log_views(svc: Services) -> list[LogView]:
    statuses = log_statuses(svc.reader)
    out = []
    for status in statuses:
        records = svc.reader.misbehaviour(bytes.fromhex(status.log_id)) if status.misbehaving else []
        out.append(LogView(status, records))
    return out


async def logs_page(request: web.Request) -> web.Response:
    svc = services(request)
    views = await svc.query(_log_views, svc)
    return render("logs.html", page_context(request, logs=views, json=json, title="Logs"))


async def logs_api(request: web.Request) -> web.Response:
    svc = services(request)
    statuses = await svc.query(log_statuses, svc.reader)
    return json_response([s.to_json() for s in statuses])


# -- CAs --------------------------------------------------------------------------------------------------


async def ca_report(request: web.Request) -> CAReport:
    svc = services(request)
    spki = params.sha256_hex(request.match_info["spki"].removeprefix("sha256:"), "issuer key")
    report = await svc.query(svc.reader.browse.ca_report, bytes.fromhex(spki))
    if report is None:
        raise NotFound(f"no issuer with key hash {spki} in the store")
    return report


async def ca_page(request: web.Request) -> web.Response:
    report = await ca_report(request)
    months = list(report.by_month)
    span = month_range(months[0], months[-1]) if months and months[0] != "unknown" else months
    chart = charts.stacked_bars(
        span,
        [charts.Series(report.issuer.name or "", tuple(report.by_month.get(m, 0) for m in span))],
        title="Issuances per month",
    )
    return render(
        "ca.html", page_context(request, report=report, chart=chart, title=f"CA {report.issuer.name or ''}")
    )


async def ca_api(request: web.Request) -> web.Response:
    return json_response((await ca_report(request)).to_json())


async def cas_view(request: web.Request) -> tuple[Page[IssuerInfo], str | None]:
    svc = services(request)
    limit = params.limit(request, 500) or 500
    after = params.after(request, "cas")
    page = await svc.query(functools.partial(svc.reader.browse.issuers, limit=limit, after=after))
    following = cursor.encode("cas", [page.items[-1].id]) if page.more and page.items else None
    return page, following


async def cas_page(request: web.Request) -> web.Response:
    page, following = await cas_view(request)
    return render("cas.html", page_context(request, issuers=page.items, next=following, title="CAs"))


async def cas_api(request: web.Request) -> web.Response:
    page, following = await cas_view(request)
    items = [
        {"issuer": i.name, "issuer_spki_sha256": i.spki_sha256, "first_seen": rfc3339(i.first_seen)}
        for i in page.items
    ]
    return json_response({"results": items, "next": following})


# -- home -------------------------------------------------------------------------------------------------


async def home(request: web.Request) -> web.StreamResponse:
    if request.query.get("output") == "json" or "q" in request.query:
        if request.query.get("output") == "json":
            return await crtsh(request)
        raise web.HTTPSeeOther(f"/search?{request.query_string}")
    svc = services(request)
    counts = await svc.query(svc.reader.browse.alert_counts)
    recent = await svc.query(functools.partial(svc.reader.browse.alerts, state=AlertState.OPEN, limit=5))
    return render("home.html", page_context(request, counts=counts, recent=recent.items, title="ctsentinel"))


def add_routes(router: web.UrlDispatcher) -> None:
    sha = "{sha256:[^./]+}"
    router.add_get("/", home)
    router.add_get("/search", search_page)
    router.add_get("/api/v1/search", search_api)
    router.add_get(f"/certificates/{sha}", certificate_page)
    router.add_get(f"/certificates/{sha}.pem", certificate_pem)
    router.add_get(f"/api/v1/certificates/{sha}", certificate_api)
    router.add_get("/alerts", alerts_page)
    router.add_get("/api/v1/alerts", alerts_api)
    router.add_get("/api/v1/alerts/{id}", alert_api)
    router.add_get("/watches", watches_page)
    router.add_get("/api/v1/watches", watches_api)
    router.add_get("/watches/{name}", watch_page)
    router.add_get("/api/v1/watches/{name}", watch_api)
    router.add_get("/logs", logs_page)
    router.add_get("/api/v1/logs", logs_api)
    router.add_get("/cas", cas_page)
    router.add_get("/api/v1/cas", cas_api)
    router.add_get("/cas/{spki}", ca_page)
    router.add_get("/api/v1/cas/{spki}", ca_api)
