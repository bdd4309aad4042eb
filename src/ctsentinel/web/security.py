"""Who may do what, and the headers that keep a page from being turned against its reader.

- Reads are open unless `[web] token_for_reads`; every action (acknowledge, resolve) needs the token.
- The API takes `Authorization: Bearer <token>`; a cookie never authorizes an API call, so no other site
  can make a browser act through the API.
- Pages: a login form takes the token and a name and sets a session cookie (HttpOnly, SameSite=Strict)
  signed with a key derived from the token, so no session state is kept and a new token ends every session.
  Each form carries a CSRF token derived from the session (the login form: from a pre-login cookie), and a
  POST whose Origin is another site is refused.
- Every response carries a strict Content-Security-Policy: scripts and styles only from this server, no
  inline script, no framing.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

from aiohttp import web

SESSION_COOKIE = "ctsentinel_session"
LOGIN_COOKIE = "ctsentinel_login"
SESSION_SECONDS = 12 * 3600
MAX_NAME = 64

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; frame-ancestors 'none'; form-action 'self'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "same-origin",  # Origin stays on same-site POSTs (the CSRF check reads it)
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


@dataclass(frozen=True)
class Session:
    who: str
    nonce: str
    expires: int  # Unix time


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class Auth:
    """The token check, sessions and CSRF tokens; the token itself is held here and nowhere else."""

    def __init__(self, token: str | None, *, token_for_reads: bool) -> None:
        self._token = token
        self.token_for_reads = token_for_reads and token is not None
        # Distinct keys for distinct purposes, all derived from the token.
        secret = (token or secrets.token_hex(32)).encode()
        self._session_key = hmac.new(secret, b"ctsentinel session v1", hashlib.sha256).digest()
        self._csrf_key = hmac.new(secret, b"ctsentinel csrf v1", hashlib.sha256).digest()

    @property
    def enabled(self) -> bool:
        return self._token is not None

    def token_matches(self, candidate: str) -> bool:
        if self._token is None:
            return False
        return hmac.compare_digest(candidate.strip().encode(), self._token.encode())

    def bearer(self, request: web.Request) -> bool:
        """True when the request carries `Authorization: Bearer <the token>`."""
        header = request.headers.get("Authorization", "")
        scheme, _, value = header.partition(" ")
        return scheme.lower() == "bearer" and self.token_matches(value)

    # -- sessions ---------------------------------------------------------------------------------------

    def new_session(self, who: str) -> tuple[Session, str]:
        """A session for `who`, and its cookie value."""
        session = Session(
            who=who, nonce=secrets.token_urlsafe(16), expires=int(time.time()) + SESSION_SECONDS
        )
        body = _b64(json.dumps([session.who, session.nonce, session.expires]).encode())
        return session, f"{body}.{self._sign(self._session_key, body)}"

    def session(self, request: web.Request) -> Session | None:
        """The valid session of the request's cookie, if any."""
        if not self.enabled:
            return None
        value = request.cookies.get(SESSION_COOKIE, "")
        body, _, signature = value.partition(".")
        if not body or not hmac.compare_digest(signature, self._sign(self._session_key, body)):
            return None
        try:
            who, nonce, expires = json.loads(_unb64(body))
        except (ValueError, TypeError, binascii.Error):
            return None
        if not (isinstance(who, str) and isinstance(nonce, str) and isinstance(expires, int)):
            return None
        if expires < time.time():
            return None
        return Session(who, nonce, expires)

    def csrf_token(self, binding: str) -> str:
        """The CSRF token of a session nonce (or of a pre-login cookie)."""
        return self._sign(self._csrf_key, binding)

    def csrf_ok(self, binding: str | None, submitted: str | None) -> bool:
        if not binding or not submitted:
            return False
        return hmac.compare_digest(submitted, self.csrf_token(binding))

    @staticmethod
    def _sign(key: bytes, text: str) -> str:
        return _b64(hmac.new(key, text.encode(), hashlib.sha256).digest()[:24])


def same_origin(request: web.Request) -> bool:
    """A POST from a page of this server: its Origin (when the browser sends one) is this host."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    return origin == f"{request.scheme}://{request.host}"


def clean_name(text: str) -> str:
    """The name a person logs in under, as recorded beside their actions: printable, short."""
    name = "".join(ch for ch in text.strip() if ch.isprintable())[:MAX_NAME]
    return name or "anonymous"


async def add_security_headers(_request: web.Request, response: web.StreamResponse) -> None:
    """on_response_prepare: every response, streamed and error ones included."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)
    response.headers.setdefault("Cache-Control", "no-store")
