"""What the monitor hands the store, and the state of a log it reads back.

The store accepts any object with the attributes of logs.LogInfo, logs.TreeHead and watch.Finding
(structural protocols), so it depends on neither package and they can evolve independently.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from ctsentinel.certs.record import CertRecord
from ctsentinel.store.models import EntryType
from ctsentinel.watch.severity import Severity


class LogKeyLike(Protocol):
    @property
    def spki_der(self) -> bytes: ...


class LogInfoLike(Protocol):
    """What sync_logs reads of a logs.loglist.LogInfo."""

    @property
    def url(self) -> str: ...
    @property
    def kind(self) -> str: ...
    @property
    def log_id(self) -> bytes: ...
    @property
    def key(self) -> LogKeyLike: ...
    @property
    def description(self) -> str: ...
    @property
    def operator(self) -> str: ...
    @property
    def state(self) -> str: ...
    @property
    def mmd(self) -> int: ...


# The most of a tree head's raw body that is kept (in tree_heads, and as misbehaviour evidence). A real
# get-sth answer or checkpoint is a few hundred bytes, a checkpoint with many cosignatures a few KB; what a
# log adds beyond (padding, or a body built to fill the disk) is cut, its size and SHA-256 kept instead.
RAW_HEAD_LIMIT = 16 << 10


class TreeHeadLike(Protocol):
    """What the store keeps of a logs.client.TreeHead."""

    @property
    def tree_size(self) -> int: ...
    @property
    def timestamp(self) -> int: ...
    @property
    def root_hash(self) -> bytes: ...
    @property
    def raw(self) -> bytes: ...


class FindingLike(Protocol):
    """What the store keeps of a watch.Finding."""

    @property
    def watch(self) -> str: ...
    @property
    def reason(self) -> str: ...
    @property
    def severity(self) -> Severity: ...
    @property
    def matched(self) -> Sequence[str]: ...
    @property
    def findings(self) -> Sequence[str]: ...  # a ca_policy finding's flags; empty for the others


@dataclass
class LogState:
    log_id: bytes
    url: str
    kind: str
    description: str
    state: str
    position: int | None  # next entry index to process; None = not started
    start_index: int | None
    compact_range: bytes | None  # CompactRange.to_bytes() at `position`
    verified_size: int | None
    verified_root: bytes | None
    verified_timestamp: int | None
    misbehaving: bool
    errors: int
    last_error: str | None
    entries_processed: int
    updated_at: datetime | None
    # Beyond the documented interface (defaults keep the documented constructor working): what `logs`
    # shows besides the verified point.
    operator: str = ""
    latest_size: int | None = None  # the largest tree head observed, verified or not
    latest_timestamp: int | None = None  # its timestamp, ms
    mmd: int | None = None
    request_rate: float | None = None  # requests/s the log last tolerated; None: not known yet


@dataclass
class StoredEntry:
    index: int
    entry_type: EntryType
    timestamp: int  # the leaf's timestamp, ms
    record: CertRecord
    cert_der: bytes | None  # kept only for stored (matching) certificates
    findings: list[FindingLike] = field(default_factory=list)
    lint: bool = False  # queue it for the linter (a CA watch asks)
    revocation: bool = False  # check its revocation status even if no alert asks
    issuer_der: bytes | None = None  # a candidate issuer certificate (the first of the chain the log served)


@dataclass(frozen=True)
class Fence:
    """The lease a batch was worked under: the commit is refused unless `holder` still holds it with this
    `token` (a successor's claim raised the token). `range_id` names a range lease; None the log's lease."""

    holder: str
    token: int
    range_id: int | None = None


@dataclass
class CommitBatch:
    log_id: bytes
    start: int  # entries [start, end) were processed and proven
    end: int
    compact_range: bytes  # CompactRange.to_bytes() at `end`
    head: TreeHeadLike  # the verified head that proved the range
    entries: Sequence[StoredEntry]  # only those that matter; indices within [start, end)
    fence: Fence | None = None  # the lease it was worked under; None: a process that holds no leases
