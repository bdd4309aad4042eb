"""Opaque page cursors: the position after the last row of a page, bound to the query that made it.

A cursor is base64url text of a JSON list: a short digest of the query's scope, then the key of the last
row. A cursor from another query (or from nowhere) is refused with a one-line error rather than silently
returning the wrong page.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Sequence

from ctsentinel.errors import UserError

Key = tuple[int | str, ...]


class CursorError(UserError):
    """An `after` that is not a cursor this server handed out for this query."""


def _scope_digest(scope: str) -> str:
    return hashlib.sha256(scope.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def encode(scope: str, key: Sequence[int | str]) -> str:
    body = json.dumps([_scope_digest(scope), *key], separators=(",", ":"))
    return base64.urlsafe_b64encode(body.encode()).decode().rstrip("=")


def decode(scope: str, text: str, shape: Sequence[type]) -> Key:
    """The key of a cursor from encode(scope, …); `shape` is the type of each key part."""
    try:
        if len(text) > 512:
            raise ValueError("too long")
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        parts = json.loads(raw)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise CursorError("after: not a cursor this server handed out") from None
    if not isinstance(parts, list) or not parts or parts[0] != _scope_digest(scope):
        raise CursorError("after: this cursor belongs to another query")
    key = parts[1:]
    if len(key) != len(shape) or not all(
        isinstance(part, kind) and not isinstance(part, bool) for part, kind in zip(key, shape, strict=True)
    ):
        raise CursorError("after: not a cursor this server handed out")
    return tuple(key)
