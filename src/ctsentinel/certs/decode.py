"""Log entry or certificate to CertRecord: the public entry points. None of them ever raises.

Every problem becomes the record's one-line `error`, and whatever could still be read is filled in: a
monitor must report a malformed certificate, not drop it. Hot-path costs are kept down by caching what
repeats across entries (issuer Names, issuer certificates' keys) and by never building a full X.509
object.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from hashlib import sha256

from ctsentinel.certs.der import IndefiniteLength, to_definite
from ctsentinel.certs.issuer import verified_issuer
from ctsentinel.certs.record import CertRecord, MatchView
from ctsentinel.certs.x509 import one_line, walk
from ctsentinel.ct.errors import DecodeError
from ctsentinel.ct.tiles import TileLeaf
from ctsentinel.ct.tls import LogEntryType, PrecertExtraData, decode_extra_data, decode_merkle_tree_leaf

__all__ = ["logged_der", "match_view", "record_from_der", "record_from_entry", "record_from_tile_leaf"]


def record_from_der(der: bytes, *, issuer_spki_sha256: bytes | None = None) -> CertRecord:
    """A DER certificate or precertificate; issuer_spki_sha256 is the issuer's key hash if known."""
    der = bytes(der)
    spki_hex = issuer_spki_sha256.hex() if issuer_spki_sha256 is not None else None
    return _guarded(der, sha256(der).hexdigest(), spki_hex, bare_tbs=False, precert=False)


def record_from_entry(leaf_input: bytes, extra_data: bytes, *, verify_issuer: bool = True) -> CertRecord:
    """A get-entries item: the MerkleTreeLeaf and its extra_data, both as raw bytes.

    A final certificate's issuer is the chain certificate whose key verifies its signature (see
    certs.issuer); verify_issuer=False skips that check and leaves issuer_spki_sha256 None, for a caller
    that decodes everything and keeps little (the monitor decodes again, verifying, what it keeps).
    """
    leaf_input = bytes(leaf_input)
    try:
        entry = decode_merkle_tree_leaf(leaf_input).timestamped_entry
    except DecodeError as exc:
        return _unreadable(leaf_input, f"leaf_input: {exc}")
    except Exception as exc:  # last line of defence: a record, never an exception
        return _unreadable(leaf_input, f"leaf_input: internal error {type(exc).__name__}")
    if entry.entry_type == LogEntryType.PRECERT_ENTRY:
        pre_certificate: bytes | None = None
        problem: str | None = None
        try:
            extra = decode_extra_data(entry.entry_type, bytes(extra_data))
            if isinstance(extra, PrecertExtraData):
                pre_certificate = extra.pre_certificate
        except DecodeError as exc:
            problem = f"extra_data: {exc}"
        except Exception as exc:
            problem = f"extra_data: internal error {type(exc).__name__}"
        return _precert(entry.signed_entry, entry.issuer_key_hash, pre_certificate, problem)
    issuer_spki: str | None = None
    problem = None
    if verify_issuer:
        try:
            chain = decode_extra_data(entry.entry_type, bytes(extra_data))
            candidates = (
                chain.precertificate_chain if isinstance(chain, PrecertExtraData) else chain.certificate_chain
            )
            issuer_spki, problem = _verified_issuer(entry.signed_entry, candidates)
        except DecodeError as exc:
            problem = f"extra_data: {exc}"
        except Exception as exc:
            problem = f"extra_data: internal error {type(exc).__name__}"
    return _with_problem(_x509(entry.signed_entry, issuer_spki), problem)


def match_view(leaf_input: bytes, extra_data: bytes) -> MatchView | None:
    """The names, addresses and issuer of a get-entries item, for matching: record_from_entry's work
    without its fingerprints, the TLS structures read by their lengths. None wherever
    record_from_entry(..., verify_issuer=False) would give a record with an error (or anything is
    unusual): the caller then decodes the entry fully, since a malformed entry is always kept."""
    try:
        parts = _entry_parts(leaf_input, extra_data)
        if parts is None:
            return None
        signed_entry, issuer_key_hash = parts
        precert = issuer_key_hash is not None
        record = walk(signed_entry, "", None, bare_tbs=precert, precert=precert, fingerprints=False)
    except Exception:  # IndefiniteLength (a record with a note), or anything unforeseen: decode fully
        return None
    if record.error is not None:
        return None
    key_hash = issuer_key_hash.hex() if issuer_key_hash is not None else None
    return MatchView(record.dns_names, record.ip_addresses, record.issuer, key_hash, record.precert)


def logged_der(leaf_input: bytes, extra_data: bytes) -> bytes | None:
    """The certificate or precertificate of a well-formed get-entries item, as the log has it (what the
    record's sha256 is of): read by its lengths, without the TLS structures; None for anything else."""
    parts = _entry_parts(leaf_input, extra_data)
    if parts is None:
        return None
    signed_entry, issuer_key_hash = parts
    if issuer_key_hash is None:
        return signed_entry
    # A precertificate: the pre_certificate opens its extra_data, whose lengths _entry_parts checked.
    return extra_data[3 : 3 + int.from_bytes(extra_data[0:3], "big")]


def _entry_parts(leaf: bytes, extra: bytes) -> tuple[bytes, bytes | None] | None:
    """(signed_entry, issuer_key_hash or None) of a MerkleTreeLeaf, with a precertificate's extra_data
    checked to hold its pre_certificate and chain; None wherever ct.tls would refuse either."""
    size = len(leaf)
    # version 0, leaf type 0, 8-byte timestamp, entry type 0 (x509) or 1 (precert)
    if size < 15 or leaf[0] or leaf[1] or leaf[10] or leaf[11] > 1:
        return None
    precert = leaf[11] == 1
    at = 44 if precert else 12  # precert: the 32-byte issuer_key_hash comes first
    if size < at + 3:
        return None
    length = int.from_bytes(leaf[at : at + 3], "big")
    start, end = at + 3, at + 3 + length
    if length < 1 or end + 2 > size or end + 2 + int.from_bytes(leaf[end : end + 2], "big") != size:
        return None
    if not precert:
        return leaf[start:end], None
    # PrecertChainEntry: pre_certificate (1 or more bytes), then a chain of certificates, nothing after.
    size = len(extra)
    if size < 3:
        return None
    length = int.from_bytes(extra[0:3], "big")
    at = 3 + length
    if length < 1 or at + 3 > size or at + 3 + int.from_bytes(extra[at : at + 3], "big") != size:
        return None
    at += 3
    while at < size:
        length = int.from_bytes(extra[at : at + 3], "big")
        if at + 3 > size or length < 1 or at + 3 + length > size:
            return None
        at += 3 + length
    return leaf[start:end], leaf[12:44]


def record_from_tile_leaf(leaf: TileLeaf, issuers: Mapping[bytes, bytes] | None = None) -> CertRecord:
    """A static-ct-api data tile entry; issuers maps SHA-256 fingerprints to issuer certificate DER. A
    final certificate's issuer is verified against the chain's certificates found in `issuers`; without
    `issuers` it is left unknown (None)."""
    try:
        entry = leaf.timestamped_entry
        if entry.entry_type == LogEntryType.PRECERT_ENTRY:
            problem = None if leaf.pre_certificate else "tile leaf: precert_entry without pre_certificate"
            return _precert(entry.signed_entry, entry.issuer_key_hash, leaf.pre_certificate, problem)
        issuer_spki: str | None = None
        problem = None
        if issuers is not None:
            candidates = [issuers[fp] for fp in leaf.chain_fingerprints if fp in issuers]
            issuer_spki, problem = _verified_issuer(entry.signed_entry, candidates)
        return _with_problem(_x509(entry.signed_entry, issuer_spki), problem)
    except Exception as exc:  # last line of defence: a record, never an exception
        try:
            data = leaf.pre_certificate or leaf.timestamped_entry.signed_entry
        except Exception:
            data = b""
        return _unreadable(bytes(data), f"tile leaf: internal error {type(exc).__name__}")


def _x509(der: bytes, issuer_spki: str | None) -> CertRecord:
    return _guarded(der, sha256(der).hexdigest(), issuer_spki, bare_tbs=False, precert=False)


def _precert(
    tbs: bytes, issuer_key_hash: bytes | None, pre_certificate: bytes | None, problem: str | None
) -> CertRecord:
    # The log's TBSCertificate already names the final issuer and lacks the poison, so it, not the
    # precertificate, is read; the fingerprint stays that of the precertificate as logged.
    if pre_certificate is not None:
        sha = sha256(pre_certificate).hexdigest()
    else:
        sha = sha256(tbs).hexdigest()
        problem = f"{problem or 'extra_data: no pre_certificate'}; sha256 is of the TBSCertificate"
    key_hash = issuer_key_hash.hex() if issuer_key_hash is not None else None
    return _with_problem(_guarded(tbs, sha, key_hash, bare_tbs=True, precert=True), problem)


def _guarded(der: bytes, sha: str, issuer_spki: str | None, *, bare_tbs: bool, precert: bool) -> CertRecord:
    try:
        return walk(der, sha, issuer_spki, bare_tbs=bare_tbs, precert=precert)
    except IndefiniteLength as exc:
        # BER indefinite lengths are rare enough to pay for a full re-encoding, then the normal walk.
        note = f"Certificate: BER {exc}, read as re-encoded DER"
        try:
            record = walk(to_definite(der), sha, issuer_spki, bare_tbs=bare_tbs, precert=precert)
        except (DecodeError, IndefiniteLength) as again:
            return _unreadable(der, f"Certificate: {again}", sha=sha, precert=precert)
        return _with_problem(record, note)
    except Exception as exc:  # last line of defence: a record, never an exception
        return _unreadable(der, f"Certificate: internal error {type(exc).__name__}", sha=sha, precert=precert)


def _verified_issuer(leaf_der: bytes, chain: Sequence[bytes]) -> tuple[str | None, str | None]:
    """(hex key hash of the issuer, problem): the chain is only a hint, the signature decides. The
    certificate itself comes last, so a self-signed one (a root logged alone) is its own issuer."""
    found = verified_issuer(leaf_der, [*chain, leaf_der])
    if found is not None:
        return found.spki_sha256, None
    if not chain:
        return None, "issuer certificate: none in the chain, and not self-signed; issuer unknown"
    return None, (
        f"issuer certificate: none of the {len(chain)} in the chain verifies this certificate's signature; "
        "issuer unknown"
    )


def _with_problem(record: CertRecord, problem: str | None) -> CertRecord:
    if problem is not None:
        record.error = one_line([problem] if record.error is None else [problem, record.error])
    return record


def _unreadable(data: bytes, problem: str, *, sha: str | None = None, precert: bool = False) -> CertRecord:
    return CertRecord(
        serial=None,
        issuer=None,
        issuer_spki_sha256=None,
        subject=None,
        subject_spki_sha256=None,
        dns_names=[],
        ip_addresses=[],
        not_before=None,
        not_after=None,
        sha256=sha if sha is not None else sha256(data).hexdigest(),
        tbs_sha256=None,
        precert=precert,
        error=one_line([problem]),
    )
