"""Signed tree heads and the JSON responses of the RFC 6962 log API (section 4), parsed strictly.

A log's JSON is untrusted input: each parser checks every field's type and size and raises DecodeError
naming the response and field, so that a broken or hostile log is reported precisely instead of
surfacing later as a confusing proof or signature failure.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from ctsentinel.ct.errors import DecodeError
from ctsentinel.ct.tls import DigitallySigned, sth_signature_input

__all__ = [
    "SignedTreeHead",
    "parse_consistency_response",
    "parse_entry_and_proof_response",
    "parse_get_entries_response",
    "parse_proof_by_hash_response",
]

_HASH_SIZE = 32
_MAX_U64 = (1 << 64) - 1


def _object(obj: object, response: str) -> dict[str, object]:
    if not isinstance(obj, dict):
        raise DecodeError(f"{response}: expected a JSON object, got {_json_type(obj)}")
    return obj


def _json_type(value: object) -> str:
    names = {bool: "boolean", int: "integer", float: "number", str: "string", list: "array", dict: "object"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _field(obj: dict[str, object], name: str, response: str) -> object:
    if name not in obj:
        raise DecodeError(f"{response}: missing field {name!r}")
    return obj[name]


def _uint64(obj: dict[str, object], name: str, response: str) -> int:
    value = _field(obj, name, response)
    # bool is a subclass of int in Python, but `true` is not a tree size.
    if type(value) is not int:
        raise DecodeError(f"{response}: field {name!r} must be an integer, got {_json_type(value)}")
    if not 0 <= value <= _MAX_U64:
        # Not str() of any size: a message stays short, and str() refuses past 4,300 digits.
        shown = str(value) if value.bit_length() <= 128 else f"an integer of {value.bit_length()} bits"
        raise DecodeError(f"{response}: field {name!r} = {shown} is out of the uint64 range")
    return value


def _b64(value: object, where: str, response: str) -> bytes:
    if not isinstance(value, str):
        raise DecodeError(f"{response}: {where} must be a base64 string, got {_json_type(value)}")
    try:
        return base64.b64decode(value.encode("ascii"), validate=True)
    except (UnicodeEncodeError, binascii.Error) as exc:
        raise DecodeError(f"{response}: {where} is not valid base64 ({exc})") from None


def _b64_field(obj: dict[str, object], name: str, response: str) -> bytes:
    return _b64(_field(obj, name, response), f"field {name!r}", response)


def _hash_list(obj: dict[str, object], name: str, response: str) -> list[bytes]:
    value = _field(obj, name, response)
    if not isinstance(value, list):
        raise DecodeError(f"{response}: field {name!r} must be an array, got {_json_type(value)}")
    hashes: list[bytes] = []
    for i, item in enumerate(value):
        node = _b64(item, f"{name}[{i}]", response)
        if len(node) != _HASH_SIZE:
            raise DecodeError(f"{response}: {name}[{i}] is {len(node)} bytes, not {_HASH_SIZE}")
        hashes.append(node)
    return hashes


@dataclass(frozen=True, slots=True)
class SignedTreeHead:
    tree_size: int
    timestamp: int
    root_hash: bytes
    signature: DigitallySigned

    @classmethod
    def from_json(cls, obj: object) -> SignedTreeHead:
        """Parse a get-sth response; unknown extra fields are ignored, as RFC 6962 clients must."""
        response = "get-sth response"
        fields = _object(obj, response)
        tree_size = _uint64(fields, "tree_size", response)
        timestamp = _uint64(fields, "timestamp", response)
        root_hash = _b64_field(fields, "sha256_root_hash", response)
        if len(root_hash) != _HASH_SIZE:
            raise DecodeError(
                f"{response}: field 'sha256_root_hash' is {len(root_hash)} bytes, not {_HASH_SIZE}"
            )
        raw_signature = _b64_field(fields, "tree_head_signature", response)
        try:
            signature = DigitallySigned.decode(raw_signature)
        except DecodeError as exc:
            raise DecodeError(f"{response}: field 'tree_head_signature': {exc}") from None
        return cls(tree_size, timestamp, root_hash, signature)

    def to_json(self) -> dict[str, object]:
        return {
            "tree_size": self.tree_size,
            "timestamp": self.timestamp,
            "sha256_root_hash": base64.b64encode(self.root_hash).decode("ascii"),
            "tree_head_signature": base64.b64encode(self.signature.encode()).decode("ascii"),
        }

    def signature_input(self) -> bytes:
        return sth_signature_input(self.timestamp, self.tree_size, self.root_hash)


def parse_consistency_response(obj: object) -> list[bytes]:
    """get-sth-consistency: {"consistency": [base64 node, ...]}."""
    response = "get-sth-consistency response"
    return _hash_list(_object(obj, response), "consistency", response)


def parse_proof_by_hash_response(obj: object) -> tuple[int, list[bytes]]:
    """get-proof-by-hash: {"leaf_index": int, "audit_path": [base64 node, ...]}."""
    response = "get-proof-by-hash response"
    fields = _object(obj, response)
    return _uint64(fields, "leaf_index", response), _hash_list(fields, "audit_path", response)


def parse_entry_and_proof_response(obj: object) -> tuple[bytes, bytes, list[bytes]]:
    """get-entry-and-proof: {"leaf_input", "extra_data", "audit_path"}."""
    response = "get-entry-and-proof response"
    fields = _object(obj, response)
    return (
        _b64_field(fields, "leaf_input", response),
        _b64_field(fields, "extra_data", response),
        _hash_list(fields, "audit_path", response),
    )


def parse_get_entries_response(obj: object) -> list[tuple[bytes, bytes]]:
    """get-entries: {"entries": [{"leaf_input", "extra_data"}, ...]}; the TLS bytes are decoded elsewhere."""
    response = "get-entries response"
    entries = _field(_object(obj, response), "entries", response)
    if not isinstance(entries, list):
        raise DecodeError(f"{response}: field 'entries' must be an array, got {_json_type(entries)}")
    result: list[tuple[bytes, bytes]] = []
    for i, item in enumerate(entries):
        where = f"{response} entries[{i}]"
        entry = _object(item, where)
        result.append((_b64_field(entry, "leaf_input", where), _b64_field(entry, "extra_data", where)))
    return result
