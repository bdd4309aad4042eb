"""Persistence (SQLAlchemy Core): logs, tree heads, positions, deduplicated certificates, alerts, search,
and the outbox of their deliveries."""

from ctsentinel.store.errors import StoreError
from ctsentinel.store.models import (
    Alert,
    AlertDelivery,
    CertificateDetails,
    DeliveryStatus,
    EntryType,
    MisbehaviourRecord,
    PendingDelivery,
    SearchResult,
    Sighting,
    StoredTreeHead,
    Undelivered,
    alert_payload,
)
from ctsentinel.store.outbox import Outbox, OutboxEvent, Route
from ctsentinel.store.search import Query, QueryError, QueryKind, parse_query
from ctsentinel.store.store import Store
from ctsentinel.store.types import CommitBatch, LogState, StoredEntry

__all__ = [
    "Alert",
    "AlertDelivery",
    "CertificateDetails",
    "CommitBatch",
    "DeliveryStatus",
    "EntryType",
    "LogState",
    "MisbehaviourRecord",
    "Outbox",
    "OutboxEvent",
    "PendingDelivery",
    "Query",
    "QueryError",
    "QueryKind",
    "Route",
    "SearchResult",
    "Sighting",
    "Store",
    "StoreError",
    "StoredEntry",
    "StoredTreeHead",
    "Undelivered",
    "alert_payload",
    "parse_query",
]
