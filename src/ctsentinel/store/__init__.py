"""Persistence (SQLAlchemy Core): logs, tree heads, positions, deduplicated certificates, alerts, search,
and the outbox of their deliveries."""

from ctsentinel.store.errors import StoreError
from ctsentinel.store.models import AlertDelivery, DeliveryStatus, PendingDelivery, Undelivered
from ctsentinel.store.outbox import Outbox, OutboxEvent, Route
from ctsentinel.store.search import Query, QueryError, parse_query
from ctsentinel.store.store import Store
from ctsentinel.store.types import CommitBatch, LogState, StoredEntry

__all__ = [
    "AlertDelivery",
    "CommitBatch",
    "DeliveryStatus",
    "LogState",
    "Outbox",
    "OutboxEvent",
    "PendingDelivery",
    "Query",
    "QueryError",
    "Route",
    "Store",
    "StoreError",
    "StoredEntry",
    "Undelivered",
    "parse_query",
]
