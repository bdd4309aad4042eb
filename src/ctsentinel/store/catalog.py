"""The issuance and issuer catalogue, written with each batch: one numbered row per issuance, one row per
issuing key. Rows already there are left as they are (the first sighting numbers the issuance)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from ctsentinel.store.dialect import bulk_insert_tuples
from ctsentinel.store.keys import issuance_key
from ctsentinel.store.schema import issuances, issuers
from ctsentinel.store.types import StoredEntry

ISSUANCE_COLUMNS = (
    "issuance", "issuer_spki_sha256", "not_before", "not_after", "dns_names", "ip_addresses", "first_seen",
)  # fmt: skip
ISSUER_COLUMNS = ("spki_sha256", "name", "first_seen")


def add_issuances(conn: Connection, entries: Sequence[StoredEntry], now: datetime) -> None:
    new: dict[str, tuple[Any, ...]] = {}
    keys: dict[bytes, tuple[Any, ...]] = {}
    for entry in entries:
        record = entry.record
        key = issuance_key(record)
        if key in new:
            continue
        spki = bytes.fromhex(record.issuer_spki_sha256) if record.issuer_spki_sha256 else None
        names, addresses = len(record.dns_names), len(record.ip_addresses)
        new[key] = (key, spki, record.not_before, record.not_after, names, addresses, now)
        if spki is not None and spki not in keys:
            keys[spki] = (spki, record.issuer, now)
    # In key order: two processes adding overlapping issuances take their row locks in the same order.
    bulk_insert_tuples(conn, issuances, ISSUANCE_COLUMNS, [new[k] for k in sorted(new)], ["issuance"])
    bulk_insert_tuples(conn, issuers, ISSUER_COLUMNS, [keys[k] for k in sorted(keys)], ["spki_sha256"])
