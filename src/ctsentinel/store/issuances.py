"""Reading certificates back grouped by issuance, with the log entries that carried them."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

from sqlalchemy import Connection, bindparam, select

from ctsentinel.certs.record import CertRecord
from ctsentinel.store.models import EntryType, SearchResult, Sighting
from ctsentinel.store.rows import record_from_row
from ctsentinel.store.schema import certificates, log_entries, logs

_CHUNK = 500  # bound parameters per IN list, well under every backend's limit


def chunks(items: Sequence[Any]) -> list[Sequence[Any]]:
    return [items[i : i + _CHUNK] for i in range(0, len(items), _CHUNK)]


def certificates_by_sha(conn: Connection, shas: Sequence[bytes]) -> dict[bytes, CertRecord]:
    stmt = select(certificates).where(certificates.c.sha256.in_(bindparam("shas", expanding=True)))
    out: dict[bytes, CertRecord] = {}
    for part in chunks(list(shas)):
        for row in conn.execute(stmt, {"shas": list(part)}):
            out[row.sha256] = record_from_row(row)
    return out


class TimedSighting(NamedTuple):
    timestamp: int  # the leaf's, ms: orders sightings across logs
    sighting: Sighting


def entries_by_sha(conn: Connection, shas: Sequence[bytes]) -> dict[bytes, list[TimedSighting]]:
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
    out: dict[bytes, list[TimedSighting]] = defaultdict(list)
    for part in chunks(list(shas)):
        for row in conn.execute(stmt, {"shas": list(part)}):
            sighting = Sighting(row.url, row.idx, EntryType(row.entry_type))
            out[row.cert_sha256].append(TimedSighting(row.timestamp, sighting))
    return out


def in_sighting_order(shas: Sequence[bytes], entries: Mapping[bytes, list[TimedSighting]]) -> list[bytes]:
    """Certificates of one issuance in the order logs saw them (a precertificate before its certificate);
    stable for those never seen in a log."""
    never = 2**63
    return sorted(shas, key=lambda sha: min((s.timestamp for s in entries.get(sha, ())), default=never))


def merged_entries(
    shas: Sequence[bytes], entries: Mapping[bytes, list[TimedSighting]]
) -> tuple[Sighting, ...]:
    every = sorted(
        (s for sha in shas for s in entries.get(sha, ())),
        key=lambda s: (s.timestamp, s.sighting.log, s.sighting.index),
    )
    return tuple(s.sighting for s in every)


def representative(records: Sequence[CertRecord]) -> CertRecord:
    """The final certificate when one was seen (it is what gets deployed), else the first precertificate."""
    for record in records:
        if not record.precert:
            return record
    return records[0]


def union(lists: Sequence[Sequence[str]]) -> list[str]:
    return list(dict.fromkeys(item for items in lists for item in items))


def issuance_records(conn: Connection, issuances: Sequence[str]) -> list[SearchResult]:
    """One SearchResult per issuance, in the order given."""
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
    out: list[SearchResult] = []
    for key in issuances:
        found = {bytes.fromhex(r.sha256): r for r in grouped.get(key, ())}
        if not found:
            continue
        order = in_sighting_order(list(found), entries)
        records = [found[sha] for sha in order]
        record = dataclasses.replace(
            representative(records),
            dns_names=union([r.dns_names for r in records]),
            ip_addresses=union([r.ip_addresses for r in records]),
            precert=all(r.precert for r in records),
        )
        out.append(SearchResult(record, tuple(r.sha256 for r in records), merged_entries(order, entries)))
    return out
