"""Which certificates the test log's CAs have revoked, when and why: DIR/cas/revoked.json.

Written by populate (a scenario's revocations) and by `POST <base>/admin/revoke` while the log is served,
read by the CA repository for every CRL and OCSP answer. A revocation dated in the future takes effect
then, so a scenario can say when a CA revoked. Revocation is final: revoking a serial again keeps the
first record.

  {"format": "ctsentinel-testlog-revoked/1",
   "revoked": [{"ca": "fina-rdc-2020", "serial": "d3167e…", "revoked_at": "2025-09-03T16:00:00Z",
                "reason": "superseded"}]}          reason: an RFC 5280 CRLReason name, or null
"""

from __future__ import annotations

import contextlib
import datetime
import fcntl
import json
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509

FILE = "revoked.json"  # in DIR/cas
FORMAT = "ctsentinel-testlog-revoked/1"
_LOCK = ".revoked.lock"


class RevocationRecordError(ValueError):
    """A revocation that cannot be recorded: unknown CA, bad serial, reason or time (HTTP 400)."""


@dataclass(frozen=True, slots=True)
class Revocation:
    ca_id: str
    serial: int
    revoked_at: datetime.datetime
    reason: x509.ReasonFlags | None = None

    def to_json(self) -> dict[str, object]:
        return {
            "ca": self.ca_id,
            "serial": _serial_hex(self.serial),
            "revoked_at": self.revoked_at.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "reason": None if self.reason is None else self.reason.value,
        }

    @classmethod
    def from_json(cls, data: object, known_cas: Sequence[str] | None = None) -> Revocation:
        """A revocation as the file and the admin endpoint write it; "revoked_at" may be omitted (now)."""
        if not isinstance(data, Mapping):
            raise RevocationRecordError('a revocation is an object {"ca", "serial", "revoked_at", "reason"}')
        unknown = set(data) - {"ca", "serial", "revoked_at", "reason"}
        if unknown:
            raise RevocationRecordError(f"revocation: unknown keys {sorted(unknown)}")
        ca_id = data.get("ca")
        if not isinstance(ca_id, str) or (known_cas is not None and ca_id not in known_cas):
            raise RevocationRecordError(f"revocation: unknown CA {ca_id!r}")
        serial_text = data.get("serial")
        try:
            serial = int(str(serial_text).replace(":", ""), 16)
        except ValueError:
            serial = 0
        if not isinstance(serial_text, str) or serial <= 0:
            raise RevocationRecordError(f"revocation: serial {serial_text!r} is not positive hex")
        when = data.get("revoked_at")
        try:
            revoked_at = (
                datetime.datetime.now(datetime.UTC).replace(microsecond=0)
                if when is None
                else datetime.datetime.fromisoformat(str(when).replace("Z", "+00:00"))
            )
        except ValueError:
            raise RevocationRecordError(f"revocation: revoked_at {when!r} is not an RFC 3339 time") from None
        if revoked_at.tzinfo is None:
            raise RevocationRecordError(f"revocation: revoked_at {when!r} has no time zone")
        reason_text = data.get("reason")
        try:
            reason = None if reason_text is None else x509.ReasonFlags(reason_text)
        except ValueError:
            names = ", ".join(r.value for r in x509.ReasonFlags if r is not x509.ReasonFlags.remove_from_crl)
            raise RevocationRecordError(f"revocation: reason {reason_text!r} is not one of {names}") from None
        if reason is x509.ReasonFlags.remove_from_crl:
            raise RevocationRecordError("revocation: removeFromCRL belongs to delta CRLs only")
        return cls(ca_id, serial, revoked_at.astimezone(datetime.UTC), reason)


def _serial_hex(serial: int) -> str:
    return serial.to_bytes(max(1, (serial.bit_length() + 7) // 8), "big").hex()


def read(directory: Path) -> list[Revocation]:
    path = directory / "cas" / FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return []
    except (OSError, ValueError) as exc:
        raise RevocationRecordError(f"{path}: unreadable ({exc})") from None
    items = data.get("revoked") if isinstance(data, dict) and data.get("format") == FORMAT else None
    if not isinstance(items, list):
        raise RevocationRecordError(f"{path}: not a {FORMAT} file")
    return [Revocation.from_json(item) for item in items]


@contextlib.contextmanager
def _locked(directory: Path) -> Iterator[None]:
    # populate and a serving process may both record revocations: one read-modify-write at a time.
    (directory / "cas").mkdir(parents=True, exist_ok=True)
    with open(directory / "cas" / _LOCK, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def record(directory: Path, revocations: Sequence[Revocation]) -> list[Revocation]:
    """Add revocations to DIR's list (a serial already revoked by its CA keeps its first record)."""
    with _locked(directory):
        current = read(directory)
        seen = {(r.ca_id, r.serial) for r in current}
        for revocation in revocations:
            if (revocation.ca_id, revocation.serial) not in seen:
                current.append(revocation)
                seen.add((revocation.ca_id, revocation.serial))
        path = directory / "cas" / FILE
        tmp = path.with_suffix(".json.tmp")
        document = {"format": FORMAT, "revoked": [r.to_json() for r in current]}
        tmp.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
        os.replace(tmp, path)
    return current


class RevocationBook:
    """The revocations of DIR as the repository reads them: re-read only when the file changed."""

    def __init__(self, directory: Path) -> None:
        self._path = directory / "cas" / FILE
        self.directory = directory
        self._stamp: tuple[int, int] | None = None
        self._by_ca: dict[str, dict[int, Revocation]] = {}

    def _refresh(self) -> None:
        try:
            status = self._path.stat()
            stamp = (status.st_mtime_ns, status.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp == self._stamp:
            return
        by_ca: dict[str, dict[int, Revocation]] = {}
        for revocation in read(self.directory):
            by_ca.setdefault(revocation.ca_id, {})[revocation.serial] = revocation
        self._by_ca, self._stamp = by_ca, stamp

    def effective(self, ca_id: str, at: datetime.datetime) -> list[Revocation]:
        """The revocations of `ca_id` in force at `at`, oldest first."""
        self._refresh()
        found = [r for r in self._by_ca.get(ca_id, {}).values() if r.revoked_at <= at]
        return sorted(found, key=lambda r: (r.revoked_at, r.serial))

    def lookup(self, ca_id: str, serial: int, at: datetime.datetime) -> Revocation | None:
        self._refresh()
        found = self._by_ca.get(ca_id, {}).get(serial)
        return found if found is not None and found.revoked_at <= at else None
