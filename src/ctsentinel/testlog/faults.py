"""Faults the test log can inject, each a real way CT logs have failed.

Set with `--fault NAME[=VALUE]` at start or at runtime through POST <base>/admin/faults; GET lists them.

  bad-sth-signature          get-sth and checkpoint carry a signature that does not verify
  fork[=INDEX]               split view: from the next tree size on, the log serves an alternative tree in
                             which leaf INDEX (default: the last leaf already published) differs; the forked
                             tree is self-consistent (entries, proofs, tiles) but inconsistent with the heads
                             published before
  bad-entries[=INDEX]        get-entries and data tiles return leaves (INDEX only, or all) whose bytes differ
                             from what the tree commits to, so they do not hash to the published root
  shrink[=N]                 the log serves a freshly signed tree head N entries (default 1) smaller than
                             the one it published before, as after a restore from backup
  rate-limit=N               HTTP 429 with Retry-After: N unless the client waited N seconds since its last
                             served request (a client honouring Retry-After gets through)
  rate-limit-no-retry-after[=N]   the same, without the Retry-After header (N defaults to 1)
  rate-limit-rps=N           at most N requests served in any one second; above that HTTP 429 with
                             Retry-After: 1 (GET /admin/faults counts what was served, refused, and refused
                             again within the second it was told to wait)
  server-error=N             the next N requests get 503, 500, 503, … (counts down, then clears itself)
  slow=SECONDS               every response is delayed by SECONDS
  truncated-json             JSON bodies are cut off halfway (the connection delivers what it has)
  short-entries[=N]          get-entries returns at most N entries (default: half of what it would)
  huge-tree-size             get-sth and the checkpoint say a tree size of 4,301 decimal digits, past what
                             Python converts from text by default (and far past uint64)
  malformed-entry[=INDEX]    the entry logged at INDEX (default: the next one) carries a certificate whose
                             DER is corrupted; the log hashes and signs it as is, so the tree stays valid
  huge-name=OCTETS           the next entry logged carries a certificate with one more dNSName, of OCTETS
                             octets in one-letter labels ("a.a.a…example"); like malformed-entry, the log
                             hashes and signs it as is (the certificate's own signature no longer verifies)
  forged-chain[=INDEX]       every entry's chain (RFC 6962 extra_data, the data tiles' issuer fingerprints)
                             starts with the first issuer certificate of entry INDEX (default 0), which did
                             not sign it: the chain is not covered by the tree, so the log can claim anything

Hostile answers (hostile.py), what a log, or a host a tampered list points at, can do to a monitor:

  trickle-sth=SECONDS        get-sth and checkpoint send their body one byte every SECONDS
  bloated-sth=BYTES          get-sth and checkpoint serve a new badly signed head at every request (a size
                             past the real one, a random root), padded with BYTES bytes (a checkpoint
                             stops at the 1 MiB a signed note may have)
  redirect-host              every log API answers 302 to the same server under another name (localhost),
                             at /internal/secret: an internal service whose 403 body holds a secret
  redirect-file              every log API answers 302 to file:///etc/passwd
  loglist-empty              <base>/log_list.json lists the log as rejected: the default selection is empty
  loglist-nested[=DEPTH]     <base>/log_list.json is DEPTH (default 100,000) nested JSON arrays
  huge-issuer=BYTES          every entry's chain (extra_data, data tiles) starts with a certificate-sized
                             blob of BYTES bytes, served at issuer/<its SHA-256>

The CAs' repository (repository.py) has faults of its own, and the ones above do not touch it:

  crl-unavailable            CRL requests get HTTP 503
  ocsp-unavailable           OCSP requests get HTTP 503
  repository-refused         the repository's port is closed: connections are refused until cleared
  stale-crl                  CRLs are the ones that expired a day ago (thisUpdate and nextUpdate past)
  ocsp-lies                  the OCSP responder says "good" for every serial, those its CRL lists too
  ocsp-unknown               the OCSP responder says "unknown" for every serial it has not revoked

The admin endpoint itself is exempt from every fault.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

FAULT_NAMES = (
    "bad-sth-signature",
    "fork",
    "bad-entries",
    "shrink",
    "rate-limit",
    "rate-limit-no-retry-after",
    "rate-limit-rps",
    "server-error",
    "slow",
    "truncated-json",
    "short-entries",
    "malformed-entry",
    "huge-name",
    "forged-chain",
    "huge-tree-size",
    "trickle-sth",
    "bloated-sth",
    "redirect-host",
    "redirect-file",
    "loglist-empty",
    "loglist-nested",
    "huge-issuer",
    "crl-unavailable",
    "ocsp-unavailable",
    "repository-refused",
    "stale-crl",
    "ocsp-lies",
    "ocsp-unknown",
)
_NEEDS_VALUE = {
    "rate-limit", "rate-limit-rps", "server-error", "slow", "huge-name", "trickle-sth", "bloated-sth",
    "huge-issuer",
}
_NO_VALUE = {
    "bad-sth-signature",
    "huge-tree-size",
    "redirect-host",
    "redirect-file",
    "loglist-empty",
    "truncated-json",
    "crl-unavailable",
    "ocsp-unavailable",
    "repository-refused",
    "stale-crl",
    "ocsp-lies",
    "ocsp-unknown",
}
_FLOAT_VALUE = {"slow", "trickle-sth"}
# One digit past the int-from-text limit Python sets by default (sys.get_int_max_str_digits()).
HUGE_TREE_SIZE = "9" * 4301


class FaultError(ValueError):
    """An unknown fault name or a bad value (HTTP 400 from the admin endpoint, exit 2 at start)."""


def parse_value(name: str, value: object) -> float | int | None:
    """Check a fault's value: None where it takes none, a non-negative number otherwise."""
    if name not in FAULT_NAMES:
        raise FaultError(f"unknown fault {name!r} (known: {', '.join(FAULT_NAMES)})")
    if value is None or value is True or value == "":
        if name in _NEEDS_VALUE:
            raise FaultError(f"fault {name} needs a value: {name}=N")
        return None
    if name in _NO_VALUE:
        raise FaultError(f"fault {name} takes no value")
    try:
        number = float(value) if name in _FLOAT_VALUE else int(str(value), 10)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise FaultError(f"fault {name}: value {value!r} is not a number") from None
    if isinstance(value, bool) or number < 0 or not math.isfinite(number):
        raise FaultError(f"fault {name}: value {value!r} must be a non-negative number")
    return number


def parse_flag(text: str) -> tuple[str, float | int | None]:
    """'NAME' or 'NAME=VALUE' as given to --fault."""
    name, sep, value = text.partition("=")
    return name, parse_value(name, value if sep else None)


@dataclass
class Faults:
    """The active faults and the little state some of them keep (counters, rate-limit clock, fork base)."""

    active: dict[str, float | int | None] = field(default_factory=dict)
    fork_base: int = 0  # tree size published when fork was set: the fork shows from the next size on
    fork_index: int = 0
    last_served: float = 0.0  # monotonic time of the last request the rate limit let through
    window: RateWindow = field(default_factory=lambda: RateWindow(0))  # rate-limit-rps
    bad_heads: int = 0  # bloated-sth: heads served so far (each one a new size)

    def set(self, name: str, value: float | int | None) -> None:
        self.active[name] = value
        if name in ("rate-limit", "rate-limit-no-retry-after"):
            # The very next request is limited, so that setting the fault is observable at once.
            self.last_served = time.monotonic()
        if name == "rate-limit-rps":
            self.window = RateWindow(int(value or 0))

    def clear(self, names: Iterable[str]) -> None:
        for name in names:
            if name not in FAULT_NAMES:
                raise FaultError(f"unknown fault {name!r}")
            self.active.pop(name, None)

    def __contains__(self, name: str) -> bool:
        return name in self.active

    def value(self, name: str) -> float | int | None:
        return self.active.get(name)

    def to_json(self) -> dict[str, object]:
        state: dict[str, object] = dict(self.active)
        if "fork" in self.active:
            state["fork"] = {"index": self.fork_index, "from_size": self.fork_base + 1}
        if "rate-limit-rps" in self.active:
            state["rate-limit-rps"] = self.window.to_json()
        return {"faults": state, "known": list(FAULT_NAMES)}

    # --- per-request decisions -------------------------------------------------------------------------

    def rate_limited(self) -> tuple[bool, int | None]:
        """(refuse?, Retry-After seconds or None) for one request, and start the clock when served."""
        if "rate-limit-rps" in self.active and not self.window.admit(time.monotonic()):
            return True, 1
        for name in ("rate-limit", "rate-limit-no-retry-after"):
            if name in self.active:
                window = self.active[name]
                seconds = 1 if window is None else int(window)
                now = time.monotonic()
                if now - self.last_served < seconds:
                    return True, seconds if name == "rate-limit" else None
                self.last_served = now
        return False, None

    def next_server_error(self) -> int | None:
        """The status to fail this request with, counting server-error down."""
        left = self.active.get("server-error")
        if left is None:
            return None
        remaining = int(left)
        if remaining <= 0:
            self.active.pop("server-error", None)
            return None
        status = 503 if remaining % 2 == 1 else 500
        if remaining == 1:
            self.active.pop("server-error", None)
        else:
            self.active["server-error"] = remaining - 1
        return status


@dataclass
class RateWindow:
    """At most `limit` requests admitted in any one-second window, as a log's per-client limit counts."""

    limit: int
    admitted: list[float] = field(default_factory=list)  # times within the last second, oldest first
    served: int = 0
    refused: int = 0
    refused_early: int = 0  # refused again before the Retry-After second it was given had passed
    last_refusal: float = -math.inf

    def admit(self, now: float) -> bool:
        cutoff = now - 1.0
        drop = 0
        while drop < len(self.admitted) and self.admitted[drop] <= cutoff:
            drop += 1
        del self.admitted[:drop]
        if len(self.admitted) < self.limit:
            self.admitted.append(now)
            self.served += 1
            return True
        # A client that obeys Retry-After: 1 sends nothing for a second after a refusal, except requests
        # already on their way (a tenth of a second is plenty on loopback).
        if 0.1 < now - self.last_refusal < 1.0:
            self.refused_early += 1
        else:
            self.last_refusal = now
        self.refused += 1
        return False

    def to_json(self) -> dict[str, int]:
        return {
            "limit": self.limit,
            "served": self.served,
            "refused": self.refused,
            "refused_early": self.refused_early,
        }


def parse_admin_request(body: object) -> tuple[Mapping[str, object], list[str]]:
    """The admin POST body {"set": {NAME: VALUE|null|true}, "clear": [NAME, …]}."""
    if not isinstance(body, dict):
        raise FaultError('admin body must be a JSON object {"set": {...}, "clear": [...]}')
    unknown = set(body) - {"set", "clear"}
    if unknown:
        raise FaultError(f"admin body: unknown keys {sorted(unknown)}")
    to_set = body.get("set", {})
    to_clear = body.get("clear", [])
    if not isinstance(to_set, dict) or not isinstance(to_clear, list):
        raise FaultError('admin body: "set" must be an object and "clear" a list')
    if not all(isinstance(n, str) for n in to_clear):
        raise FaultError('admin body: "clear" must list fault names')
    return to_set, list(to_clear)
