"""A real static-ct data tile (Navigli2025h2, 256 precertificates) stored entry by entry, then found again
by every name that Sunlight's own names tile says each entry carries."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from ctsentinel.certs.decode import record_from_tile_leaf
from ctsentinel.ct.merkle import CompactRange, leaf_hash
from ctsentinel.ct.tiles import decode_data_tile
from ctsentinel.store import CommitBatch, Store, StoredEntry
from store_certs import head, log_info

TILE = Path(__file__).parent / "data" / "store" / "navigli" / "tile"
CHUNK = 100


@pytest.fixture(scope="module")
def navigli(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, list[dict[str, object]]]]:
    leaves = decode_data_tile((TILE / "data" / "000").read_bytes())
    names = [json.loads(line) for line in (TILE / "names" / "000").read_text().splitlines()]
    assert len(leaves) == len(names) == 256
    store = Store.open(str(tmp_path_factory.mktemp("navigli") / "ct.db"))
    info = log_info("navigli", kind="static-ct")
    store.sync_logs([info])
    cr = CompactRange()
    store.start_log(info.log_id, 0, cr.to_bytes(), head(0, cr.root()))
    for start in range(0, 256, CHUNK):
        part = leaves[start : start + CHUNK]
        entries = []
        for offset, leaf in enumerate(part):
            record = record_from_tile_leaf(leaf)
            assert leaf.leaf_index == start + offset
            entries.append(
                StoredEntry(
                    leaf.leaf_index,
                    "precert",
                    leaf.timestamped_entry.timestamp,
                    record,
                    leaf.pre_certificate,
                    [],
                )
            )
            cr.append(leaf_hash(leaf.merkle_tree_leaf()))
        store.commit_batch(
            CommitBatch(info.log_id, start, cr.size, cr.to_bytes(), head(cr.size, cr.root()), entries), ()
        )
    yield store, names
    store.close()


def test_every_entry_is_stored_once(navigli: tuple[Store, list[dict[str, object]]]) -> None:
    store, _ = navigli
    counts = store.counts()
    assert counts["log_entries"] == 256 and counts["certificates"] == 256
    [state] = store.log_states()
    assert state.position == 256 and state.entries_processed == 256 and state.kind == "static-ct"


def test_found_by_every_name_the_names_tile_lists(navigli: tuple[Store, list[dict[str, object]]]) -> None:
    store, names = navigli
    checked = 0
    for index, line in enumerate(names):
        dns = line.get("DNS") or []
        assert isinstance(dns, list)
        for name in {str(n).lower() for n in dns}:
            query = name[2:] if name.startswith("*.") else name  # a wildcard is found under its domain
            hits = store.search(query, limit=1000)
            carried = {(e.index, e.type.json_name) for r in hits for e in r.entries}
            assert (index, "precert") in carried, (index, name)
            checked += 1
    assert checked > 256


def test_timestamps_and_issuers_agree_with_the_names_tile(
    navigli: tuple[Store, list[dict[str, object]]],
) -> None:
    store, names = navigli
    results = store.search("issuer:(STAGING)", limit=1000)
    by_index = {e.index: r.record for r in results for e in r.entries}
    assert len(by_index) == 256  # every entry is a Let's Encrypt staging precertificate
    first = by_index[0]
    assert first.dns_names[0] == str(names[0]["DNS"][0]).lower()  # type: ignore[index]
    assert first.precert is True and first.error is None
