"""`ctsentinel inspect WHAT`: check and decode CT data by hand, in the spirit of ct-go's ctclient.

Each check prints a JSON report on stdout. When a check fails, the report still prints (so the evidence is
visible) and one line on stderr names the first failure; the exit code is then 1. Unreadable input is a
UserError (one line, exit 1) and prints no report.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import functools
import gzip
import json
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.utils import CryptographyDeprecationWarning

from ctsentinel.certs.decode import record_from_der, record_from_entry, record_from_tile_leaf
from ctsentinel.certs.der import OCTET_STRING, IndefiniteLength, read_tlv
from ctsentinel.ct import merkle
from ctsentinel.ct.checkpoint import open_checkpoint, parse_checkpoint_text
from ctsentinel.ct.errors import CTError, DecodeError, SignatureError
from ctsentinel.ct.note import Ed25519NoteVerifier, Note, parse_note, verify_note
from ctsentinel.ct.signatures import LogKey, verify_sct, verify_sth
from ctsentinel.ct.sth import (
    SignedTreeHead,
    parse_consistency_response,
    parse_entry_and_proof_response,
    parse_get_entries_response,
    parse_proof_by_hash_response,
)
from ctsentinel.ct.tiles import decode_data_tile, decode_hash_tile
from ctsentinel.ct.tls import LogEntryType, SignedCertificateTimestamp, decode_sct_list
from ctsentinel.errors import UserError
from ctsentinel.terminal import safe_json
from ctsentinel.timefmt import rfc3339_ms

_SCT_LIST_OID = x509.ObjectIdentifier("1.3.6.1.4.1.11129.2.4.2")


class Report:
    """A JSON report of named checks; the first failed check becomes the one-line reason."""

    def __init__(self) -> None:
        self.fields: dict[str, Any] = {}
        self.failures: list[str] = []

    def check(self, name: str, action: Callable[[], object], failure: str) -> bool:
        try:
            action()
        except CTError as exc:
            self.fields[name] = f"invalid: {exc}"
            self.failures.append(f"{failure}: {exc}")
            return False
        self.fields[name] = "valid"
        return True

    def finish(self) -> int:
        print(json.dumps(self.fields, indent=2))
        if self.failures:
            print(f"ctsentinel: {self.failures[0]}", file=sys.stderr)
            return 1
        return 0


def _read(path: str) -> bytes:
    try:
        return Path(path).read_bytes()
    except OSError as exc:
        raise UserError(f"cannot read {path}: {exc.strerror or exc}") from exc


def _read_json(path: str) -> Any:
    try:
        return json.loads(_read(path))
    except (ValueError, UnicodeDecodeError) as exc:
        raise UserError(f"{path} is not JSON: {exc}") from exc


def _decoded(path: str, what: str, parse: Callable[[Any], Any]) -> Any:
    try:
        return parse(_read_json(path))
    except CTError as exc:
        raise UserError(f"{path}: not a valid {what}: {exc}") from exc


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _iso_ms(timestamp_ms: int) -> str:
    try:
        return rfc3339_ms(timestamp_ms, millis=True)
    except (OverflowError, OSError, ValueError):
        return "out of range"


def load_log_key(path: str) -> LogKey:
    """A log key from a PEM or DER SubjectPublicKeyInfo, or a raw uncompressed EC point (as sct.rs ships)."""
    data = _read(path)
    try:
        if b"-----BEGIN" in data:
            return LogKey.from_pem(data)
        if len(data) in (65, 97) and data[0] == 4:
            curve: ec.EllipticCurve = ec.SECP256R1() if len(data) == 65 else ec.SECP384R1()
            point = ec.EllipticCurvePublicKey.from_encoded_point(curve, data)
            return LogKey.from_der(
                point.public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
        try:
            return LogKey.from_der(data)
        except CTError:
            # A bare PKCS#1 RSAPublicKey: re-wrap it as an SPKI.
            rsa_key = serialization.load_der_public_key(data)
            return LogKey.from_der(
                rsa_key.public_bytes(
                    serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
                )
            )
    except (CTError, ValueError) as exc:
        raise UserError(f"{path}: not a usable log public key: {exc}") from exc


def _sth_fields(sth: SignedTreeHead, key: LogKey) -> dict[str, Any]:
    return {
        "tree_size": sth.tree_size,
        "timestamp": sth.timestamp,
        "time": _iso_ms(sth.timestamp),
        "sha256_root_hash": _b64(sth.root_hash),
        "log_id": _b64(key.log_id),
    }


def _inspect_sth(args: argparse.Namespace) -> int:
    key = load_log_key(args.key)
    sth = _decoded(args.file, "get-sth response", SignedTreeHead.from_json)
    report = Report()
    report.fields.update(_sth_fields(sth, key))
    report.check("signature", lambda: verify_sth(key, sth), "tree head signature does not verify")
    return report.finish()


def _inspect_consistency(args: argparse.Namespace) -> int:
    key = load_log_key(args.key)
    old = _decoded(args.old, "get-sth response", SignedTreeHead.from_json)
    new = _decoded(args.new, "get-sth response", SignedTreeHead.from_json)
    proof = _decoded(args.proof, "get-sth-consistency response", parse_consistency_response)
    report = Report()
    report.fields["old"] = _sth_fields(old, key)
    report.fields["new"] = _sth_fields(new, key)
    report.fields["proof_length"] = len(proof)
    report.check("old_signature", lambda: verify_sth(key, old), "old tree head signature does not verify")
    report.check("new_signature", lambda: verify_sth(key, new), "new tree head signature does not verify")
    report.check(
        "consistency",
        lambda: merkle.verify_consistency(old.tree_size, new.tree_size, proof, old.root_hash, new.root_hash),
        f"tree heads {old.tree_size} and {new.tree_size} are not consistent",
    )
    return report.finish()


def _inspect_inclusion(args: argparse.Namespace) -> int:
    key = load_log_key(args.key)
    sth = _decoded(args.sth, "get-sth response", SignedTreeHead.from_json)
    body = _read_json(args.entry_and_proof)
    try:
        if isinstance(body, dict) and "leaf_index" in body:
            index, audit_path = parse_proof_by_hash_response(body)
            if args.entry is None:
                raise UserError(
                    "a get-proof-by-hash response needs --entry (a get-entries response with the leaf)"
                )
            entries = _decoded(args.entry, "get-entries response", parse_get_entries_response)
            if len(entries) != 1:
                raise UserError(f"{args.entry}: expected one entry, found {len(entries)}")
            leaf_input, extra_data = entries[0]
        else:
            leaf_input, extra_data, audit_path = parse_entry_and_proof_response(body)
            if args.index is None:
                raise UserError("a get-entry-and-proof response does not name its index: pass --index")
            index = args.index
    except CTError as exc:
        raise UserError(f"{args.entry_and_proof}: not a valid proof response: {exc}") from exc
    leaf_hash = merkle.leaf_hash(leaf_input)
    report = Report()
    report.fields.update(_sth_fields(sth, key))
    report.fields["leaf_index"] = index
    report.fields["leaf_hash"] = _b64(leaf_hash)
    report.fields["certificate"] = record_from_entry(leaf_input, extra_data).to_json()
    report.check("signature", lambda: verify_sth(key, sth), "tree head signature does not verify")
    report.check(
        "inclusion",
        lambda: merkle.verify_inclusion(leaf_hash, index, sth.tree_size, audit_path, sth.root_hash),
        f"entry {index} is not included in the tree of size {sth.tree_size}",
    )
    return report.finish()


def _print_records(records: Iterator[dict[str, Any]]) -> int:
    for record in records:
        print(safe_json(record))
    return 0


def _inspect_entries(args: argparse.Namespace) -> int:
    entries = _decoded(args.file, "get-entries response", parse_get_entries_response)
    return _print_records(record_from_entry(leaf, extra).to_json() for leaf, extra in entries)


def _certificate_blobs(data: bytes) -> list[tuple[bytes, str | None]]:
    """(DER, problem) for each certificate in a PEM bundle, or the file itself as DER."""
    if b"-----BEGIN" not in data:
        return [(data, None)]
    blobs: list[tuple[bytes, str | None]] = []
    for block in data.split(b"-----BEGIN")[1:]:
        header, _, rest = block.partition(b"-----")
        if b"CERTIFICATE" not in header:
            continue
        body = rest.split(b"-----END", 1)[0]
        lines = [ln for ln in body.splitlines() if ln.strip() and b":" not in ln]  # drop RFC 1421 headers
        try:
            blobs.append((base64.b64decode(b"".join(lines), validate=True), None))
        except (binascii.Error, ValueError) as exc:
            blobs.append((body, f"PEM: bad base64 ({exc})"))
    return blobs


def _inspect_cert(args: argparse.Namespace) -> int:
    blobs = _certificate_blobs(_read(args.file))
    if not blobs:
        raise UserError(f"{args.file}: no CERTIFICATE block found")
    records = []
    for der, problem in blobs:
        record = record_from_der(der)
        if problem is not None:
            record.error = problem
        found = record.to_json()
        if args.lint:
            from ctsentinel.oversight.lint import lint_certificate  # pkilint takes a while to import

            found["lint"] = lint_certificate(der).to_json()
        records.append(found)
    return _print_records(iter(records))


def _load_note_key(path: str) -> LogKey | Ed25519NoteVerifier:
    """An Ed25519 verifier key (name+id+key, as sum.golang.org publishes it), or else a log key."""
    data = _read(path)
    text = data.decode("utf-8", "replace").strip()
    if b"-----BEGIN" not in data and text.count("+") >= 2 and "\n" not in text:
        try:
            return Ed25519NoteVerifier.from_vkey(text)
        except CTError as exc:
            raise UserError(f"{path}: not a usable verifier key: {exc}") from exc
    return load_log_key(path)


def _inspect_checkpoint(args: argparse.Namespace) -> int:
    data = _read(args.file)
    try:
        note = parse_note(data)
        checkpoint = parse_checkpoint_text(note.text)
    except CTError as exc:
        raise UserError(f"{args.file}: not a valid checkpoint: {exc}") from exc
    origin = args.origin or checkpoint.origin
    key = _load_note_key(args.key)
    report = Report()
    report.fields.update(
        {
            "origin": checkpoint.origin,
            "tree_size": checkpoint.tree_size,
            "root_hash": _b64(checkpoint.root_hash),
            "extensions": list(checkpoint.extensions),
            "signature_lines": [s.name for s in note.signatures],
        }
    )
    if isinstance(key, LogKey):
        report.fields["log_id"] = _b64(key.log_id)
        check = functools.partial(_check_rfc6962_checkpoint, report, data, origin, key)
    else:
        report.fields["key_name"] = key.name
        check = functools.partial(_check_ed25519_checkpoint, note, checkpoint.origin, origin, key)
    report.check("signature", check, "checkpoint signature does not verify")
    return report.finish()


def _check_rfc6962_checkpoint(report: Report, data: bytes, origin: str, key: LogKey) -> None:
    """A static-ct-api checkpoint: the log's RFC6962NoteSignature, which also carries the time."""
    verified = open_checkpoint(data, origin, key)
    report.fields["timestamp"] = verified.timestamp
    report.fields["time"] = _iso_ms(verified.timestamp)


def _check_ed25519_checkpoint(note: Note, found: str, origin: str, key: Ed25519NoteVerifier) -> None:
    """A tlog checkpoint signed with an Ed25519 note key, checked by the signed-note rules."""
    if not any(s.name == key.name and s.key_id == key.key_id for s in note.signatures):
        raise SignatureError(f"no signature line from {key.name} with key id {key.key_id.hex()}")
    try:
        verify_note(note, [key])
    except SignatureError:
        raise SignatureError(f"Ed25519 signature of {key.name} does not verify") from None
    if found != origin:
        raise SignatureError(f"origin is {found!r}, expected {origin!r}")


def _maybe_gunzip(data: bytes, path: str) -> bytes:
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError) as exc:
        raise UserError(f"{path}: bad gzip data: {exc}") from exc


def _inspect_tile(args: argparse.Namespace) -> int:
    data = _maybe_gunzip(_read(args.file), args.file)
    try:
        leaves = decode_data_tile(data)
    except CTError as exc:
        raise UserError(f"{args.file}: not a valid data tile: {exc}") from exc
    if args.hash_tile:
        hash_data = _maybe_gunzip(_read(args.hash_tile), args.hash_tile)
        try:
            hashes = decode_hash_tile(hash_data)
        except CTError as exc:
            raise UserError(f"{args.hash_tile}: not a valid hash tile: {exc}") from exc
        if len(hashes) != len(leaves):
            print(
                f"ctsentinel: data tile has {len(leaves)} entries, hash tile {len(hashes)}", file=sys.stderr
            )
            return 1
        for position, (leaf, expected) in enumerate(zip(leaves, hashes, strict=True)):
            if merkle.leaf_hash(leaf.merkle_tree_leaf()) != expected:
                print(
                    f"ctsentinel: entry {position} of the data tile does not hash to the hash tile",
                    file=sys.stderr,
                )
                return 1
    return _print_records(record_from_tile_leaf(leaf).to_json() for leaf in leaves)


def _inspect_sct(args: argparse.Namespace) -> int:
    key = load_log_key(args.key)
    cert_der = _first_certificate(args.cert)
    issuer_key_hash = _issuer_key_hash(args.issuer) if args.issuer else None
    scts = [(args.sct, _read(args.sct))] if args.sct else []
    if not (args.embedded or issuer_key_hash is not None):
        entry_type, signed_entry = LogEntryType.X509_ENTRY, cert_der
    else:
        if issuer_key_hash is None:
            raise UserError("checking an embedded SCT needs --issuer (the precertificate's issuer)")
        cert, tbs = _precertificate(args.cert, cert_der)
        entry_type, signed_entry = LogEntryType.PRECERT_ENTRY, tbs
        if args.embedded:
            scts.extend(_embedded_scts(args.cert, cert))
    if not scts:
        raise UserError("give an SCT file or --embedded")
    report = Report()
    report.fields["log_id"] = _b64(key.log_id)
    report.fields["scts"] = results = [
        _check_sct(report, key, name, raw, entry_type, signed_entry, issuer_key_hash) for name, raw in scts
    ]
    if not any(str(r.get("signature", "")).startswith(("valid", "invalid")) for r in results):
        report.failures.append("no SCT from this log")
    return report.finish()


def _first_certificate(path: str) -> bytes:
    return _certificate_blobs(_read(path))[0][0]


def _issuer_key_hash(path: str) -> bytes:
    """SHA-256 of the issuer's SubjectPublicKeyInfo, as a precertificate's SCT signs it."""
    spki_sha256 = record_from_der(_first_certificate(path)).subject_spki_sha256
    if spki_sha256 is None:
        raise UserError(f"{path}: cannot read the issuer's public key")
    return bytes.fromhex(spki_sha256)


def _precertificate(path: str, der: bytes) -> tuple[x509.Certificate, bytes]:
    """The certificate and the precertificate TBS its embedded SCTs signed (without them, or the poison)."""
    try:
        cert = x509.load_der_x509_certificate(der)
        return cert, cert.tbs_precertificate_bytes
    except ValueError as exc:
        raise UserError(f"{path}: cannot derive the precertificate TBS: {exc}") from exc


def _embedded_scts(path: str, cert: x509.Certificate) -> list[tuple[str, bytes]]:
    """The SCTs in the certificate's SCT-list extension (a TLS list inside a DER OCTET STRING)."""
    try:
        extension = cert.extensions.get_extension_for_oid(_SCT_LIST_OID)
    except x509.ExtensionNotFound as exc:
        raise UserError(f"{path}: no embedded SCT list") from exc
    value = extension.value.public_bytes()
    if len(value) < 2 or value[0] != OCTET_STRING:
        raise UserError("embedded SCT list: extension value is not an OCTET STRING")
    try:
        _, start, end = read_tlv(value, 0, len(value))
    except (DecodeError, IndefiniteLength):
        end = -1
    if end != len(value):
        raise UserError("embedded SCT list: bad OCTET STRING length")
    try:
        return [(f"embedded[{n}]", sct.encode()) for n, sct in enumerate(decode_sct_list(value[start:end]))]
    except CTError as exc:
        raise UserError(f"{path}: bad embedded SCT list: {exc}") from exc


def _check_sct(
    report: Report,
    key: LogKey,
    name: str,
    raw_sct: bytes,
    entry_type: LogEntryType,
    signed_entry: bytes,
    issuer_key_hash: bytes | None,
) -> dict[str, Any]:
    """One SCT's part of the report; a failure also goes into `report`'s failures."""
    entry: dict[str, Any] = {"sct": name}
    try:
        sct = SignedCertificateTimestamp.decode(raw_sct)
    except CTError as exc:
        entry["signature"] = f"invalid: malformed SCT: {exc}"
        report.failures.append(f"{name}: malformed SCT: {exc}")
        return entry
    entry["timestamp"] = sct.timestamp
    entry["time"] = _iso_ms(sct.timestamp)
    entry["sct_log_id"] = _b64(sct.log_id)
    if sct.log_id != key.log_id:
        entry["signature"] = "skipped: from another log"
        return entry
    sub = Report()
    sub.check(
        "signature",
        functools.partial(verify_sct, key, sct, entry_type, signed_entry, issuer_key_hash),
        f"{name}: SCT signature does not verify",
    )
    entry.update(sub.fields)
    report.failures.extend(sub.failures)
    return entry


def _inspect_loglist(args: argparse.Namespace) -> int:
    body = _read_json(args.file)
    report = Report()
    checked = 0

    def walk(node: Any) -> Iterator[dict[str, Any]]:
        if isinstance(node, dict):
            if "key" in node and "log_id" in node:
                yield node
            for value in node.values():
                yield from walk(value)
        elif isinstance(node, list):
            for value in node:
                yield from walk(value)

    mismatches = []
    for log in walk(body):
        checked += 1
        try:
            key = LogKey.from_base64(str(log["key"]))
        except CTError as exc:
            mismatches.append(f"{log.get('description', '?')}: bad key: {exc}")
            continue
        if _b64(key.log_id) != log["log_id"]:
            mismatches.append(f"{log.get('description', '?')}: log_id is not SHA-256 of its key")
    report.fields["logs"] = checked
    report.fields["mismatches"] = mismatches
    if mismatches:
        report.failures.append(mismatches[0])
    return report.finish()


_COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "sth": _inspect_sth,
    "consistency": _inspect_consistency,
    "inclusion": _inspect_inclusion,
    "entries": _inspect_entries,
    "cert": _inspect_cert,
    "checkpoint": _inspect_checkpoint,
    "tile": _inspect_tile,
    "sct": _inspect_sct,
    "loglist": _inspect_loglist,
}


def run(args: argparse.Namespace) -> int:
    # inspect looks at odd real-world certificates on purpose (a zero serial, say): cryptography's
    # deprecation warnings about them are noise here, not the verdict.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CryptographyDeprecationWarning)
        return _COMMANDS[args.what](args)
