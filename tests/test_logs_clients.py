"""Both log clients against the project's test log over real HTTP on 127.0.0.1.

Expected values come from the test log's own storage (read before serving) and from ct.merkle over the
leaves, never from the clients under test.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ctsentinel.ct import merkle
from ctsentinel.ct.errors import DecodeError, SignatureError
from ctsentinel.ct.signatures import LogSigner
from ctsentinel.logs import (
    HttpClient,
    LogBudget,
    LogClient,
    LogInfo,
    RawEntry,
    Rfc6962Client,
    StaticCtClient,
    TreeHead,
    make_client,
    parse_log_list,
)
from ctsentinel.testlog.populate import populate
from ctsentinel.testlog.server import BackgroundLog
from ctsentinel.testlog.storage import LogStorage
from test_testlog_server import prefill
from testlog_pki import Pki, make_pki

KINDS = ("rfc6962", "static-ct")
T = TypeVar("T")
ENTRIES = 700  # two full data tiles and a partial one


@dataclass
class Served:
    log: BackgroundLog
    infos: dict[str, LogInfo]  # by kind
    expected: list[tuple[bytes, bytes]]  # (leaf_input, extra_data) as the log stored them
    root: bytes  # of the published head, from the log's storage


def log_infos(log: BackgroundLog) -> dict[str, LogInfo]:
    # Read by path, as a user gives it: the one kind of list that may name 127.0.0.1.
    path = log.directory / "log_list.json"
    infos = parse_log_list(path.read_bytes(), str(path), internal_hosts=True)
    return {info.kind: info for info in infos}


def stored(directory: Path) -> tuple[list[tuple[bytes, bytes]], bytes]:
    with LogStorage.open(directory) as storage:
        size = storage.tree_size
        expected = storage.get_entries(0, size)
        assert storage.latest_sth().tree_size == size
        return expected, storage.latest_sth().root_hash


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("logs-clients") / "log"
    populate(directory, entries=ENTRIES, scenario=None, seed=11)
    expected, root = stored(directory)
    with BackgroundLog(directory, merge_delay=0.05) as log:
        yield Served(log, log_infos(log), expected, root)


def run(coro_fn: Callable[[HttpClient], Awaitable[T]], **http_options: Any) -> T:
    """Run coro_fn(http) in a fresh event loop with a fresh HttpClient."""

    async def main() -> T:
        async with HttpClient(**http_options) as http:
            return await coro_fn(http)

    return asyncio.run(main())


async def read_all(client: LogClient, end: int) -> list[RawEntry]:
    entries: list[RawEntry] = []
    async for chunk in client.stream_entries(0, end):
        entries.extend(chunk)
    return entries


@pytest.mark.parametrize("kind", KINDS)
def test_client_reads_every_entry_as_stored(served: Served, kind: str) -> None:
    info = served.infos[kind]

    async def go(http: HttpClient) -> tuple[TreeHead, list[RawEntry], LogClient]:
        client = make_client(info, http, LogBudget(batch_size=100))
        head = await client.get_tree_head()
        return head, await read_all(client, head.tree_size), client

    head, entries, client = run(go)
    assert isinstance(client, Rfc6962Client if kind == "rfc6962" else StaticCtClient)
    assert head.tree_size == ENTRIES
    assert head.root_hash == served.root
    assert [e.index for e in entries] == list(range(ENTRIES))
    assert [(e.leaf_input, e.extra_data) for e in entries] == served.expected
    assert merkle.root_hash([merkle.leaf_hash(e.leaf_input) for e in entries]) == served.root


def test_both_apis_give_the_same_raw_entries(served: Served) -> None:
    async def go(http: HttpClient) -> list[list[RawEntry]]:
        results = []
        for kind in KINDS:
            client = make_client(served.infos[kind], http)
            results.append(await client.fetch_range(250, 530))  # across tile boundaries
        return results

    rfc, static = run(go)
    assert len(rfc) == 280
    assert rfc == static
    assert static[0].index == 250 and static[-1].index == 529


@pytest.mark.parametrize("kind", KINDS)
def test_head_verifies_and_a_flipped_byte_does_not(served: Served, kind: str) -> None:
    info = served.infos[kind]
    head = run(lambda http: make_client(info, http).get_tree_head())
    head.verify(info)
    assert head.timestamp > 1_600_000_000_000

    other_key = LogSigner.generate().public_key
    with pytest.raises(SignatureError):
        head.verify(dataclasses.replace(info, key=other_key, log_id=other_key.log_id))
    # The fields must be what the signed body says.
    with pytest.raises(SignatureError):
        dataclasses.replace(head, tree_size=head.tree_size + 1).verify(info)
    with pytest.raises(SignatureError):
        dataclasses.replace(head, root_hash=bytes(32)).verify(info)

    if kind == "rfc6962":
        body = json.loads(head.raw)
        signature = bytearray(base64.b64decode(body["tree_head_signature"]))
        signature[-1] ^= 1
        body["tree_head_signature"] = base64.b64encode(bytes(signature)).decode()
        flipped = json.dumps(body).encode()
    else:
        text, _, sigs = head.raw.partition(b"\n\n")
        line = sigs.split(b" ")
        blob = bytearray(base64.b64decode(line[-1]))
        blob[-1] ^= 1
        flipped = text + b"\n\n" + b" ".join([*line[:-1], base64.b64encode(bytes(blob)) + b"\n"])
    with pytest.raises((SignatureError, DecodeError)):
        dataclasses.replace(head, raw=flipped).verify(info)


def test_batch_size_is_learned_from_what_the_log_returns(served: Served) -> None:
    """The test log caps get-entries at 256, as Trillian logs do; asked for 1000 the client learns it."""
    info = served.infos["rfc6962"]
    budget = LogBudget(batch_size=1000)

    async def go(http: HttpClient) -> tuple[int, list[RawEntry]]:
        client = make_client(info, http, budget)
        first = await client.get_entries(0, ENTRIES)
        return len(first), await read_all(client, ENTRIES)

    first, entries = run(go)
    assert first == 256
    assert budget.batch_size == 256
    assert [(e.leaf_input, e.extra_data) for e in entries] == served.expected
    # 1 learning request, then 256 + 256 + 188 in aligned chunks: no request wasted on a short answer.
    assert budget.stats.requests == 1 + 3


def test_static_client_fetches_each_issuer_once_and_checks_it(served: Served) -> None:
    info = served.infos["static-ct"]

    async def go(http: HttpClient) -> tuple[int, int]:
        client = make_client(info, http, LogBudget(concurrency=8, requests_per_second=1000))
        assert isinstance(client, StaticCtClient)
        await read_all(client, ENTRIES)
        return client.budget.stats.requests, len(client.issuer_cache)

    requests, issuers = run(go)
    fingerprints = {chain for leaf, extra in served.expected for chain in _chain_fingerprints(leaf, extra)}
    assert issuers == len(fingerprints) > 1
    assert requests == 3 + issuers  # three data tiles, one request per issuer


def _chain_fingerprints(leaf: bytes, extra: bytes) -> list[bytes]:
    import hashlib

    from ctsentinel.ct.tls import PrecertExtraData, decode_extra_data, decode_merkle_tree_leaf

    entry_type = decode_merkle_tree_leaf(leaf).timestamped_entry.entry_type
    decoded = decode_extra_data(entry_type, extra)
    chain = (
        decoded.precertificate_chain if isinstance(decoded, PrecertExtraData) else decoded.certificate_chain
    )
    return [hashlib.sha256(der).digest() for der in chain]


# --- a growing log: consistency proofs and compact ranges --------------------------------------------------


@pytest.fixture(scope="module")
def pki() -> Pki:
    return make_pki("Logs")


def test_consistency_proofs_and_compact_ranges_as_the_log_grows(
    tmp_path: Path, pki: Pki, testlog_factory: Callable[..., BackgroundLog]
) -> None:
    directory = tmp_path / "growing"
    heads: dict[str, list[TreeHead]] = {kind: [] for kind in KINDS}
    port = 0
    for size in (300, 513, 1030):
        with LogStorage.open(directory) as storage:
            have = storage.tree_size
        prefill(directory, pki, n=size - have)
        log = testlog_factory(directory, port=port)
        port = log.port
        infos = log_infos(log)

        async def poll(http: HttpClient, infos: dict[str, LogInfo] = infos) -> dict[str, TreeHead]:
            return {kind: await make_client(infos[kind], http).get_tree_head() for kind in KINDS}

        for kind, head in run(poll).items():
            head.verify(infos[kind])
            assert head.tree_size == size
            heads[kind].append(head)
        if size != 1030:
            log.stop()

    with LogStorage.open(directory) as storage:
        leaves = [merkle.leaf_hash(leaf) for leaf, _ in storage.get_entries(0, 1030)]
    assert [h.root_hash for h in heads["rfc6962"]] == [merkle.root_hash(leaves[:n]) for n in (300, 513, 1030)]
    assert [h.root_hash for h in heads["static-ct"]] == [h.root_hash for h in heads["rfc6962"]]

    sizes = [1, 2, 3, 255, 256, 257, 300, 511, 512, 513, 767, 1024, 1029, 1030]

    async def proofs(http: HttpClient) -> dict[str, dict[tuple[int, int], list[bytes]]]:
        result: dict[str, dict[tuple[int, int], list[bytes]]] = {}
        for kind in KINDS:
            client = make_client(infos[kind], http, LogBudget(concurrency=8, requests_per_second=1000))
            await client.get_tree_head()
            pairs = {}
            for new in (300, 513, 1030):
                for old in [s for s in sizes if s <= new]:
                    pairs[(old, new)] = await client.get_consistency_proof(old, new)
            result[kind] = pairs
        return result

    got = run(proofs)
    for (old, new), proof in got["static-ct"].items():
        assert proof == merkle.consistency_proof(leaves[:new], old), (old, new)
        assert got["rfc6962"][(old, new)] == proof
        merkle.verify_consistency(
            old, new, proof, merkle.root_hash(leaves[:old]), merkle.root_hash(leaves[:new])
        )

    # Between the published heads, with the roots they signed.
    for kind in KINDS:
        for a, b in zip(heads[kind], heads[kind][1:], strict=False):
            merkle.verify_consistency(
                a.tree_size, b.tree_size, got[kind][(a.tree_size, b.tree_size)], a.root_hash, b.root_hash
            )

    async def ranges(http: HttpClient) -> dict[str, list[merkle.CompactRange]]:
        return {
            kind: [await make_client(infos[kind], http).get_compact_range(n) for n in [0, *sizes]]
            for kind in KINDS
        }

    for compact in run(ranges).values():
        assert [r.size for r in compact] == [0, *sizes]
        assert [r.root() for r in compact] == [
            merkle.EMPTY_ROOT,
            *(merkle.root_hash(leaves[:n]) for n in sizes),
        ]


def test_static_client_falls_back_between_partial_and_full_tiles(served: Served) -> None:
    """A client that believes the tree is larger than it is asks for a full tile first, gets a 404, and
    reads the partial one; the entries are the same."""
    info = served.infos["static-ct"]

    async def go(http: HttpClient) -> list[RawEntry]:
        client = make_client(info, http)
        assert isinstance(client, StaticCtClient)
        client._latest_size = 10 * ENTRIES  # as after an unverified (lying) checkpoint
        return await client.fetch_range(600, ENTRIES)

    entries = run(go)
    assert [(e.leaf_input, e.extra_data) for e in entries] == served.expected[600:ENTRIES]
