"""From StoredEntry to table rows: the per-entry work of a commit, kept free of SQL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from hashlib import sha256
from typing import Any

from ctsentinel.certs.decode import record_from_der
from ctsentinel.certs.record import CertRecord
from ctsentinel.store.errors import StoreError
from ctsentinel.store.keys import FITS_CHARACTERS, ip_text_key, issuance_key, name_key, storable_text
from ctsentinel.store.models import EntryType
from ctsentinel.store.types import StoredEntry

# An entry's type as stored: a plain string (drivers need not know the enum); a dict look-up, per entry.
_STORED_TYPE = {entry_type: entry_type.value for entry_type in EntryType}


CERT_COLUMNS = (
    "sha256", "issuance", "tbs_sha256", "serial", "issuer", "issuer_spki_sha256", "subject",
    "subject_spki_sha256", "dns_names", "ip_addresses", "unicode_names", "not_before", "not_after", "precert",
    "error", "der", "first_seen",
)  # fmt: skip
ENTRY_COLUMNS = ("log", "idx", "cert_sha256", "entry_type", "timestamp")
NAME_COLUMNS = ("name_rev", "cert_sha256", "name")
IP_COLUMNS = ("ip", "cert_sha256")
_fromhex = bytes.fromhex
_dumps = json.JSONEncoder(check_circular=False).encode  # lists of str: nothing to recurse into


def certificate_row(
    record: CertRecord, der: bytes | None, now: datetime, sha: bytes | None = None
) -> tuple[Any, ...]:
    """Values for CERT_COLUMNS (`sha`: the record's SHA-256 as bytes, if the caller has it already)."""
    tbs, issuer_spki, subject_spki = record.tbs_sha256, record.issuer_spki_sha256, record.subject_spki_sha256
    return (
        sha if sha is not None else _fromhex(record.sha256),
        issuance_key(record),
        _fromhex(tbs) if tbs else None,
        record.serial,
        record.issuer,
        _fromhex(issuer_spki) if issuer_spki else None,
        record.subject,
        _fromhex(subject_spki) if subject_spki else None,
        _dumps(record.dns_names) if record.dns_names else "[]",
        _dumps(record.ip_addresses) if record.ip_addresses else "[]",
        _dumps(record.unicode_names) if record.unicode_names else "[]",
        record.not_before,
        record.not_after,
        record.precert,
        record.error,
        der,
        now,
    )


def record_from_row(row: Any) -> CertRecord:
    """The CertRecord a certificates row was made from."""

    def hx(value: bytes | None) -> str | None:
        return value.hex() if value is not None else None

    return CertRecord(
        serial=row.serial,
        issuer=row.issuer,
        issuer_spki_sha256=hx(row.issuer_spki_sha256),
        subject=row.subject,
        subject_spki_sha256=hx(row.subject_spki_sha256),
        dns_names=json.loads(row.dns_names),
        ip_addresses=json.loads(row.ip_addresses),
        not_before=row.not_before,
        not_after=row.not_after,
        sha256=row.sha256.hex(),
        tbs_sha256=hx(row.tbs_sha256),
        precert=bool(row.precert),
        error=row.error,
        unicode_names=json.loads(row.unicode_names),
    )


class BatchRows:
    """Rows for one batch, certificates deduplicated by SHA-256 within it (the database dedups across)."""

    def __init__(self, log: int, start: int, end: int, entries: Sequence[StoredEntry], now: datetime) -> None:
        self.certificates: list[tuple[Any, ...]] = []
        self.entries: list[tuple[Any, ...]] = []
        self.names: list[tuple[str, bytes, str]] = []
        self.ips: list[tuple[bytes, bytes]] = []
        self.with_findings: list[StoredEntry] = []
        self.lint: list[bytes] = []  # certificates to queue for the linter
        self.revocation: list[tuple[str, bytes]] = []  # (issuance, certificate) whose status to check
        self.ca_certificates: list[tuple[Any, ...]] = []
        seen: set[bytes] = set()
        previous = start - 1
        names, certificates, log_entries = self.names, self.certificates, self.entries
        for entry in entries:
            if not (previous < entry.index < end):
                raise StoreError(
                    f"batch [{start}, {end}): entry index {entry.index} is out of range or out of order"
                )
            entry_type = _STORED_TYPE.get(entry.entry_type)
            if entry_type is None:
                raise StoreError(
                    f"batch [{start}, {end}): entry {entry.index} has type {str(entry.entry_type)!r}"
                )
            previous = entry.index
            record = entry.record
            sha = _fromhex(record.sha256)
            log_entries.append((log, entry.index, sha, entry_type, entry.timestamp))
            if entry.findings:
                self.with_findings.append(entry)
            if entry.issuer_der is not None:
                self.ca_certificates.append(ca_certificate_row(entry.issuer_der, now))
            if sha in seen:
                continue
            seen.add(sha)
            if entry.lint:
                self.lint.append(sha)
            if entry.revocation:
                self.revocation.append((issuance_key(record), sha))
            certificates.append(certificate_row(record, entry.cert_der, now, sha))
            for name in dict.fromkeys(record.dns_names):
                if len(name) <= FITS_CHARACTERS and "\x00" not in name:
                    names.append((".".join(name.split(".")[::-1]), sha, name))  # keys.name_key, inlined
                else:
                    names.append((name_key(name), sha, storable_text(name)))
            if record.ip_addresses:
                self.ips.extend(ip_rows(sha, record.ip_addresses))


CA_CERTIFICATE_COLUMNS = ("sha256", "spki_sha256", "subject", "der", "first_seen")


def ca_certificate_row(der: bytes, now: datetime) -> tuple[Any, ...]:
    """Values for CA_CERTIFICATE_COLUMNS; one whose key cannot be read is kept under the hash of nothing."""
    found = record_from_der(der)
    spki = _fromhex(found.subject_spki_sha256) if found.subject_spki_sha256 else sha256(b"").digest()
    return (_fromhex(found.sha256), spki, found.subject, der, now)


def ip_rows(sha: bytes, addresses: Iterable[str]) -> list[tuple[bytes, bytes]]:
    keys = {key for key in map(ip_text_key, addresses) if key is not None}
    return [(key, sha) for key in sorted(keys)]
