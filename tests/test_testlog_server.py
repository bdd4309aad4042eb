"""`testlog serve` over real HTTP on 127.0.0.1: every RFC 6962 and static-ct-api endpoint, checked by ct."""

from __future__ import annotations

import base64
import gzip
import hashlib
import json
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from ctsentinel.ct import merkle, signatures, sth, tiles, tls
from ctsentinel.ct.checkpoint import open_checkpoint
from ctsentinel.ct.errors import ProofError, SignatureError
from ctsentinel.ct.signatures import LogKey
from ctsentinel.testlog.server import BackgroundLog
from ctsentinel.testlog.storage import LogStorage, Submission
from testlog_client import get_json, request, submit
from testlog_pki import Pki, make_leaf, make_pki

PREFILLED = 520  # two full level-0 tiles, a partial one, and a level-1 tile of width 2


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki()


def prefill(directory: Path, pki: Pki, n: int = PREFILLED) -> None:
    """Fill a log directly through its storage (fast), with a few chains reused."""
    chains = [
        (pki.chain(make_leaf(pki.intermediate, [f"bulk{i}.example.net"], precert=i % 2 == 1)), i % 2 == 1)
        for i in range(6)
    ]
    with LogStorage.open(directory) as storage:
        storage.add(
            [Submission(*chains[i % 6], timestamp=1_707_000_000_000 + i) for i in range(n)], sign=False
        )
        storage.integrate()


def log_key(log: BackgroundLog) -> LogKey:
    doc = json.loads((log.directory / "log_list.json").read_text())
    return LogKey.from_base64(doc["operators"][0]["logs"][0]["key"])


def origin_of(url: str) -> str:
    return url.removeprefix("http://").rstrip("/")


def get_sth(url: str) -> sth.SignedTreeHead:
    return sth.SignedTreeHead.from_json(get_json(url + "ct/v1/get-sth"))


def wait_for_size(url: str, size: int, timeout: float = 10.0) -> sth.SignedTreeHead:
    deadline = time.monotonic() + timeout
    while True:
        head = get_sth(url)
        if head.tree_size >= size or time.monotonic() > deadline:
            return head
        time.sleep(0.02)


@pytest.fixture
def filled(tmp_path: Path, pki: Pki, testlog_factory: Callable[..., BackgroundLog]) -> BackgroundLog:
    prefill(tmp_path / "filled", pki)
    return testlog_factory(tmp_path / "filled", batch_size=100)


def test_log_list_describes_the_log(testlog: BackgroundLog) -> None:
    doc = json.loads((testlog.directory / "log_list.json").read_text())
    assert doc["version"] and doc["log_list_timestamp"].endswith("Z")
    (operator,) = doc["operators"]
    (rfc6962_log,) = operator["logs"]
    (tiled_log,) = operator["tiled_logs"]
    key = LogKey.from_base64(rfc6962_log["key"])
    assert base64.b64decode(rfc6962_log["log_id"]) == hashlib.sha256(key.spki_der).digest() == key.log_id
    assert rfc6962_log["url"] == testlog.url and testlog.url.startswith("http://127.0.0.1:")
    assert tiled_log["submission_url"] == tiled_log["monitoring_url"] == testlog.url
    assert tiled_log["log_id"] == rfc6962_log["log_id"] and tiled_log["key"] == rfc6962_log["key"]
    assert "usable" in rfc6962_log["state"] and rfc6962_log["mmd"] >= 1
    signatures.verify_sth(key, get_sth(testlog.url))


def test_submissions_get_valid_scts_and_become_entries(testlog: BackgroundLog, pki: Pki) -> None:
    url, key = testlog.url, log_key(testlog)
    cert = pki.chain(make_leaf(pki.intermediate, ["www.example.com"], ["192.0.2.1", "2001:db8::1"]))
    pre = pki.chain(make_leaf(pki.intermediate, ["xn--bcher-kva.example", "*.example.org"], precert=True))
    responses = [submit(url, cert), submit(url, pre, precert=True)]
    head = wait_for_size(url, 2)
    assert head.tree_size == 2
    signatures.verify_sth(key, head)

    body = get_json(url + "ct/v1/get-entries?start=0&end=1")
    entries = sth.parse_get_entries_response(body)
    assert merkle.root_hash([merkle.leaf_hash(leaf_input) for leaf_input, _ in entries]) == head.root_hash
    for index, ((leaf_input, extra_data), response) in enumerate(zip(entries, responses, strict=True)):
        leaf = tls.decode_merkle_tree_leaf(leaf_input).timestamped_entry
        sct = tls.SignedCertificateTimestamp(
            version=response["sct_version"],
            log_id=base64.b64decode(response["id"]),
            timestamp=response["timestamp"],
            extensions=base64.b64decode(response["extensions"]),
            signature=tls.DigitallySigned.decode(base64.b64decode(response["signature"])),
        )
        assert sct.log_id == key.log_id and sct.timestamp == leaf.timestamp
        assert tiles.decode_leaf_index_extension(sct.extensions) == index
        signatures.verify_sct(key, sct, leaf.entry_type, leaf.signed_entry, leaf.issuer_key_hash)
        with pytest.raises(SignatureError):
            signatures.verify_sct(
                key, sct, leaf.entry_type, leaf.signed_entry + b"\x00", leaf.issuer_key_hash
            )
        extra = tls.decode_extra_data(leaf.entry_type, extra_data)
        if index == 0:
            assert leaf.entry_type == tls.LogEntryType.X509_ENTRY and leaf.signed_entry == cert[0]
            assert isinstance(extra, tls.X509ExtraData) and extra.certificate_chain == cert[1:]
        else:
            assert leaf.entry_type == tls.LogEntryType.PRECERT_ENTRY
            assert isinstance(extra, tls.PrecertExtraData) and extra.pre_certificate == pre[0]

    roots = get_json(url + "ct/v1/get-roots")["certificates"]
    assert roots == [base64.b64encode(pki.root.der).decode()]


def test_get_entries_caps_clips_and_refuses_bad_ranges(filled: BackgroundLog) -> None:
    url = filled.url
    assert len(get_json(url + "ct/v1/get-entries?start=0&end=519")["entries"]) == 100  # batch_size
    assert len(get_json(url + "ct/v1/get-entries?start=510&end=10000")["entries"]) == 10  # clipped to size
    assert len(get_json(url + "ct/v1/get-entries?start=519&end=519")["entries"]) == 1
    for query in [
        "start=5&end=4",
        "start=520&end=530",
        "start=-1&end=3",
        "start=a&end=3",
        "start=1",
        "start=01&end=2",
    ]:
        reply = request(url + "ct/v1/get-entries?" + query)
        assert reply.status == 400, (query, reply.status)


def test_proofs_verify_against_published_heads(filled: BackgroundLog, pki: Pki) -> None:
    url, key = filled.url, log_key(filled)
    old = get_sth(url)
    assert old.tree_size == PREFILLED
    for i in range(3):
        submit(url, pki.chain(make_leaf(pki.intermediate, [f"late{i}.example"])))
    new = wait_for_size(url, PREFILLED + 3)
    signatures.verify_sth(key, new)

    proof = sth.parse_consistency_response(
        get_json(url + f"ct/v1/get-sth-consistency?first={old.tree_size}&second={new.tree_size}")
    )
    merkle.verify_consistency(old.tree_size, new.tree_size, proof, old.root_hash, new.root_hash)
    with pytest.raises(ProofError):
        merkle.verify_consistency(old.tree_size, new.tree_size, proof, bytes(32), new.root_hash)
    assert get_json(url + "ct/v1/get-sth-consistency?first=5&second=5") == {"consistency": []}
    for query in ["first=6&second=5", f"first=1&second={new.tree_size + 1}", "first=1", "first=0&second=5"]:
        assert request(url + "ct/v1/get-sth-consistency?" + query).status == 400

    leaf_input, _extra, path = sth.parse_entry_and_proof_response(
        get_json(url + f"ct/v1/get-entry-and-proof?leaf_index=300&tree_size={new.tree_size}")
    )
    merkle.verify_inclusion(merkle.leaf_hash(leaf_input), 300, new.tree_size, path, new.root_hash)
    assert (
        tiles.decode_leaf_index_extension(
            tls.decode_merkle_tree_leaf(leaf_input).timestamped_entry.extensions
        )
        == 300
    )
    assert (
        request(url + f"ct/v1/get-entry-and-proof?leaf_index=5&tree_size={new.tree_size + 1}").status == 400
    )
    assert request(url + "ct/v1/get-entry-and-proof?leaf_index=5&tree_size=5").status == 400

    last = f"start={new.tree_size - 1}&end={new.tree_size - 1}"
    last_hash = merkle.leaf_hash(
        sth.parse_get_entries_response(get_json(url + "ct/v1/get-entries?" + last))[0][0]
    )
    hash_param = (
        base64.b64encode(last_hash).decode().replace("+", "%2B").replace("/", "%2F").replace("=", "%3D")
    )
    index, audit_path = sth.parse_proof_by_hash_response(
        get_json(url + f"ct/v1/get-proof-by-hash?hash={hash_param}&tree_size={new.tree_size}")
    )
    assert index == new.tree_size - 1
    merkle.verify_inclusion(last_hash, index, new.tree_size, audit_path, new.root_hash)
    # The leaf is not in the older tree, and an unknown hash is not anywhere.
    assert request(url + f"ct/v1/get-proof-by-hash?hash={hash_param}&tree_size={old.tree_size}").status == 404
    zero = base64.b64encode(bytes(32)).decode()
    assert request(url + f"ct/v1/get-proof-by-hash?hash={zero}&tree_size={new.tree_size}").status == 404
    assert request(url + f"ct/v1/get-proof-by-hash?hash=abc&tree_size={new.tree_size}").status == 400


def _tile(url: str, path: str, **headers: str) -> bytes:
    reply = request(url + path, headers=headers)
    assert reply.status == 200, (path, reply.status, reply.body[:200])
    assert reply.headers["content-type"] == "application/octet-stream"
    if reply.headers.get("content-encoding") == "gzip":
        return gzip.decompress(reply.body)
    return reply.body


def test_checkpoint_and_tiles_commit_to_the_same_tree(filled: BackgroundLog) -> None:
    url, key = filled.url, log_key(filled)
    reply = request(url + "checkpoint")
    assert reply.status == 200 and reply.headers["content-type"] == "text/plain; charset=utf-8"
    checkpoint = open_checkpoint(reply.body, origin_of(url), key)
    head = get_sth(url)
    assert (checkpoint.checkpoint.tree_size, checkpoint.checkpoint.root_hash) == (
        head.tree_size,
        head.root_hash,
    )
    assert checkpoint.timestamp == head.timestamp
    with pytest.raises(SignatureError):
        open_checkpoint(reply.body, "127.0.0.1/elsewhere", key)
    size = checkpoint.checkpoint.tree_size
    assert size == PREFILLED

    level0 = [tiles.decode_hash_tile(_tile(url, tiles.tile_path(0, n))) for n in (0, 1)]
    level0.append(tiles.decode_hash_tile(_tile(url, tiles.tile_path(0, 2, size % 256))))
    leaf_hashes = [h for tile in level0 for h in tile]
    assert len(leaf_hashes) == size
    assert merkle.root_hash(leaf_hashes) == checkpoint.checkpoint.root_hash
    level1 = tiles.decode_hash_tile(_tile(url, tiles.tile_path(1, 0, 2)))
    assert level1 == [merkle.root_hash(level0[0]), merkle.root_hash(level0[1])]

    data = [tiles.decode_data_tile(_tile(url, tiles.tile_path("data", 0), **{"Accept-Encoding": "gzip"}))]
    data.append(tiles.decode_data_tile(_tile(url, tiles.tile_path("data", 1))))
    data.append(tiles.decode_data_tile(_tile(url, tiles.tile_path("data", 2, size % 256))))
    leaves = [leaf for tile in data for leaf in tile]
    assert [leaf.leaf_index for leaf in leaves] == list(range(size))
    assert [merkle.leaf_hash(leaf.merkle_tree_leaf()) for leaf in leaves] == leaf_hashes
    rfc6962_entries = sth.parse_get_entries_response(get_json(url + "ct/v1/get-entries?start=256&end=260"))
    assert [e[0] for e in rfc6962_entries] == [leaf.merkle_tree_leaf() for leaf in leaves[256:261]]

    # A narrower partial tile of an older size is a prefix; anything beyond the tree is not served.
    assert _tile(url, tiles.tile_path(0, 2, 3)) == b"".join(level0[2][:3])
    for path in [
        tiles.tile_path(0, 2),
        tiles.tile_path(0, 2, size % 256 + 1),
        tiles.tile_path(1, 0),
        tiles.tile_path("data", 3, 1),
        tiles.tile_path(6, 0, 1),
        "tile/0/2",
        "tile/0/x000/002",
    ]:
        assert request(url + path).status == 404, path


def test_data_tiles_gzip_only_when_accepted(filled: BackgroundLog) -> None:
    path = filled.url + tiles.tile_path("data", 0)
    plain = request(path)
    assert "content-encoding" not in plain.headers
    assert (
        request(path, headers={"Accept-Encoding": "gzip;q=0, identity"}).headers.get("content-encoding")
        is None
    )
    zipped = request(path, headers={"Accept-Encoding": "gzip, identity"})
    assert zipped.headers["content-encoding"] == "gzip"
    assert gzip.decompress(zipped.body) == plain.body and len(zipped.body) < len(plain.body)
    hash_tile = request(filled.url + tiles.tile_path(0, 0), headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in hash_tile.headers and len(hash_tile.body) == 8192


def test_issuers_are_served_by_fingerprint(filled: BackgroundLog, pki: Pki) -> None:
    (leaf, *_) = tiles.decode_data_tile(_tile(filled.url, tiles.tile_path("data", 0)))
    assert len(leaf.chain_fingerprints) == 2
    for fingerprint, der in zip(leaf.chain_fingerprints, [pki.intermediate.der, pki.root.der], strict=True):
        reply = request(filled.url + "issuer/" + fingerprint.hex())
        assert reply.status == 200 and reply.headers["content-type"] == "application/pkix-cert"
        assert reply.body == der and hashlib.sha256(reply.body).digest() == fingerprint
    assert request(filled.url + "issuer/" + "00" * 32).status == 404
    assert request(filled.url + "issuer/" + leaf.chain_fingerprints[0].hex().upper()).status == 404


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("add-chain", b"not json"),
        ("add-chain", b'{"chain": "abc"}'),
        ("add-chain", b'{"chain": ["@@@"]}'),
        ("add-chain", b'{"chain": []}'),
        ("add-chain", b'{"chain": ["MAMCAQE="]}'),
        ("add-pre-chain", b"[]"),
    ],
)
def test_garbage_submissions_get_400(testlog: BackgroundLog, endpoint: str, body: bytes) -> None:
    import urllib.request

    req = urllib.request.Request(
        testlog.url + "ct/v1/" + endpoint, data=body, headers={"Content-Type": "application/json"}
    )
    try:
        urllib.request.urlopen(req, timeout=10)
        raise AssertionError("accepted garbage")
    except urllib.error.HTTPError as exc:
        assert exc.code == 400
        assert exc.read().strip()


def test_wrong_kind_of_chain_gets_400(testlog: BackgroundLog, pki: Pki) -> None:
    from testlog_client import b64

    pre = pki.chain(make_leaf(pki.intermediate, ["p.example"], precert=True))
    cert = pki.chain(make_leaf(pki.intermediate, ["c.example"]))
    reply = request(testlog.url + "ct/v1/add-chain", {"chain": b64(pre)})
    assert reply.status == 400 and b"poison" in reply.body
    reply = request(testlog.url + "ct/v1/add-pre-chain", {"chain": b64(cert)})
    assert reply.status == 400 and b"poison" in reply.body


def test_pending_entries_persist_and_the_tree_continues_after_restart(
    tmp_path: Path, pki: Pki, testlog_factory: Callable[..., BackgroundLog]
) -> None:
    directory = tmp_path / "restart"
    first = testlog_factory(directory, merge_delay=0.05)
    submit(first.url, pki.chain(make_leaf(pki.intermediate, ["one.example"])))
    before = wait_for_size(first.url, 1)
    key = log_key(first)
    first.stop()

    # A long merge delay: the new entry stays pending (not served) while this server runs.
    second = testlog_factory(directory, merge_delay=60)
    assert log_key(second) == key
    assert get_sth(second.url) == before
    submit(second.url, pki.chain(make_leaf(pki.intermediate, ["two.example"], precert=True)), precert=True)
    assert get_sth(second.url).tree_size == 1
    assert request(second.url + "ct/v1/get-entries?start=1&end=1").status == 400
    second.stop()

    third = testlog_factory(directory, merge_delay=0.05)
    after = wait_for_size(third.url, 2)
    assert after.tree_size == 2
    signatures.verify_sth(key, after)
    proof = sth.parse_consistency_response(get_json(third.url + "ct/v1/get-sth-consistency?first=1&second=2"))
    merkle.verify_consistency(1, 2, proof, before.root_hash, after.root_hash)


def test_cli_serve_prints_its_url_and_stops_cleanly(
    testlog_process_factory: Callable[..., Any], pki: Pki, tmp_path: Path
) -> None:
    directory = tmp_path / "cli"
    proc = testlog_process_factory(directory, "--merge-delay", "0.05", "--batch-size", "7")
    assert proc.url.startswith("http://127.0.0.1:") and proc.url.endswith("/testlog/")
    for i in range(9):
        submit(proc.url, pki.chain(make_leaf(pki.intermediate, [f"cli{i}.example"])))
    head = wait_for_size(proc.url, 9)
    assert len(get_json(proc.url + "ct/v1/get-entries?start=0&end=8")["entries"]) == 7
    assert proc.stop() == 0
    again = testlog_process_factory(directory)
    assert get_sth(again.url) == head
    assert again.stop(signal.SIGINT) == 0
    assert "Traceback" not in proc.stderr_path.read_text() + again.stderr_path.read_text()


def test_cli_refuses_unknown_fault(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "ctsentinel.cli",
            "testlog",
            "serve",
            "--dir",
            str(tmp_path / "x"),
            "--fault",
            "nope",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "unknown fault 'nope'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
