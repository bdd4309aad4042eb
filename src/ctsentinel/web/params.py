"""Reading query parameters: every bad value is a one-line 400, never a crash."""

from __future__ import annotations

from aiohttp import web

from ctsentinel.store.models import AlertState
from ctsentinel.web import cursor
from ctsentinel.web.errors import BadRequest
from ctsentinel.web.settings import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE

MAX_TEXT = 1000


def text(
    request: web.Request, name: str, *, required: bool = False, max_length: int = MAX_TEXT
) -> str | None:
    values = request.query.getall(name, [])
    if len(values) > 1:
        raise BadRequest(f"{name}: give it once")
    value = values[0] if values else None
    if value is not None and len(value) > max_length:
        raise BadRequest(f"{name}: longer than {max_length} characters")
    if value is not None and "\x00" in value:
        raise BadRequest(f"{name}: contains a NUL character")
    if required and not (value or "").strip():
        raise BadRequest(f"{name}: required")
    return value


def limit(request: web.Request, default: int | None = DEFAULT_PAGE_SIZE) -> int | None:
    value = text(request, "limit", max_length=12)
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError:
        raise BadRequest(f"limit: {value!r} is not a number") from None
    if not 1 <= number <= MAX_PAGE_SIZE:
        raise BadRequest(f"limit: must be 1 to {MAX_PAGE_SIZE}")
    return number


def after(request: web.Request, scope: str) -> int | None:
    """The issuance (or alert) number a page cursor points after."""
    value = text(request, "after", max_length=512)
    if not value:
        return None
    (key,) = cursor.decode(scope, value, (int,))
    assert isinstance(key, int)
    return key


def flag(request: web.Request, name: str) -> bool:
    value = (text(request, name, max_length=8) or "").lower()
    if value in ("", "false", "0", "no", "n"):
        return False
    if value in ("true", "1", "yes", "y"):
        return True
    raise BadRequest(f"{name}: {value!r} is not true or false")


def state(request: web.Request) -> AlertState | None:
    value = text(request, "state", max_length=20)
    if not value:
        return None
    try:
        return AlertState(value)
    except ValueError:
        raise BadRequest(f"state: {value!r} is not open, acknowledged or resolved") from None


def sha256_hex(value: str, what: str) -> str:
    digits = value.lower()
    if len(digits) != 64 or any(c not in "0123456789abcdef" for c in digits):
        raise BadRequest(f"{what}: {value[:80]!r} is not 64 hex digits")
    return digits
