"""A CA's report: what the store holds of one issuer (its key), for `ca report` and the web's CA page.

`ca_report(store, "sha256:<hex>" or text of the issuer's name)` -> CaReport; `to_json()` is the
`ca report --json` object of DESIGN.md section 3, counting issuances (a precertificate and its certificate
once): per month by notBefore, by identifier kind, by CA watch flag (lint_error once however many codes),
by lint error code, and by revocation status (unchecked: never asked, or no source answered yet). The
report also carries what the HTML shows beyond that object: the flagged issuances, month by month, with
their revocation and how long after they were logged it came.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ctsentinel.errors import UserError
from ctsentinel.store import FlaggedIssuance, IssuerActivity, IssuerKey, Store
from ctsentinel.watch.ca_policy import CaFlag

_SPKI = re.compile(r"^sha256:([0-9a-fA-F:]{64,95})$")


class IssuerNotFound(UserError):
    """ISSUER names no issuer of a stored certificate, or more than one."""


@dataclass(frozen=True)
class CaReport:
    activity: IssuerActivity

    @property
    def key(self) -> IssuerKey:
        return self.activity.key

    @property
    def issuances(self) -> int:
        return self.activity.issuances

    @property
    def flagged(self) -> tuple[FlaggedIssuance, ...]:
        return self.activity.flagged

    @property
    def findings(self) -> dict[str, int]:
        """Flagged issuances per flag, every flag named (lint_error counts an issuance once)."""
        counts = {flag.value: 0 for flag in CaFlag}
        for item in self.flagged:
            for flag in {f.split(":", 1)[0] for f in item.findings}:
                if flag in counts:
                    counts[flag] += 1
        return counts

    def to_json(self) -> dict[str, Any]:
        """The `ca report --json` object: exactly these keys, in this order."""
        activity = self.activity
        return {
            "issuer": self.key.name,
            "issuer_spki_sha256": self.key.spki_sha256,
            "issuances": activity.issuances,
            "by_month": dict(activity.by_month),
            "identifiers": {"dns": activity.identifiers["dns"], "ip": activity.identifiers["ip"]},
            "findings": self.findings,
            "lint": dict(activity.lint),
            "revocation": {k: activity.revocation[k] for k in ("revoked", "good", "unknown", "unchecked")},
        }


def issuer_of(store: Store, issuer: str) -> IssuerKey:
    """The issuer key ISSUER names: sha256:<hex of its SPKI hash>, or text of its name (one issuer)."""
    text = issuer.strip()
    found = _SPKI.match(text)
    if found:
        digest = found.group(1).replace(":", "").lower()
        if len(digest) != 64:
            raise IssuerNotFound(f"{issuer!r}: sha256: needs 64 hex digits")
        key = store.issuer_key(bytes.fromhex(digest))
        if key is None:
            raise IssuerNotFound(f"no stored certificate was issued by the key sha256:{digest}")
        return key
    if not text:
        raise IssuerNotFound("ISSUER is empty: give sha256:<hex of the CA's key hash> or text of its name")
    keys = store.issuer_keys(text)
    if not keys:
        raise IssuerNotFound(f"no stored certificate has an issuer whose name contains {text!r}")
    if len(keys) > 1:
        names = "; ".join(f"sha256:{k.spki_sha256} ({k.name})" for k in keys[:5])
        more = f" and {len(keys) - 5} more" if len(keys) > 5 else ""
        raise IssuerNotFound(f"{text!r} names {len(keys)} issuers, choose one: {names}{more}")
    return keys[0]


def ca_report(store: Store, issuer: str) -> CaReport:
    """The report on the issuer ISSUER names (IssuerNotFound, one line, if it names none or several)."""
    return CaReport(store.issuer_activity(issuer_of(store, issuer)))


def ca_report_by_key(store: Store, spki_sha256: bytes) -> CaReport | None:
    """The report on the issuer with this key hash; None when no stored certificate has it."""
    key = store.issuer_key(spki_sha256)
    return None if key is None else CaReport(store.issuer_activity(key))
