"""From StoredEntry to table rows: the per-entry work of a commit, kept free of SQL."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from ctsentinel.certs.record import CertRecord
from ctsentinel.store.errors import StoreError
from ctsentinel.store.keys import ip_text_key, issuance_key, reverse_name
from ctsentinel.store.types import StoredEntry

ENTRY_TYPES = ("x509", "precert")


def _hex_or_none(text: str | None) -> bytes | None:
    return bytes.fromhex(text) if text else None


def certificate_row(record: CertRecord, der: bytes | None, now: datetime) -> dict[str, Any]:
    return {
        "sha256": bytes.fromhex(record.sha256),
        "issuance": issuance_key(record),
        "tbs_sha256": _hex_or_none(record.tbs_sha256),
        "serial": record.serial,
        "issuer": record.issuer,
        "issuer_spki_sha256": _hex_or_none(record.issuer_spki_sha256),
        "subject": record.subject,
        "subject_spki_sha256": _hex_or_none(record.subject_spki_sha256),
        "dns_names": json.dumps(record.dns_names),
        "ip_addresses": json.dumps(record.ip_addresses),
        "unicode_names": json.dumps(record.unicode_names),
        "not_before": record.not_before,
        "not_after": record.not_after,
        "precert": record.precert,
        "error": record.error,
        "der": der,
        "first_seen": now,
    }


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
        self.certificates: list[dict[str, Any]] = []
        self.entries: list[dict[str, Any]] = []
        self.names: list[dict[str, Any]] = []
        self.ips: list[dict[str, Any]] = []
        self.with_findings: list[StoredEntry] = []
        seen: set[bytes] = set()
        previous = start - 1
        for entry in entries:
            if not (previous < entry.index < end):
                raise StoreError(
                    f"batch [{start}, {end}): entry index {entry.index} is out of range or out of order"
                )
            if entry.entry_type not in ENTRY_TYPES:
                raise StoreError(f"batch [{start}, {end}): entry {entry.index} has type {entry.entry_type!r}")
            previous = entry.index
            record = entry.record
            sha = bytes.fromhex(record.sha256)
            self.entries.append(
                {
                    "log": log,
                    "idx": entry.index,
                    "cert_sha256": sha,
                    "entry_type": entry.entry_type,
                    "timestamp": entry.timestamp,
                }
            )
            if entry.findings:
                self.with_findings.append(entry)
            if sha in seen:
                continue
            seen.add(sha)
            self.certificates.append(certificate_row(record, entry.cert_der, now))
            self.names.extend(name_rows(sha, record.dns_names))
            self.ips.extend(ip_rows(sha, record.ip_addresses))


def name_rows(sha: bytes, names: Iterable[str]) -> list[dict[str, Any]]:
    return [
        {"name_rev": reverse_name(name), "cert_sha256": sha, "name": name} for name in dict.fromkeys(names)
    ]


def ip_rows(sha: bytes, addresses: Iterable[str]) -> list[dict[str, Any]]:
    keys = {key for key in map(ip_text_key, addresses) if key is not None}
    return [{"ip": key, "cert_sha256": sha} for key in sorted(keys)]
