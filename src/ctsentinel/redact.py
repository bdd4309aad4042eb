"""URLs as messages may show them: scheme, host and port only.

A URL can carry a secret anywhere after its host: Slack-style webhooks keep their token in the path,
others in the query, and any URL may hold a user and password. Messages end up in places an operator
shares (terminals, logs, the deliveries table, `alerts` output), so every URL in one is shown as
scheme://host[:port]/… , which still says where a request went.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

# A URL in free text: a scheme, "://", then everything up to white space or a quote that ends it.
_URL_IN_TEXT = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s'\"<>`]+")


def redact_url(url: str) -> str:
    """scheme://host[:port]/… , or scheme://host[:port]/ when nothing follows the host; "…" for text that
    is not a URL with a host."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # a bad port, an unbalanced "[": show nothing of what follows the scheme
        return f"{url.split(':', 1)[0]}://…" if "://" in url else "…"
    if not parts.scheme or not parts.netloc:
        return "…"
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    authority = host if port is None else f"{host}:{port}"
    rest = parts.path not in ("", "/") or parts.query or parts.fragment
    return f"{parts.scheme}://{authority}/{'…' if rest else ''}"


def redact_urls(text: str) -> str:
    """`text` with every URL in it redacted (error text of a library may quote the URL it was given)."""
    if "://" not in text:
        return text
    return _URL_IN_TEXT.sub(_redact_match, text)


def _redact_match(match: re.Match[str]) -> str:
    # Punctuation that ends a sentence or a clause ("…/hook: HTTP 500") is not part of the URL.
    url = match.group(0)
    core = url.rstrip(".,:;!?)")
    return redact_url(core) + url[len(core) :]
