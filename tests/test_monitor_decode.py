"""The decode worker on real log entries: what crosses back, in-process and through the process pool."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import pickle
from pathlib import Path

from ctsentinel.config import parse_config
from ctsentinel.ct.merkle import leaf_hashes, root_hash
from ctsentinel.monitor.decode_pool import Decoded, DecodePool, decode_batch, init_worker
from ctsentinel.watch import Watchlist

DATA = Path(__file__).parent / "data" / "monitor"


def entries() -> list[tuple[int, bytes, bytes]]:
    items = []
    for name in ("get-entries_0_3.json", "ctgo-client-test_precert-entry.json"):
        for entry in json.loads((DATA / name).read_text())["entries"]:
            leaf, extra = base64.b64decode(entry["leaf_input"]), base64.b64decode(entry["extra_data"])
            items.append((len(items), leaf, extra))
    return items


def watchlist() -> Watchlist:
    config = parse_config('[[watch]]\nname = "racing"\ndomains = ["netkeiba.com"]\n', Path("x.toml"))
    return Watchlist.from_config(config.watches)


def test_leaf_hashes_give_the_real_pilot_root() -> None:
    pilot = entries()[:4]
    hashes = leaf_hashes(leaf for _, leaf, _ in pilot)
    assert base64.b64encode(root_hash(hashes)).decode() == "A26tmgcaUJpkFXFpkzCS8bJ29cQBEgExKAYFL8hiJ5E="


def check(decoded: Decoded) -> None:
    assert decoded.cert_der is not None
    assert hashlib.sha256(decoded.cert_der).hexdigest() == decoded.record.sha256


def test_only_what_matters_crosses_back() -> None:
    items = entries()
    init_worker(watchlist(), False, 0)
    (hit,) = decode_batch(items)
    assert hit.entry_index == 2 and hit.entry_type == "x509" and hit.record.dns_names == ["www.netkeiba.com"]
    assert [(f.watch, f.matched) for f in hit.findings] == [("racing", ("www.netkeiba.com",))]
    assert 1364256000000 <= hit.timestamp < 1364342400000  # 2013-03-26, from the leaf
    check(hit)

    init_worker(None, True, 0)
    every = decode_batch(items)
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
    init_worker(watchlist(), False, 0)
    assert decode_batch([(index, leaf, extra)]) == []
    (kept,) = decode_batch([(index, broken, extra)])
    assert kept.record.error and kept.findings == []
    assert kept.record.sha256 == hashlib.sha256(broken[15:-2]).hexdigest()  # 2 bytes: empty extensions


def test_the_pool_returns_what_the_worker_function_does() -> None:
    items = entries() * 200  # 1000 entries: split across both processes
    items = [(i, leaf, extra) for i, (_, leaf, extra) in enumerate(items)]
    init_worker(watchlist(), False, 0)
    expected = decode_batch(items)

    async def pooled() -> list[Decoded]:
        pool = DecodePool(2, watchlist(), False)
        try:
            return await pool.decode(items)
        finally:
            pool.close()

    got = asyncio.run(pooled())
    assert [d.entry_index for d in got] == [i for i in range(1000) if i % 5 == 2]
    assert [(d.entry_index, d.record.sha256, d.findings) for d in got] == [
        (d.entry_index, d.record.sha256, d.findings) for d in expected
    ]
    # Only the matched fifth comes back, without the chains: far less than what went out.
    assert len(pickle.dumps(got)) * 4 < sum(len(leaf) + len(extra) for _, leaf, extra in items)


def test_a_dead_worker_is_replaced() -> None:
    import os
    import signal

    import pytest

    from ctsentinel.monitor.decode_pool import PoolError

    items = [(i, leaf, extra) for i, (_, leaf, extra) in enumerate(entries() * 100)]

    async def scenario() -> list[Decoded]:
        pool = DecodePool(1, watchlist(), False)
        try:
            assert len(await pool.decode(items)) == 100
            for pid in list(pool._executor._processes):  # type: ignore[attr-defined]
                os.kill(pid, signal.SIGKILL)
            with pytest.raises(PoolError, match="decode process died"):
                await pool.decode(items)
            return await pool.decode(items)
        finally:
            pool.close()

    assert [d.entry_index for d in asyncio.run(scenario())] == list(range(2, 500, 5))
