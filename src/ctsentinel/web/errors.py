"""HTTP problems as one-line errors, and the middleware that turns every failure into a clean response:
400 for bad input, 401/403 for missing rights, 404, 409, 503 for a query over its time limit or a database
that cannot answer; never a traceback, and a 500 only for a bug (logged, not shown)."""

from __future__ import annotations

import json
import sys
import traceback
from urllib.parse import urlencode

from aiohttp import web
from aiohttp.typedefs import Handler

from ctsentinel.errors import UserError
from ctsentinel.store import QueryError, StoreError
from ctsentinel.store.alert_states import AlertNotFound, AlertStateConflict
from ctsentinel.store.timelimit import QueryTimeout
from ctsentinel.web.cursor import CursorError
from ctsentinel.web.render import render


class HTTPProblem(UserError):
    status = 400


class BadRequest(HTTPProblem):
    status = 400


class Unauthorized(HTTPProblem):
    status = 401


class Forbidden(HTTPProblem):
    status = 403


class NotFound(HTTPProblem):
    status = 404


class TooLarge(HTTPProblem):
    status = 413


def status_of(exc: UserError) -> int:
    if isinstance(exc, HTTPProblem):
        return exc.status
    if isinstance(exc, QueryError | CursorError):
        return 400
    if isinstance(exc, AlertNotFound):
        return 404
    if isinstance(exc, AlertStateConflict):
        return 409
    if isinstance(exc, QueryTimeout | StoreError):
        return 503
    return 400


def wants_json(request: web.Request) -> bool:
    path = request.path
    return (
        path.startswith(("/api/", "/v1/")) or request.query.get("output") == "json" or path.endswith(".json")
    )


def wants_html(request: web.Request) -> bool:
    """A page for people (errors as pages, 401 as a way to the login), not a machine's document."""
    machine = request.path == "/metrics" or request.path.endswith((".atom", ".pem"))
    return not wants_json(request) and not machine


def problem(request: web.Request, status: int, message: str) -> web.Response:
    message = " ".join(message.split())  # one line, whatever went in
    if wants_json(request):
        return web.Response(
            text=json.dumps({"error": message}), status=status, content_type="application/json"
        )
    if not wants_html(request):
        return web.Response(text=message + "\n", status=status, content_type="text/plain")
    context = {
        "status": status,
        "message": message,
        "session": None,
        "csrf": "",
        "actions_enabled": False,
        "path": "/",
        "watches": (),
    }
    return render("error.html", context, status=status)


@web.middleware
async def error_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except UserError as exc:
        status = status_of(exc)
        if status == 401 and wants_html(request) and request.method == "GET":
            raise web.HTTPSeeOther("/login?" + urlencode({"next": request.rel_url.path_qs})) from None
        answer = problem(request, status, str(exc))
        if status == 401:
            answer.headers["WWW-Authenticate"] = 'Bearer realm="ctsentinel"'
        return answer
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        answer = problem(request, exc.status, exc.reason)
        if "Allow" in exc.headers:
            answer.headers["Allow"] = exc.headers["Allow"]
        return answer
    except Exception:  # a bug: the traceback goes to the server's stderr, the client gets one line
        print(f"ctsentinel serve: internal error on {request.method} {request.path}", file=sys.stderr)
        traceback.print_exc()
        return problem(request, 500, "internal error (details are in the server's log)")
