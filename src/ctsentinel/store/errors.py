"""The store's one-line errors."""

from __future__ import annotations

from ctsentinel.errors import UserError


class StoreError(UserError):
    """A database problem or a misuse of the store (a batch at the wrong position), in one line."""


class LeaseLost(StoreError):
    """A commit or renewal under a lease that another process now holds (or that was given back): nothing
    was written, and the work under that lease is to be abandoned."""
