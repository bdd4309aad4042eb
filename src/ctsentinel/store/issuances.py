"""Reading certificates back grouped by issuance, with the log entries that carried them."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, select

from ctsentinel.certs.record import CertRecord
from ctsentinel.store.rows import record_from_row
from ctsentinel.store.schema import certificates, log_entries, logs

_CHUNK = 500  # bound parameters per IN list, well under every backend's limit


def iso_z(when: datetime | None) -> str | None:
    """ "2026-11-27T06:30:00Z": SQLite hands datetimes back naive; they were written in UTC."""
    if when is None:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def certificates_by_sha(conn: Connection, shas: Sequence[bytes]) -> dict[bytes, CertRecord]:
    stmt = select(certificates).where(certificates.c.sha256.in_(bindparam("shas", expanding=True)))
    out: dict[bytes, CertRecord] = {}
    for part in chunks(list(shas)):
        for row in conn.execute(stmt, {"shas": list(part)}):
            out[row.sha256] = record_from_row(row)
    return out


class Sighting(NamedTuple):
    timestamp: int  # the leaf's, ms: orders sightings across logs
    entry: dict[str, object]  # {log: url, index, type: "precert" | "cert"}, the alert contract's shape


def entries_by_sha(conn: Connection, shas: Sequence[bytes]) -> dict[bytes, list[Sighting]]:
    """Per certificate, the log entries that carried it, earliest leaf timestamp first."""
    stmt = (
        select(
            log_entries.c.cert_sha256,
            logs.c.url,
            log_entries.c.idx,
            log_entries.c.entry_type,
            log_entries.c.timestamp,
        )
        .join(logs, logs.c.id == log_entries.c.log)
        .where(log_entries.c.cert_sha256.in_(bindparam("shas", expanding=True)))
        .order_by(log_entries.c.timestamp, logs.c.url, log_entries.c.idx)
    )
    out: dict[bytes, list[Sighting]] = defaultdict(list)
    for part in chunks(list(shas)):
        for row in conn.execute(stmt, {"shas": list(part)}):
            kind = "precert" if row.entry_type == "precert" else "cert"
            out[row.cert_sha256].append(
                Sighting(row.timestamp, {"log": row.url, "index": row.idx, "type": kind})
            )
    return out


def in_sighting_order(shas: Sequence[bytes], entries: Mapping[bytes, list[Sighting]]) -> list[bytes]:
    """Certificates of one issuance in the order logs saw them (a precertificate before its certificate);
    stable for those never seen in a log."""
    never = 2**63
    return sorted(shas, key=lambda sha: min((s.timestamp for s in entries.get(sha, ())), default=never))


def merged_entries(shas: Sequence[bytes], entries: Mapping[bytes, list[Sighting]]) -> list[dict[str, object]]:
    every = sorted(
        (s for sha in shas for s in entries.get(sha, ())),
        key=lambda s: (s.timestamp, str(s.entry["log"]), int(str(s.entry["index"]))),
    )
    return [s.entry for s in every]


def representative(records: Sequence[CertRecord]) -> CertRecord:
    """The final certificate when one was seen (it is what gets deployed), else the first precertificate."""
    for record in records:
        if not record.precert:
            return record
    return records[0]


def union(lists: Sequence[Sequence[str]]) -> list[str]:
    return list(dict.fromkeys(item for items in lists for item in items))


def issuance_records(conn: Connection, issuances: Sequence[str]) -> list[dict[str, object]]:
    """One CertRecord-shaped dict per issuance, in the order given: the representative's fields, with
    `sha256` the list of every certificate and precertificate of the issuance, `precert` true only when no
    final certificate was seen, `entries` every log entry that carried one of them, and
    `representative_sha256` the certificate whose fields are shown (the final one when seen)."""
    stmt = (
        select(certificates)
        .where(certificates.c.issuance.in_(bindparam("keys", expanding=True)))
        .order_by(certificates.c.first_seen, certificates.c.sha256)
    )
    grouped: dict[str, list[CertRecord]] = defaultdict(list)
    for part in chunks(list(issuances)):
        for row in conn.execute(stmt, {"keys": list(part)}):
            grouped[row.issuance].append(record_from_row(row))
    shas = [bytes.fromhex(r.sha256) for records in grouped.values() for r in records]
    entries = entries_by_sha(conn, shas)
    out: list[dict[str, object]] = []
    for key in issuances:
        found = {bytes.fromhex(r.sha256): r for r in grouped.get(key, ())}
        if not found:
            continue
        order = in_sighting_order(list(found), entries)
        records = [found[sha] for sha in order]
        rep = representative(records)
        result = rep.to_json()
        result["dns_names"] = union([r.dns_names for r in records])
        result["ip_addresses"] = union([r.ip_addresses for r in records])
        result["sha256"] = [r.sha256 for r in records]
        result["precert"] = all(r.precert for r in records)
        result["entries"] = merged_entries(order, entries)
        result["representative_sha256"] = rep.sha256  # whose fields these are: `search --json` prints it
        out.append(result)
    return out
