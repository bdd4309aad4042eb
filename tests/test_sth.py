"""ctsentinel.ct.sth: strict parsing of get-sth and the other RFC 6962 JSON responses."""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctsentinel.ct.errors import DecodeError
from ctsentinel.ct.sth import (
    SignedTreeHead,
    parse_consistency_response,
    parse_entry_and_proof_response,
    parse_get_entries_response,
    parse_proof_by_hash_response,
)
from ctsentinel.ct.tls import DigitallySigned, sth_signature_input

DATA = Path(__file__).parent / "data" / "rfc6962"
STH_2741521 = json.loads((DATA / "google-pilot-2013/get-sth_2741521.json").read_text())
HASH_B64 = base64.b64encode(bytes(range(32))).decode()


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_real_sth_fields() -> None:
    sth = SignedTreeHead.from_json(STH_2741521)
    assert sth.tree_size == 2741521
    assert sth.timestamp == STH_2741521["timestamp"]
    assert b64(sth.root_hash) == STH_2741521["sha256_root_hash"]
    assert sth.signature.hash_algorithm == 4
    assert sth.signature.signature_algorithm == 3
    assert sth.to_json() == STH_2741521
    assert sth.signature_input() == sth_signature_input(sth.timestamp, sth.tree_size, sth.root_hash)
    assert sth.signature_input()[:2] == b"\x00\x01"
    assert len(sth.signature_input()) == 2 + 8 + 8 + 32


def test_all_stored_sths_round_trip_through_json() -> None:
    paths = sorted(DATA.glob("*/get-sth_*.json")) + sorted(DATA.glob("misc-sths/*.json"))
    assert len(paths) >= 14
    for path in paths:
        obj = json.loads(path.read_text())
        assert SignedTreeHead.from_json(obj).to_json() == obj, path
    for line in (DATA / "google-pilot-2013/get-sth-responses.jsonl").read_text().splitlines():
        obj = json.loads(line)
        assert SignedTreeHead.from_json(obj).to_json() == obj


def test_extra_fields_are_ignored() -> None:
    obj = {**STH_2741521, "sth_version": 0, "log_id": HASH_B64}
    assert SignedTreeHead.from_json(obj) == SignedTreeHead.from_json(STH_2741521)


def with_field(name: str, value: Any) -> dict[str, Any]:
    return {**STH_2741521, name: value}


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        ([], r"^get-sth response: expected a JSON object, got array$"),
        (None, r"expected a JSON object, got null"),
        (
            {k: v for k, v in STH_2741521.items() if k != "tree_size"},
            r"^get-sth response: missing field 'tree_size'$",
        ),
        (
            with_field("tree_size", True),
            r"^get-sth response: field 'tree_size' must be an integer, got boolean$",
        ),
        (with_field("tree_size", 5.0), r"field 'tree_size' must be an integer, got number"),
        (with_field("tree_size", "5"), r"field 'tree_size' must be an integer, got string"),
        (
            with_field("tree_size", -1),
            r"^get-sth response: field 'tree_size' = -1 is out of the uint64 range$",
        ),
        (
            with_field("timestamp", 2**64),
            r"field 'timestamp' = 18446744073709551616 is out of the uint64 range",
        ),
        (
            with_field("tree_size", 10**1000),
            r"^get-sth response: field 'tree_size' = an integer of 3322 bits is out of the uint64 range$",
        ),
        (with_field("timestamp", None), r"field 'timestamp' must be an integer, got null"),
        (with_field("sha256_root_hash", 7), r"field 'sha256_root_hash' must be a base64 string, got integer"),
        (with_field("sha256_root_hash", "not base64!"), r"field 'sha256_root_hash' is not valid base64"),
        (with_field("sha256_root_hash", HASH_B64[:-1]), r"field 'sha256_root_hash' is not valid base64"),
        (with_field("sha256_root_hash", "é"), r"field 'sha256_root_hash' is not valid base64"),
        (with_field("sha256_root_hash", b64(bytes(31))), r"field 'sha256_root_hash' is 31 bytes, not 32"),
        (
            with_field("tree_head_signature", ""),
            r"field 'tree_head_signature': DigitallySigned: truncated at offset 0",
        ),
        (
            with_field("tree_head_signature", b64(b"\x04\x03\x00\x01ab")),
            r"'tree_head_signature': DigitallySigned: 1 trailing bytes after DigitallySigned at offset 5",
        ),
    ],
)
def test_from_json_is_strict(obj: object, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        SignedTreeHead.from_json(obj)


def test_largest_values_are_accepted() -> None:
    obj = with_field("tree_size", 2**64 - 1) | {"timestamp": 0}
    sth = SignedTreeHead.from_json(obj)
    assert sth.tree_size == 2**64 - 1
    assert sth.signature_input()[10:18] == b"\xff" * 8


@settings(max_examples=100, deadline=None)
@given(
    tree_size=st.integers(0, 2**64 - 1),
    timestamp=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    signature=st.builds(DigitallySigned, st.integers(0, 255), st.integers(0, 255), st.binary(max_size=100)),
)
def test_to_json_from_json_round_trip(
    tree_size: int, timestamp: int, root: bytes, signature: DigitallySigned
) -> None:
    sth = SignedTreeHead(tree_size, timestamp, root, signature)
    assert SignedTreeHead.from_json(json.loads(json.dumps(sth.to_json()))) == sth


@settings(max_examples=200, deadline=None)
@given(
    obj=st.recursive(
        st.none() | st.booleans() | st.integers() | st.floats() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
        max_leaves=8,
    )
)
def test_arbitrary_json_only_raises_decode_error(obj: object) -> None:
    for parse in (
        SignedTreeHead.from_json,
        parse_consistency_response,
        parse_proof_by_hash_response,
        parse_entry_and_proof_response,
        parse_get_entries_response,
    ):
        with contextlib.suppress(DecodeError):
            parse(obj)


# --- the other responses ----------------------------------------------------------------------------------


def test_real_consistency_response() -> None:
    obj = json.loads((DATA / "google-pilot-2013/get-sth-consistency_1979426_2741521.json").read_text())
    proof = parse_consistency_response(obj)
    assert len(proof) == 22
    assert b64(proof[0]) == "bblNpKGupBqDDigHMxwoXaBS05WnL2fj/qttPZGMzEI="
    assert all(len(node) == 32 for node in proof)


def test_consistency_response_errors() -> None:
    assert parse_consistency_response({"consistency": []}) == []
    with pytest.raises(DecodeError, match=r"^get-sth-consistency response: missing field 'consistency'$"):
        parse_consistency_response({})
    with pytest.raises(DecodeError, match=r"field 'consistency' must be an array, got string"):
        parse_consistency_response({"consistency": HASH_B64})
    with pytest.raises(
        DecodeError, match=r"^get-sth-consistency response: consistency\[1\] is 31 bytes, not 32$"
    ):
        parse_consistency_response({"consistency": [HASH_B64, b64(bytes(31))]})
    with pytest.raises(DecodeError, match=r"consistency\[0\] must be a base64 string, got integer"):
        parse_consistency_response({"consistency": [3]})
    with pytest.raises(DecodeError, match=r"consistency\[0\] is not valid base64"):
        parse_consistency_response({"consistency": ["@@@@"]})


def test_proof_by_hash_response() -> None:
    assert parse_proof_by_hash_response({"leaf_index": 7, "audit_path": [HASH_B64]}) == (
        7,
        [bytes(range(32))],
    )
    with pytest.raises(
        DecodeError, match=r"^get-proof-by-hash response: field 'leaf_index' must be an integer, got boolean$"
    ):
        parse_proof_by_hash_response({"leaf_index": False, "audit_path": []})
    with pytest.raises(DecodeError, match=r"field 'leaf_index' = -3 is out of the uint64 range"):
        parse_proof_by_hash_response({"leaf_index": -3, "audit_path": []})
    with pytest.raises(DecodeError, match=r"missing field 'audit_path'"):
        parse_proof_by_hash_response({"leaf_index": 0})


def test_entry_and_proof_response() -> None:
    entries = json.loads((DATA / "google-pilot-2013/get-entries_0_3.json").read_text())["entries"]
    obj = {**entries[0], "audit_path": [HASH_B64, HASH_B64]}
    leaf_input, extra_data, path = parse_entry_and_proof_response(obj)
    assert leaf_input == base64.b64decode(entries[0]["leaf_input"])
    assert extra_data == base64.b64decode(entries[0]["extra_data"])
    assert path == [bytes(range(32))] * 2
    with pytest.raises(DecodeError, match=r"^get-entry-and-proof response: missing field 'extra_data'$"):
        parse_entry_and_proof_response({"leaf_input": "", "audit_path": []})


def test_real_get_entries_response() -> None:
    obj = json.loads((DATA / "google-pilot-2013/get-entries_0_3.json").read_text())
    entries = parse_get_entries_response(obj)
    assert len(entries) == 4
    assert [len(leaf) for leaf, _ in entries] == [919, 1255, 1268, 1463]
    assert entries[0][0][:2] == b"\x00\x00"
    assert parse_get_entries_response({"entries": []}) == []


def test_get_entries_errors() -> None:
    with pytest.raises(DecodeError, match=r"^get-entries response: missing field 'entries'$"):
        parse_get_entries_response({"entry": []})
    with pytest.raises(
        DecodeError, match=r"^get-entries response entries\[1\]: expected a JSON object, got array$"
    ):
        parse_get_entries_response({"entries": [{"leaf_input": "", "extra_data": ""}, []]})
    with pytest.raises(
        DecodeError, match=r"^get-entries response entries\[0\]: field 'leaf_input' is not valid base64"
    ):
        parse_get_entries_response({"entries": [{"leaf_input": "AAA", "extra_data": ""}]})
    with pytest.raises(DecodeError, match=r"^get-entries response entries\[0\]: missing field 'extra_data'$"):
        parse_get_entries_response({"entries": [{"leaf_input": ""}]})
