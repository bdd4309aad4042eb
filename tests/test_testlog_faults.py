"""Every injectable fault of the test log, observed over HTTP the way a monitor would run into it."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from ctsentinel.ct import merkle, signatures, sth, tiles, tls
from ctsentinel.ct.checkpoint import open_checkpoint
from ctsentinel.ct.errors import ProofError, SignatureError
from ctsentinel.ct.signatures import LogKey
from ctsentinel.testlog.server import BackgroundLog
from test_testlog_server import get_sth, log_key, origin_of, prefill, wait_for_size
from testlog_client import get_json, request, set_faults, submit
from testlog_pki import Pki, make_leaf, make_pki


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


@pytest.fixture
def small(tmp_path: Path, pki: Pki, testlog_factory: Callable[..., BackgroundLog]) -> BackgroundLog:
    prefill(tmp_path / "small", pki, n=10)
    return testlog_factory(tmp_path / "small")


def entries(url: str, start: int, end: int) -> list[tuple[bytes, bytes]]:
    return sth.parse_get_entries_response(get_json(url + f"ct/v1/get-entries?start={start}&end={end}"))


def faults_state(url: str) -> dict[str, Any]:
    state: dict[str, Any] = get_json(url + "admin/faults")["faults"]
    return state


def test_admin_endpoint_validates_and_lists(small: BackgroundLog) -> None:
    url = small.url
    assert faults_state(url) == {}
    for body in [
        {"set": {"no-such-fault": 1}},
        {"set": {"slow": "fast"}},
        {"set": {"rate-limit": None}},
        {"set": {"truncated-json": 3}},
        {"set": {"slow": -1}},
        {"clear": "slow"},
        {"bogus": 1},
        [],
    ]:
        reply = request(url + "admin/faults", body)
        assert reply.status == 400, body
        assert "error" in reply.json()
    state = set_faults(url, {"slow": 0.01, "truncated-json": True, "short-entries": None})["faults"]
    assert state == {"slow": 0.01, "truncated-json": None, "short-entries": None}
    assert set_faults(url, clear=["slow", "truncated-json"])["faults"] == {"short-entries": None}


def test_bad_sth_signature(small: BackgroundLog) -> None:
    url, key = small.url, log_key(small)
    good = get_sth(url)
    signatures.verify_sth(key, good)
    set_faults(url, {"bad-sth-signature": None})
    bad = get_sth(url)
    assert (bad.tree_size, bad.root_hash, bad.timestamp) == (good.tree_size, good.root_hash, good.timestamp)
    with pytest.raises(SignatureError):
        signatures.verify_sth(key, bad)
    with pytest.raises(SignatureError):
        open_checkpoint(request(url + "checkpoint").body, origin_of(url), key)
    assert "bad-sth-signature" in faults_state(url)
    set_faults(url, clear=["bad-sth-signature"])
    signatures.verify_sth(key, get_sth(url))


def test_fork_serves_a_self_consistent_tree_inconsistent_with_the_past(
    small: BackgroundLog, pki: Pki
) -> None:
    url, key = small.url, log_key(small)
    old = get_sth(url)
    old_entries = entries(url, 0, 9)
    state = set_faults(url, {"fork": None})["faults"]
    assert state["fork"] == {"index": 9, "from_size": 11}
    assert get_sth(url) == old  # nothing to fork yet: the lie starts at the next tree size
    submit(url, pki.chain(make_leaf(pki.intermediate, ["after-fork.example"])))
    new = wait_for_size(url, 11)
    signatures.verify_sth(key, new)  # properly signed: a split view, not a corrupt signature

    served = entries(url, 0, 10)
    assert served[:9] == old_entries[:9] and served[9] != old_entries[9]
    assert merkle.root_hash([merkle.leaf_hash(e[0]) for e in served]) == new.root_hash
    proof = sth.parse_consistency_response(get_json(url + "ct/v1/get-sth-consistency?first=10&second=11"))
    with pytest.raises(ProofError):
        merkle.verify_consistency(10, 11, proof, old.root_hash, new.root_hash)
    # Inside the forked tree everything adds up, on both APIs.
    leaf_input, _, path = sth.parse_entry_and_proof_response(
        get_json(url + "ct/v1/get-entry-and-proof?leaf_index=9&tree_size=11")
    )
    assert leaf_input == served[9][0]
    merkle.verify_inclusion(merkle.leaf_hash(leaf_input), 9, 11, path, new.root_hash)
    checkpoint = open_checkpoint(request(url + "checkpoint").body, origin_of(url), key)
    assert checkpoint.checkpoint.root_hash == new.root_hash
    hashes = tiles.decode_hash_tile(request(url + tiles.tile_path(0, 0, 11)).body)
    assert merkle.root_hash(hashes) == new.root_hash and hashes[9] == merkle.leaf_hash(served[9][0])
    data = tiles.decode_data_tile(request(url + tiles.tile_path("data", 0, 11)).body)
    assert [leaf.merkle_tree_leaf() for leaf in data] == [e[0] for e in served]


def test_fork_deep_in_a_larger_tree_forks_the_upper_tiles(
    tmp_path: Path, pki: Pki, testlog_factory: Callable[..., BackgroundLog]
) -> None:
    prefill(tmp_path / "big", pki, n=520)
    log = testlog_factory(tmp_path / "big", faults=["fork=300"])
    url = log.url
    old = get_sth(url)
    submit(url, pki.chain(make_leaf(pki.intermediate, ["x.example"])))
    new = wait_for_size(url, 521)
    level0 = tiles.decode_hash_tile(request(url + tiles.tile_path(0, 1)).body)
    level1 = tiles.decode_hash_tile(request(url + tiles.tile_path(1, 0, 2)).body)
    assert level1[1] == merkle.root_hash(level0)
    leaf_300 = entries(url, 300, 300)[0][0]
    assert level0[300 - 256] == merkle.leaf_hash(leaf_300)
    proof = sth.parse_consistency_response(get_json(url + "ct/v1/get-sth-consistency?first=520&second=521"))
    with pytest.raises(ProofError):
        merkle.verify_consistency(520, 521, proof, old.root_hash, new.root_hash)
    all_hashes = [
        merkle.leaf_hash(e[0]) for start in range(0, 521, 256) for e in entries(url, start, start + 255)
    ]
    assert merkle.root_hash(all_hashes) == new.root_hash


def test_bad_entries_do_not_hash_to_the_root(small: BackgroundLog) -> None:
    url = small.url
    head = get_sth(url)
    good = entries(url, 0, 9)
    set_faults(url, {"bad-entries": 4})
    served = entries(url, 0, 9)
    assert [i for i in range(10) if served[i] != good[i]] == [4]
    assert merkle.root_hash([merkle.leaf_hash(e[0]) for e in served]) != head.root_hash
    tls.decode_merkle_tree_leaf(served[4][0])  # still well-formed: only the hash gives it away
    data = tiles.decode_data_tile(request(url + tiles.tile_path("data", 0, 10)).body)
    hashes = tiles.decode_hash_tile(request(url + tiles.tile_path(0, 0, 10)).body)
    assert [
        merkle.leaf_hash(leaf.merkle_tree_leaf()) == h for leaf, h in zip(data, hashes, strict=True)
    ].count(False) == 1
    set_faults(url, {"bad-entries": None})
    assert all(a != b for a, b in zip(entries(url, 0, 9), good, strict=True))
    set_faults(url, clear=["bad-entries"])
    assert entries(url, 0, 9) == good


def test_shrink_serves_a_smaller_signed_head(small: BackgroundLog) -> None:
    url, key = small.url, log_key(small)
    head = get_sth(url)
    set_faults(url, {"shrink": None})
    smaller = get_sth(url)
    signatures.verify_sth(key, smaller)
    assert smaller.tree_size == head.tree_size - 1 and smaller.timestamp > head.timestamp
    assert smaller.root_hash == merkle.root_hash([merkle.leaf_hash(e[0]) for e in entries(url, 0, 8)])
    assert request(url + "ct/v1/get-entries?start=9&end=9").status == 400
    assert get_sth(url) == smaller  # the lie is stable between polls
    checkpoint = open_checkpoint(request(url + "checkpoint").body, origin_of(url), key)
    assert checkpoint.checkpoint.tree_size == 9
    set_faults(url, {"shrink": 6})
    assert get_sth(url).tree_size == 4
    set_faults(url, clear=["shrink"])
    assert get_sth(url) == head


@pytest.mark.parametrize(("fault", "header"), [("rate-limit", "1"), ("rate-limit-no-retry-after", None)])
def test_rate_limit(small: BackgroundLog, fault: str, header: str | None) -> None:
    url = small.url
    set_faults(url, {fault: 1})
    for _ in range(2):
        reply = request(url + "ct/v1/get-sth")
        assert reply.status == 429
        assert reply.headers.get("retry-after") == header
    assert faults_state(url)[fault] == 1  # the admin endpoint is never limited
    time.sleep(1.05)  # a client that honours Retry-After gets through, once per window
    assert request(url + "ct/v1/get-sth").status == 200
    assert request(url + "checkpoint").status == 429
    set_faults(url, clear=[fault])
    assert request(url + "ct/v1/get-sth").status == 200


def test_server_error_burst_counts_down(small: BackgroundLog) -> None:
    url = small.url
    set_faults(url, {"server-error": 3})
    assert request(url + "ct/v1/get-sth").status == 503
    assert faults_state(url)["server-error"] == 2
    assert [request(url + "ct/v1/get-sth").status for _ in range(3)] == [500, 503, 200]
    assert "server-error" not in faults_state(url)


def test_slow_responses(small: BackgroundLog) -> None:
    url = small.url
    set_faults(url, {"slow": 0.7})
    start = time.monotonic()
    assert request(url + "ct/v1/get-sth").status == 200
    assert time.monotonic() - start >= 0.7
    set_faults(url, clear=["slow"])
    start = time.monotonic()
    request(url + "ct/v1/get-sth")
    assert time.monotonic() - start < 0.6


def test_truncated_json(small: BackgroundLog) -> None:
    url = small.url
    whole = request(url + "ct/v1/get-sth").body
    set_faults(url, {"truncated-json": None})
    reply = request(url + "ct/v1/get-sth")
    assert reply.status == 200 and whole.startswith(reply.body) and 0 < len(reply.body) < len(whole)
    with pytest.raises(json.JSONDecodeError):
        json.loads(reply.body)
    with pytest.raises(json.JSONDecodeError):
        json.loads(request(url + "ct/v1/get-entries?start=0&end=3").body)
    assert len(request(url + tiles.tile_path(0, 0, 10)).body) == 320  # binary endpoints are untouched


def test_short_entries(small: BackgroundLog) -> None:
    url = small.url
    set_faults(url, {"short-entries": None})
    served = entries(url, 0, 9)
    assert len(served) == 5
    set_faults(url, {"short-entries": 3})
    assert entries(url, 2, 9) == entries(url, 2, 4) and len(entries(url, 2, 9)) == 3
    set_faults(url, clear=["short-entries"])
    assert len(entries(url, 0, 9)) == 10


def test_malformed_entry_keeps_the_tree_valid(small: BackgroundLog, pki: Pki) -> None:
    url, key = small.url, log_key(small)
    reply = request(url + "admin/faults", {"set": {"malformed-entry": 3}})
    assert reply.status == 400 and "already logged" in reply.json()["error"]
    assert set_faults(url, {"malformed-entry": None})["faults"]["malformed-entry"] == 10
    chain = pki.chain(make_leaf(pki.intermediate, ["malformed.example"]))
    response = submit(url, chain)
    head = wait_for_size(url, 11)
    served = entries(url, 0, 10)
    assert merkle.root_hash([merkle.leaf_hash(e[0]) for e in served]) == head.root_hash
    leaf = tls.decode_merkle_tree_leaf(served[10][0]).timestamped_entry
    assert leaf.signed_entry != chain[0] and len(leaf.signed_entry) == len(chain[0])
    with pytest.raises(ValueError):
        x509.load_der_x509_certificate(leaf.signed_entry)
    sct = tls.SignedCertificateTimestamp(
        0,
        key.log_id,
        response["timestamp"],
        base64.b64decode(response["extensions"]),
        tls.DigitallySigned.decode(base64.b64decode(response["signature"])),
    )
    signatures.verify_sct(key, sct, leaf.entry_type, leaf.signed_entry)  # the log signed what it logged


def test_faults_given_at_start(tmp_path: Path, pki: Pki, testlog_process_factory: Callable[..., Any]) -> None:
    prefill(tmp_path / "flags", pki, n=10)
    proc = testlog_process_factory(
        tmp_path / "flags",
        "--fault",
        "server-error=1",
        "--fault",
        "short-entries=2",
        "--fault",
        "bad-sth-signature",
    )
    doc = json.loads((proc.directory / "log_list.json").read_text())
    key = LogKey.from_base64(doc["operators"][0]["logs"][0]["key"])
    assert request(proc.url + "ct/v1/get-sth").status == 503
    with pytest.raises(SignatureError):
        signatures.verify_sth(key, get_sth(proc.url))
    assert len(entries(proc.url, 0, 9)) == 2
    assert set(faults_state(proc.url)) == {"short-entries", "bad-sth-signature"}
    assert proc.stop() == 0
