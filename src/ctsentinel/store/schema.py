"""The tables as the newest migration leaves them (migrations/), in portable SQLAlchemy Core types.

Keys are chosen so that a batch commit needs no read-back: certificates are keyed by their SHA-256, which
the decoder already computed, so log entries, names and addresses reference them directly.
Range-scanned text (reversed names, issuance keys) uses the "C" collation on PostgreSQL: a locale
collation would not sort "." and "/" bytewise, and the scans rely on that.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    UniqueConstraint,
    false,
)

metadata = MetaData()

# Bytewise ordering on every backend (SQLite's default BINARY collation already is).
ScanText = Text().with_variant(Text(collation="C"), "postgresql")

logs = Table(
    "logs",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("log_id", LargeBinary, nullable=False, unique=True),
    Column("url", Text, nullable=False),
    Column("kind", Text, nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("operator", Text, nullable=False, default=""),
    Column("state", Text, nullable=False, default=""),
    Column("public_key", LargeBinary),
    Column("mmd", Integer),
    Column("position", BigInteger),
    Column("start_index", BigInteger),
    Column("compact_range", LargeBinary),
    Column("verified_size", BigInteger),
    Column("verified_root", LargeBinary),
    Column("verified_timestamp", BigInteger),
    Column("latest_size", BigInteger),
    Column("latest_timestamp", BigInteger),
    Column("misbehaving", Boolean, nullable=False, default=False),
    Column("errors", Integer, nullable=False, default=0),
    Column("last_error", Text),
    Column("entries_processed", BigInteger, nullable=False, default=0),
    Column("updated_at", DateTime(timezone=True)),
    Column("request_rate", Float),  # requests/s the log last tolerated (logs/budget.py); null: not yet known
)

tree_heads = Table(
    "tree_heads",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("log", Integer, ForeignKey("logs.id"), nullable=False),
    Column("tree_size", BigInteger, nullable=False),
    Column("timestamp", BigInteger, nullable=False),
    Column("root_hash", LargeBinary, nullable=False),
    Column("raw", LargeBinary, nullable=False),
    Column("verified", Boolean, nullable=False, default=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    UniqueConstraint("log", "tree_size", "root_hash", name="uq_tree_heads_log_size_root"),
)

misbehaviour = Table(
    "misbehaviour",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("log", Integer, ForeignKey("logs.id"), nullable=False, index=True),
    Column("kind", Text, nullable=False),
    Column("detail", Text, nullable=False),
    Column("evidence", Text, nullable=False),  # JSON; bytes as hex
    Column("time", DateTime(timezone=True), nullable=False),
)

certificates = Table(
    "certificates",
    metadata,
    Column("sha256", LargeBinary, primary_key=True),
    # "<serial>:<issuer_spki_sha256 hex>", or "sha256:<hex>" when either is unknown: one issuance (a
    # precertificate and its final certificate share it). Serial first so serial:HEX is a prefix scan.
    Column("issuance", ScanText, nullable=False),
    Column("tbs_sha256", LargeBinary),
    Column("serial", Text),
    Column("issuer", Text),
    Column("issuer_spki_sha256", LargeBinary),
    Column("subject", Text),
    Column("subject_spki_sha256", LargeBinary),
    Column("dns_names", Text, nullable=False),  # JSON lists, as in the record
    Column("ip_addresses", Text, nullable=False),
    Column("unicode_names", Text, nullable=False),
    Column("not_before", Text),  # ISO 8601 "…Z" exactly as decoded (sorts as time)
    Column("not_after", Text),
    Column("precert", Boolean, nullable=False),
    Column("error", Text),
    Column("der", LargeBinary),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Index("ix_certificates_issuance", "issuance"),
    Index("ix_certificates_tbs_sha256", "tbs_sha256"),
    Index("ix_certificates_issuer", "issuer_spki_sha256"),  # one CA's report and disallow list
)

log_entries = Table(
    "log_entries",
    metadata,
    Column("log", Integer, ForeignKey("logs.id"), nullable=False),
    Column("idx", BigInteger, nullable=False),
    Column("cert_sha256", LargeBinary, ForeignKey("certificates.sha256"), nullable=False),
    Column("entry_type", Text, nullable=False),  # "x509" | "precert"
    Column("timestamp", BigInteger, nullable=False),
    PrimaryKeyConstraint("log", "idx"),
    Index("ix_log_entries_cert", "cert_sha256"),
    sqlite_with_rowid=False,
)

cert_names = Table(
    "cert_names",
    metadata,
    Column(
        "name_rev", ScanText, nullable=False
    ),  # "com.example.www": a domain and its subdomains are adjacent
    Column("cert_sha256", LargeBinary, ForeignKey("certificates.sha256"), nullable=False),
    Column("name", Text, nullable=False),
    PrimaryKeyConstraint("name_rev", "cert_sha256"),
    sqlite_with_rowid=False,
)

cert_ips = Table(
    "cert_ips",
    metadata,
    Column("ip", LargeBinary, nullable=False),  # 16 bytes; IPv4 mapped into ::ffff:0:0/96
    Column("cert_sha256", LargeBinary, ForeignKey("certificates.sha256"), nullable=False),
    PrimaryKeyConstraint("ip", "cert_sha256"),
    sqlite_with_rowid=False,
)

# One issuance per watch; later sightings (the final certificate, the same one in another log) attach to it
# through findings.alert.
alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("watch", Text, nullable=False),
    Column("issuance", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("severity", Text, nullable=False),
    Column("matched", Text, nullable=False),  # JSON list
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Column("revoked", Text),  # JSON; null until checked (a copy of its issuance's revocations row)
    Column("findings", Text, nullable=False, server_default="[]"),  # JSON list: the ca_policy flags
    # open | acknowledged | resolved; alert_actions keeps who moved it there, when and why.
    Column("state", Text, nullable=False, server_default="open"),
    UniqueConstraint("watch", "issuance", name="uq_alerts_watch_issuance"),
)

findings = Table(
    "findings",
    metadata,
    Column("cert_sha256", LargeBinary, ForeignKey("certificates.sha256"), nullable=False),
    Column("watch", Text, nullable=False),
    Column("reason", Text, nullable=False),
    Column("severity", Text, nullable=False),  # "none" for authorized sightings: stored, not alerted
    Column("matched", Text, nullable=False),  # JSON list
    Column("alert", Integer, ForeignKey("alerts.id")),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    PrimaryKeyConstraint("cert_sha256", "watch"),
    Index("ix_findings_alert", "alert"),
)

# The outbox (outbox.py): one row per (event, channel), written in the transaction that creates the alert.
deliveries = Table(
    "deliveries",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("alert", Integer, ForeignKey("alerts.id")),  # null for log-health events
    Column("channel", Text, nullable=False),  # the channel's key: its `name`, or its kind and destination
    Column("idempotency_key", Text, nullable=False, unique=True),
    Column("payload", Text, nullable=False),  # the event's JSON, private fields included
    Column("status", Text, nullable=False),  # pending | delivered | failed (for good)
    Column("attempts", Integer, nullable=False, default=0),  # failed attempts
    Column("next_attempt_at", DateTime(timezone=True), nullable=False),
    Column("last_error", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("delivered_at", DateTime(timezone=True)),
    Index("ix_deliveries_due", "status", "next_attempt_at"),
    Index("ix_deliveries_alert", "alert"),
)

# --- CA oversight -----------------------------------------------------------------------------------------

# The first certificate of the chain a log served with a watched or alerted certificate: a candidate issuer
# (extra_data is a hint), used once its key is seen to verify the certificate (revocation, disallow lists).
ca_certificates = Table(
    "ca_certificates",
    metadata,
    Column("sha256", LargeBinary, primary_key=True),
    Column("spki_sha256", LargeBinary, nullable=False),
    Column("subject", Text),
    Column("der", LargeBinary, nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Index("ix_ca_certificates_spki", "spki_sha256"),
)

# Certificates a CA watch wants linted, until the linter has run (beside the decoding, when there is time).
lint_queue = Table(
    "lint_queue",
    metadata,
    Column("cert_sha256", LargeBinary, ForeignKey("certificates.sha256"), primary_key=True),
    Column("queued_at", DateTime(timezone=True), nullable=False),
)

# One row per linted certificate (the profile pkilint chose), its findings below in pkilint's order.
lint_reports = Table(
    "lint_reports",
    metadata,
    Column("cert_sha256", LargeBinary, ForeignKey("certificates.sha256"), primary_key=True),
    Column("profile", Text, nullable=False),
    Column("linted_at", DateTime(timezone=True), nullable=False),
)

lint_findings = Table(
    "lint_findings",
    metadata,
    Column("cert_sha256", LargeBinary, ForeignKey("certificates.sha256"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("severity", Text, nullable=False),  # fatal | error | warning | notice
    Column("code", Text, nullable=False),
    Column("message", Text),
    Column("node", Text, nullable=False),  # where in the certificate, as pkilint names it
    PrimaryKeyConstraint("cert_sha256", "position"),
)

# Revocation per issuance (a precertificate and its certificate share issuer and serial, which is what CRLs
# and OCSP answer for): the combined status with when it was learned, each source's last word, and when to
# ask again (null: never, e.g. once revoked).
revocations = Table(
    "revocations",
    metadata,
    Column("issuance", Text, primary_key=True),
    Column("cert_sha256", LargeBinary, ForeignKey("certificates.sha256"), nullable=False),
    Column("status", Text),  # good | revoked | unknown; null until a source has answered
    Column("reason", Text),
    Column("revoked_at", DateTime(timezone=True)),
    Column("source", Text),  # crl | ocsp
    Column("checked_at", DateTime(timezone=True)),  # when `status` was learned (the last check)
    Column("changed_at", DateTime(timezone=True)),  # when `status` last changed
    Column("crl", Text),  # JSON: the CRL's last word on it (an answer, or why there is none)
    Column("ocsp", Text),  # JSON: the OCSP responder's
    Column("contradiction", Boolean, nullable=False, server_default=false()),
    Column("failures", Integer, nullable=False, server_default="0"),  # checks in a row that learned nothing
    Column("next_check_at", DateTime(timezone=True)),
    Column("requested_at", DateTime(timezone=True), nullable=False),
    Index("ix_revocations_due", "next_check_at"),
)

# Leases (leases.py): which process works a log, and which works each range of a long backlog. `token`
# grows by one at every claim; a commit carries the token it was claimed with and is refused once a
# successor holds a larger one (fencing), so a process paused past its lease can never commit.
log_leases = Table(
    "log_leases",
    metadata,
    Column("log", Integer, ForeignKey("logs.id"), primary_key=True, autoincrement=False),
    Column("holder", Text),  # "host:pid:nonce" of the process working the log; null when free
    Column("token", BigInteger, nullable=False, default=0),
    Column("expires_at", DateTime(timezone=True)),
    Column("claimed_at", DateTime(timezone=True)),
)

# Ranges of a log proven independently against one verified head (`target_*`): the log's own backlog
# (watch = "") or a rescan for one watch added later (`backfill --watch`). `compact_range` is the range at
# `position`; the log's position advances over the contiguous prefix of committed entries.
log_ranges = Table(
    "log_ranges",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("log", Integer, ForeignKey("logs.id"), nullable=False),
    Column("watch", Text, nullable=False, default=""),
    Column("start", BigInteger, nullable=False),
    Column("end", BigInteger, nullable=False),
    Column("position", BigInteger, nullable=False),
    Column("compact_range", LargeBinary),
    Column("target_size", BigInteger, nullable=False),
    Column("target_timestamp", BigInteger, nullable=False),
    Column("target_root", LargeBinary, nullable=False),
    Column("holder", Text),
    Column("token", BigInteger, nullable=False, default=0),
    Column("expires_at", DateTime(timezone=True)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("log", "watch", "start", name="uq_log_ranges_log_watch_start"),
)

# Every issuance once, numbered in the order the store first saw one of its certificates: the ids the web
# search, the crt.sh and Cert Spotter APIs hand out and page by (Cert Spotter's `after=ID` means "discovered
# later"). Issuer, validity and how many names and addresses it has are copied here from its first
# certificate, so that a CA's report and the unexpired filter read one narrow table.
issuances = Table(
    "issuances",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True),
    Column("issuance", ScanText, nullable=False, unique=True),  # certificates.issuance
    Column("issuer_spki_sha256", LargeBinary),
    Column("not_before", Text),
    Column("not_after", Text),
    Column("dns_names", Integer, nullable=False),
    Column("ip_addresses", Integer, nullable=False),
    Column("first_seen", DateTime(timezone=True), nullable=False),
    Index("ix_issuances_issuer", "issuer_spki_sha256", "id"),
)

# Every issuing key seen, with the name it was first seen under: `issuer:TEXT` searches this small table
# instead of every certificate, and the CA pages list it.
issuers = Table(
    "issuers",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("spki_sha256", LargeBinary, nullable=False, unique=True),
    Column("name", Text),
    Column("first_seen", DateTime(timezone=True), nullable=False),
)

# What people did with an alert: each acknowledge or resolve, with its note, who and when.
alert_actions = Table(
    "alert_actions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("alert", Integer, ForeignKey("alerts.id"), nullable=False, index=True),
    Column("state", Text, nullable=False),  # the state the alert moved to
    Column("note", Text, nullable=False),
    Column("actor", Text, nullable=False),
    Column("at", DateTime(timezone=True), nullable=False),
)
