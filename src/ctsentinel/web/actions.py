"""What changes something: logging in and out, acknowledging and resolving alerts.

Pages post forms with the session cookie and a CSRF token; the API takes the token as a Bearer header and
never a cookie. Both end in the same store call, which records the note, who and when.
"""

from __future__ import annotations

import functools
import json
import secrets
from urllib.parse import urlsplit

from aiohttp import web

from ctsentinel.store.models import AlertState
from ctsentinel.web.errors import BadRequest, Forbidden, TooLarge, Unauthorized
from ctsentinel.web.render import render
from ctsentinel.web.security import LOGIN_COOKIE, SESSION_COOKIE, SESSION_SECONDS, clean_name, same_origin
from ctsentinel.web.services import services, session
from ctsentinel.web.views import alert_number, json_response, page_context

ACTIONS = {"acknowledge": AlertState.ACKNOWLEDGED, "resolve": AlertState.RESOLVED}
MAX_FORM = 16 * 1024


def redirect(location: str) -> web.Response:
    """303 See Other: after a form, the browser fetches the page again with GET."""
    return web.Response(status=303, headers={"Location": location})


def _local(target: str | None) -> str:
    """Where to go after a form: a path on this server only (never //host or a scheme)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/alerts"
    parts = urlsplit(target)
    return target if not parts.scheme and not parts.netloc else "/alerts"


async def _form(request: web.Request) -> dict[str, str]:
    if request.content_length is not None and request.content_length > MAX_FORM:
        raise TooLarge(f"the form is over {MAX_FORM} bytes")
    if not same_origin(request):
        raise Forbidden("this form was posted from another site")
    data = await request.post()
    return {k: v for k, v in data.items() if isinstance(v, str)}


async def login_page(request: web.Request) -> web.Response:
    svc = services(request)
    binding = request.cookies.get(LOGIN_COOKIE) or secrets.token_urlsafe(16)
    context = page_context(
        request,
        login_csrf=svc.auth.csrf_token(binding),
        next=_local(request.query.get("next")),
        error=None,
        title="Log in",
    )
    response = render("login.html", context)
    response.set_cookie(LOGIN_COOKIE, binding, max_age=3600, httponly=True, samesite="Strict", path="/")
    return response


async def login(request: web.Request) -> web.Response:
    svc = services(request)
    form = await _form(request)
    if not svc.auth.csrf_ok(request.cookies.get(LOGIN_COOKIE), form.get("csrf")):
        raise Forbidden("the login form expired or came from elsewhere: load it again")
    if not svc.auth.enabled:
        raise Forbidden("no token is configured ([web] token or token_file): nobody can log in")
    if not svc.auth.token_matches(form.get("token", "")):
        binding = request.cookies.get(LOGIN_COOKIE) or ""
        context = page_context(
            request,
            login_csrf=svc.auth.csrf_token(binding),
            next=_local(form.get("next")),
            error="That is not the token.",
            title="Log in",
        )
        return render("login.html", context, status=401)
    _, cookie = svc.auth.new_session(clean_name(form.get("name", "")))
    response = redirect(_local(form.get("next")))
    response.set_cookie(
        SESSION_COOKIE, cookie, max_age=SESSION_SECONDS, httponly=True, samesite="Strict", path="/"
    )
    response.del_cookie(LOGIN_COOKIE, path="/")
    return response


async def logout(request: web.Request) -> web.Response:
    svc = services(request)
    form = await _form(request)
    current = session(request)
    if current is not None and not svc.auth.csrf_ok(current.nonce, form.get("csrf")):
        raise Forbidden("missing or wrong CSRF token")
    response = redirect("/")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def act_from_page(request: web.Request) -> web.Response:
    svc = services(request)
    current = session(request)
    if current is None:
        raise Unauthorized("log in with the token to act on alerts")
    form = await _form(request)
    if not svc.auth.csrf_ok(current.nonce, form.get("csrf")):
        raise Forbidden("missing or wrong CSRF token: reload the page and try again")
    state = _action(request)
    move = functools.partial(
        svc.writer.alert_states.move,
        alert_number(request),
        state,
        note=form.get("note", "").strip(),
        actor=current.who,
    )
    await svc.query(move)
    return redirect(_local(form.get("next")))


async def act_from_api(request: web.Request) -> web.Response:
    svc = services(request)
    if not svc.auth.bearer(request):
        raise Unauthorized("acting on alerts needs Authorization: Bearer <token>")
    state = _action(request)
    alert_id = alert_number(request)
    note, actor = "", "api"
    if request.can_read_body:
        if request.content_length is not None and request.content_length > MAX_FORM:
            raise TooLarge(f"the body is over {MAX_FORM} bytes")
        raw = await request.read()
        if len(raw) > MAX_FORM:
            raise TooLarge(f"the body is over {MAX_FORM} bytes")
        if raw.strip():
            try:
                body = json.loads(raw)
            except (ValueError, UnicodeDecodeError):
                raise BadRequest('body: not JSON (send {"note": "…", "by": "…"})') from None
            if not isinstance(body, dict) or not all(
                isinstance(body.get(k, ""), str) for k in ("note", "by")
            ):
                raise BadRequest('body: expected {"note": "…", "by": "…"} with strings')
            note, actor = body.get("note", "").strip(), clean_name(body.get("by", "api"))
    action = await svc.query(
        functools.partial(svc.writer.alert_states.move, alert_id, state, note=note, actor=actor)
    )
    alert = await svc.query(svc.reader.browse.alert, alert_id)
    return json_response({"alert": alert.to_json() if alert else None, "action": action.to_json()})


def _action(request: web.Request) -> AlertState:
    name = request.match_info["action"]
    if name not in ACTIONS:
        raise BadRequest(f"{name[:40]!r} is not an action (acknowledge, resolve)")
    return ACTIONS[name]


def add_routes(router: web.UrlDispatcher) -> None:
    router.add_get("/login", login_page)
    router.add_post("/login", login)
    router.add_post("/logout", logout)
    router.add_post("/alerts/{id}/{action}", act_from_page)
    router.add_post("/api/v1/alerts/{id}/{action}", act_from_api)
