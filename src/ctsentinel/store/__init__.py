"""Persistence (SQLAlchemy Core): logs, tree heads, positions, deduplicated certificates, alerts, search,
and the outbox of their deliveries."""

from ctsentinel.store.ca_reports import DisallowedCertificate, FlaggedIssuance, IssuerActivity, IssuerKey
from ctsentinel.store.errors import LeaseLost, StoreError
from ctsentinel.store.leases import OWN_BACKLOG, Held, LeaseInfo, Leases, RangeClaim, RangeTarget
from ctsentinel.store.lint import LintDue, LintResult, StoredLint, StoredLintFinding
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
from ctsentinel.store.revocations import (
    RevocationChange,
    RevocationCheck,
    RevocationDue,
    RevocationState,
    SourceWord,
)
from ctsentinel.store.search import Query, QueryError, QueryKind, parse_query
from ctsentinel.store.store import Store
from ctsentinel.store.types import CommitBatch, Fence, LogState, StoredEntry

__all__ = [
    "OWN_BACKLOG",
    "Alert",
    "AlertDelivery",
    "CertificateDetails",
    "CommitBatch",
    "DeliveryStatus",
    "DisallowedCertificate",
    "EntryType",
    "Fence",
    "FlaggedIssuance",
    "Held",
    "IssuerActivity",
    "IssuerKey",
    "LeaseInfo",
    "LeaseLost",
    "Leases",
    "LintDue",
    "LintResult",
    "LogState",
    "MisbehaviourRecord",
    "Outbox",
    "OutboxEvent",
    "PendingDelivery",
    "Query",
    "QueryError",
    "QueryKind",
    "RangeClaim",
    "RangeTarget",
    "RevocationChange",
    "RevocationCheck",
    "RevocationDue",
    "RevocationState",
    "Route",
    "SearchResult",
    "Sighting",
    "SourceWord",
    "Store",
    "StoreError",
    "StoredEntry",
    "StoredLint",
    "StoredLintFinding",
    "StoredTreeHead",
    "Undelivered",
    "alert_payload",
    "parse_query",
]
