"""The decode worker on real log entries: what crosses back, in-process and through the process pool."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import pickle
from pathlib import Path

from ctsentinel.config import parse_config
from ctsentinel.ct.entries import EntryApi, EntryBody
from ctsentinel.ct.merkle import leaf_hashes, root_hash
from ctsentinel.monitor.decode_pool import Decoded, DecodePool, Outcome
from ctsentinel.monitor.decode_worker import Matcher, Worker
from ctsentinel.watch import Watchlist

DATA = Path(__file__).parent / "data" / "monitor"


def entries() -> list[tuple[int, bytes, bytes]]:
    items = []
    for name in ("get-entries_0_3.json", "ctgo-client-test_precert-entry.json"):
        for entry in json.loads((DATA / name).read_text())["entries"]:
            leaf, extra = base64.b64decode(entry["leaf_input"]), base64.b64decode(entry["extra_data"])
            items.append((len(items), leaf, extra))
    return items


def answer(items: list[tuple[int, bytes, bytes]]) -> EntryBody:
    """A get-entries answer holding `items` (consecutive, from the first one's index), as a log sends it."""
    document = {
        "entries": [
            {"leaf_input": base64.b64encode(leaf).decode(), "extra_data": base64.b64encode(extra).decode()}
            for _, leaf, extra in items
        ]
    }
    return EntryBody(EntryApi.RFC6962, "test", items[0][0], len(items), json.dumps(document).encode())


def decode_batch(items: list[tuple[int, bytes, bytes]], matcher: Matcher | None, store_all: bool) -> Outcome:
    worker = Worker()
    worker.matcher, worker.store_all = matcher, store_all
    return worker.process(answer(items), {})


def watchlist() -> Watchlist:
    config = parse_config('[[watch]]\nname = "racing"\ndomains = ["netkeiba.com"]\n', Path("x.toml"))
    return Watchlist.from_config(config.watches)


def test_leaf_hashes_give_the_real_pilot_root() -> None:
    pilot = entries()[:4]
    hashes = leaf_hashes(leaf for _, leaf, _ in pilot)
    assert base64.b64encode(root_hash(hashes)).decode() == "A26tmgcaUJpkFXFpkzCS8bJ29cQBEgExKAYFL8hiJ5E="
    # The decode process hashes every leaf of an answer, matched or not, in log order.
    outcome = decode_batch(pilot, watchlist(), False)
    assert outcome.entries == 4 and outcome.leaf_hashes == b"".join(hashes)


def check(decoded: Decoded) -> None:
    assert decoded.cert_der is not None
    assert hashlib.sha256(decoded.cert_der).hexdigest() == decoded.record.sha256


def test_only_what_matters_crosses_back() -> None:
    items = entries()
    (hit,) = decode_batch(items, watchlist(), False).decoded
    assert hit.entry_index == 2 and hit.entry_type == "x509" and hit.record.dns_names == ["www.netkeiba.com"]
    assert [(f.watch, f.matched) for f in hit.findings] == [("racing", ("www.netkeiba.com",))]
    assert 1364256000000 <= hit.timestamp < 1364342400000  # 2013-03-26, from the leaf
    check(hit)

    every = decode_batch(items, None, True).decoded
    assert [d.entry_index for d in every] == [0, 1, 2, 3, 4]
    assert [d.entry_type for d in every] == ["x509"] * 4 + ["precert"]
    assert every[4].record.precert and "sdfedsf.trust" in every[4].record.dns_names
    assert all(d.findings == [] for d in every)
    for decoded in every:
        check(decoded)


def test_a_corrupted_certificate_is_kept_with_its_error() -> None:
    index, leaf, extra = entries()[0]
    # Byte 15 starts the certificate's DER inside the MerkleTreeLeaf: break the outer SEQUENCE tag.
    assert leaf[15] == 0x30
    broken = leaf[:15] + b"\x31" + leaf[16:]
    assert decode_batch([(index, leaf, extra)], watchlist(), False).decoded == []
    (kept,) = decode_batch([(index, broken, extra)], watchlist(), False).decoded
    assert kept.record.error and kept.findings == []
    assert kept.record.sha256 == hashlib.sha256(broken[15:-2]).hexdigest()  # 2 bytes: empty extensions


def test_a_malformed_answer_is_one_line_and_nothing_else() -> None:
    worker = Worker()
    truncated = answer(entries())
    truncated = EntryBody(truncated.api, "u", 0, 5, truncated.body[:100])
    outcome = worker.process(truncated, {})
    assert outcome.entries == 0 and outcome.error is not None and outcome.error.startswith("truncated JSON (")
    too_many = EntryBody(EntryApi.RFC6962, "u", 0, 2, answer(entries()).body)
    assert worker.process(too_many, {}).error == "5 entries returned for 2 asked"


def test_the_pool_returns_what_the_worker_does() -> None:
    items = [(i, leaf, extra) for i, (_, leaf, extra) in enumerate(entries() * 200)]
    expected = [decode_batch(items[i : i + 250], watchlist(), False) for i in range(0, 1000, 250)]

    async def pooled() -> list[Outcome]:
        pool = DecodePool(2, watchlist(), False)
        try:
            answers = [answer(items[i : i + 250]) for i in range(0, 1000, 250)]
            return await asyncio.gather(*(pool.process(a) for a in answers))
        finally:
            await pool.close()

    got = asyncio.run(pooled())
    decoded = [d for outcome in got for d in outcome.decoded]
    assert [d.entry_index for d in decoded] == [i for i in range(1000) if i % 5 == 2]
    assert [(d.entry_index, d.record.sha256, d.findings) for d in decoded] == [
        (d.entry_index, d.record.sha256, d.findings) for outcome in expected for d in outcome.decoded
    ]
    assert b"".join(o.leaf_hashes for o in got) == b"".join(leaf_hashes(leaf for _, leaf, _ in items))
    # Only the matched fifth comes back, without the chains: far less than what went out.
    assert len(pickle.dumps(decoded)) * 4 < sum(len(leaf) + len(extra) for _, leaf, extra in items)


def test_a_dead_worker_is_replaced() -> None:
    import os
    import signal

    import pytest

    from ctsentinel.monitor.decode_pool import PoolError

    items = [(i, leaf, extra) for i, (_, leaf, extra) in enumerate(entries() * 100)]

    async def scenario() -> Outcome:
        pool = DecodePool(1, watchlist(), False)
        try:
            assert len((await pool.process(answer(items))).decoded) == 100
            for pid in pool.pids:
                os.kill(pid, signal.SIGKILL)
            with pytest.raises(PoolError, match="decode process died"):
                await pool.process(answer(items))
            return await pool.process(answer(items))
        finally:
            await pool.close()

    assert [d.entry_index for d in asyncio.run(scenario()).decoded] == list(range(2, 500, 5))
