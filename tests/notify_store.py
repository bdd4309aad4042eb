"""A store holding one log, and batches that raise alerts for the real www.google.com certificate of 2015
(and for made-up ones), for the outbox tests and the crash subprocess."""

from __future__ import annotations

import hashlib
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from ctsentinel.ct.merkle import CompactRange, leaf_hash
from ctsentinel.store import CommitBatch, Route, Store, StoredEntry

sys.path.insert(0, str(Path(__file__).parent))
from notify_helpers import GOOGLE_PEM, record_from_der

LOG_URL = "https://ct.example/pilot/"
LOG_ID = hashlib.sha256(b"notify test log").digest()
GOOGLE_DER = x509.load_pem_x509_certificate(GOOGLE_PEM.encode()).public_bytes(Encoding.DER)


@dataclass(frozen=True)
class Key:
    spki_der: bytes = b"0\x00"


@dataclass(frozen=True)
class Info:
    url: str = LOG_URL
    kind: str = "rfc6962"
    log_id: bytes = LOG_ID
    key: Key = field(default_factory=Key)
    description: str = "notify test log"
    operator: str = "tests"
    state: str = "usable"
    mmd: int = 86400


@dataclass(frozen=True)
class Head:
    tree_size: int
    timestamp: int = 1444219838000
    root_hash: bytes = bytes(32)
    raw: bytes = b"{}"


@dataclass(frozen=True)
class Finding:
    watch: str
    reason: str = "unauthorized_issuer"
    severity: str = "critical"
    matched: tuple[str, ...] = ("www.google.com",)
    findings: tuple[str, ...] = ()


def open_store(path: Path) -> Store:
    store = Store.open(f"sqlite:///{path}")
    if store.log_state(LOG_ID) is None:
        store.sync_logs([Info()])
        store.start_log(LOG_ID, 0, CompactRange().to_bytes(), Head(0))
    return store


def fake_record(number: int):  # a distinct certificate per number, same shape as the real one
    record = record_from_der(GOOGLE_DER)
    record.sha256 = hashlib.sha256(b"cert %d" % number).hexdigest()
    record.serial = f"{number:016x}"
    record.dns_names = [f"host{number}.google.com"]
    return record


def commit(
    store: Store,
    findings_per_entry: list[list[Finding]],
    real_at: int | None = 0,
    routes: Sequence[Route] = (),
) -> None:
    """Commit the next batch, its alerts' deliveries queued to `routes`: entry k carries the findings
    findings_per_entry[k]; the entry at log index `real_at` is the real www.google.com certificate, the
    others made-up ones."""
    state = store.log_state(LOG_ID)
    assert state is not None and state.position is not None and state.compact_range is not None
    start = state.position
    compact = CompactRange.from_bytes(state.compact_range)
    entries = []
    for offset, findings in enumerate(findings_per_entry):
        index = start + offset
        compact.append(leaf_hash(b"leaf %d" % index))
        real = index == real_at
        record = record_from_der(GOOGLE_DER) if real else fake_record(index)
        entries.append(
            StoredEntry(index, "x509", 1444219838000 + index, record, GOOGLE_DER, list(findings))  # type: ignore[arg-type]
        )
    end = start + len(findings_per_entry)
    store.commit_batch(CommitBatch(LOG_ID, start, end, compact.to_bytes(), Head(end), entries), routes)
