"""CertRecord: what the monitor keeps of one certificate or precertificate."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True)
class CertRecord:
    """Identifiers and fingerprints of one certificate, all read from attacker-controlled bytes.

    Text fields keep the certificate's raw characters (control characters included): escaping for a
    terminal or a web page is the presenter's job, so a record never hides what a CA actually signed.
    """

    serial: str | None
    issuer: str | None
    issuer_spki_sha256: str | None
    subject: str | None
    subject_spki_sha256: str | None
    dns_names: list[str]
    ip_addresses: list[str]
    not_before: str | None
    not_after: str | None
    sha256: str
    tbs_sha256: str | None
    precert: bool
    error: str | None
    # Display forms only: matching and storage use the A-labels in dns_names.
    unicode_names: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, object]:
        """The CertRecord JSON contract of DESIGN.md section 5: exactly these keys, in this order."""
        return {
            "serial": self.serial,
            "issuer": self.issuer,
            "issuer_spki_sha256": self.issuer_spki_sha256,
            "subject": self.subject,
            "subject_spki_sha256": self.subject_spki_sha256,
            "dns_names": list(self.dns_names),
            "ip_addresses": list(self.ip_addresses),
            "not_before": self.not_before,
            "not_after": self.not_after,
            "sha256": self.sha256,
            "tbs_sha256": self.tbs_sha256,
            "precert": self.precert,
            "error": self.error,
        }


@dataclass(slots=True)
class MatchView:
    """What matching needs of a log entry, read without what only a stored record needs (fingerprints).

    issuer_key_hash is what the entry itself says of its issuer's key: a precertificate entry carries it
    (covered by the log's tree); for a final certificate it is None, since only a signature check against
    the chain's candidates tells (certs.issuer), and that is done for the entries that are kept.
    """

    dns_names: list[str]
    ip_addresses: list[str]
    issuer: str | None  # RFC 4514 text of the issuer Name
    issuer_key_hash: str | None  # hex
    precert: bool
