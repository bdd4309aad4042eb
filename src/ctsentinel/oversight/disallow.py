"""Disallow lists: the certificates to distrust (every one of a CA, a watch's alerts, chosen alerts), in the
forms distrust mechanisms take.

- sha256 / sha1: one fingerprint a line. SHA-1 thumbprints are what Windows' disallowed certificate store
  is keyed by; SHA-256 what most other tools use.
- csv / json: per certificate or precertificate (DESIGN.md section 3's columns), issuer and serial being
  what revocation lists such as Mozilla's OneCRL key on; a precertificate-only issuance is still listed.
- pem: the certificates themselves.

With `include_issuer`, the CA certificate whose key verifies the listed certificates is added (what the
logs served beside them is only a hint, so each candidate is checked against them: certs.issuer).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import json
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ctsentinel.certs.decode import record_from_der
from ctsentinel.certs.issuer import verified_issuer
from ctsentinel.errors import UserError
from ctsentinel.oversight.report import issuer_of
from ctsentinel.store import DisallowedCertificate, Store

CSV_COLUMNS = (
    "sha256",
    "sha1",
    "serial",
    "issuer",
    "issuer_spki_sha256",
    "not_before",
    "not_after",
    "precert",
)


class DisallowFormat(StrEnum):
    SHA256 = "sha256"
    SHA1 = "sha1"
    CSV = "csv"
    JSON = "json"
    PEM = "pem"


@dataclass(frozen=True)
class Disallowed:
    """One certificate or precertificate to distrust (or, with include_issuer, its CA's certificate)."""

    sha256: str
    sha1: str | None  # None when only its record was kept, not its bytes
    serial: str | None
    issuer: str | None
    issuer_spki_sha256: str | None
    not_before: str | None
    not_after: str | None
    precert: bool
    der: bytes | None

    def to_json(self) -> dict[str, Any]:
        return {column: getattr(self, column) for column in CSV_COLUMNS}

    @classmethod
    def of(cls, stored: DisallowedCertificate) -> Disallowed:
        sha1 = None if stored.der is None else hashlib.sha1(stored.der).hexdigest()
        return cls(
            stored.sha256, sha1, stored.serial, stored.issuer, stored.issuer_spki_sha256, stored.not_before,
            stored.not_after, stored.precert, stored.der,
        )  # fmt: skip


@dataclass(frozen=True)
class DisallowList:
    entries: tuple[Disallowed, ...]
    problems: tuple[str, ...] = ()  # e.g. no CA certificate at hand verifies some of them

    def render(self, form: DisallowFormat) -> str:
        if form is DisallowFormat.SHA256:
            return "".join(f"{e.sha256}\n" for e in self.entries)
        if form is DisallowFormat.SHA1:
            return "".join(f"{e.sha1}\n" for e in self.entries if e.sha1)
        if form is DisallowFormat.JSON:
            return json.dumps([e.to_json() for e in self.entries], indent=2) + "\n"
        if form is DisallowFormat.PEM:
            return "".join(_pem(e.der) for e in self.entries if e.der is not None)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for e in self.entries:
            row = e.to_json()
            writer.writerow(["" if row[c] is None else str(row[c]).lower() if c == "precert" else row[c]
                             for c in CSV_COLUMNS])  # fmt: skip
        return out.getvalue()


def _pem(der: bytes) -> str:
    body = "\n".join(textwrap.wrap(base64.b64encode(der).decode("ascii"), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def disallow_list(
    store: Store,
    *,
    issuer: str | None = None,
    watch: str | None = None,
    alerts: Sequence[int] = (),
    include_issuer: bool = False,
) -> DisallowList:
    """The certificates of one issuer (ISSUER as `ca report` takes it), of a watch's alerts, or of the
    alerts with these ids; UserError (one line) when there is nothing by that name."""
    if issuer is not None:
        key = issuer_of(store, issuer)
        stored = store.disallowed(spki_sha256=bytes.fromhex(key.spki_sha256))
    elif watch is not None:
        issuances = store.alert_issuances(watch=watch)
        if not issuances:
            raise UserError(f"watch {watch!r} has no alerts")
        stored = store.disallowed(issuances=issuances)
    else:
        unknown = sorted(set(alerts) - store.known_alert_ids(alerts))
        if unknown:
            raise UserError(f"no alert #{', #'.join(str(i) for i in unknown)}")
        stored = store.disallowed(issuances=store.alert_issuances(ids=alerts))
    entries = [Disallowed.of(s) for s in stored]
    problems: list[str] = []
    if include_issuer:
        entries, problems = _with_issuers(store, entries)
    return DisallowList(tuple(entries), tuple(problems))


def _with_issuers(store: Store, entries: list[Disallowed]) -> tuple[list[Disallowed], list[str]]:
    """The entries, each issuer key's CA certificate after its own: the one whose key verifies them."""
    by_key: dict[str, list[Disallowed]] = {}
    for entry in entries:
        if entry.issuer_spki_sha256 is not None:
            by_key.setdefault(entry.issuer_spki_sha256, []).append(entry)
    added: list[Disallowed] = []
    problems = []
    for spki, leaves in by_key.items():
        candidates = store.ca_certificates(bytes.fromhex(spki))
        found = next(
            (f for leaf in leaves if leaf.der is not None and (f := verified_issuer(leaf.der, candidates))),
            None,
        )
        if found is None:
            name = leaves[0].issuer or spki
            problems.append(f"no CA certificate at hand has the key that verifies the certificates of {name}")
            continue
        record = record_from_der(found.der)
        added.append(
            Disallowed(
                record.sha256,
                hashlib.sha1(found.der).hexdigest(),
                record.serial,
                record.issuer,
                None,
                record.not_before,
                record.not_after,
                False,
                found.der,
            )
        )
    return [*entries, *added], problems
