"""The store's one-line errors."""

from __future__ import annotations

from ctsentinel.errors import UserError


class StoreError(UserError):
    """A database problem or a misuse of the store (a batch at the wrong position), in one line."""
