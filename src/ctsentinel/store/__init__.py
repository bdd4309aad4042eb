"""Persistence (SQLAlchemy Core): logs, tree heads, positions, deduplicated certificates, alerts, search."""

from ctsentinel.store.errors import StoreError
from ctsentinel.store.search import Query, QueryError, parse_query
from ctsentinel.store.store import Store
from ctsentinel.store.types import CommitBatch, LogState, StoredEntry

__all__ = [
    "CommitBatch",
    "LogState",
    "Query",
    "QueryError",
    "Store",
    "StoreError",
    "StoredEntry",
    "parse_query",
]
