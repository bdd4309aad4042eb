"""certs.decode.match_view, the monitor's fast path for the entries that match nothing: it must agree with
record_from_entry on names, addresses and issuer, and it must give up (None) wherever the full record has
an error, so that no malformed entry is ever dropped. Checked on a generated log, real log entries, and
thousands of mutated entries."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest

from ctsentinel.certs.decode import match_view, record_from_entry
from ctsentinel.testlog.populate import populate
from ctsentinel.testlog.storage import LogStorage

DATA = Path(__file__).parent / "data" / "monitor"


@pytest.fixture(scope="module")
def entries(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[bytes, bytes]]:
    directory = tmp_path_factory.mktemp("match-view") / "log"
    populate(directory, entries=300, scenario="fina-1.1.1.1", seed=5)
    with LogStorage.open(directory) as storage:
        pairs = storage.get_entries(0, storage.tree_size - 1)
    for name in ("get-entries_0_3.json", "ctgo-client-test_precert-entry.json"):
        for entry in json.loads((DATA / name).read_text())["entries"]:
            pairs.append((base64.b64decode(entry["leaf_input"]), base64.b64decode(entry["extra_data"])))
    return pairs


def agrees(leaf: bytes, extra: bytes) -> bool:
    """True when the fast path took the entry (and then it must agree with the record); False when it gave
    up. Fails the test if it took an entry whose record has an error."""
    view = match_view(leaf, extra)
    if view is None:
        return False
    record = record_from_entry(leaf, extra, verify_issuer=False)
    assert record.error is None, record.error
    assert (view.dns_names, view.ip_addresses, view.issuer, view.precert) == (
        record.dns_names,
        record.ip_addresses,
        record.issuer,
        record.precert,
    )
    if leaf[11] == 1:  # a precertificate entry states its issuer's key hash
        assert view.issuer_key_hash == record.issuer_spki_sha256
    else:
        assert view.issuer_key_hash is None
    return True


def test_every_well_formed_entry_takes_the_fast_path_and_agrees(entries: list[tuple[bytes, bytes]]) -> None:
    for leaf, extra in entries:
        record = record_from_entry(leaf, extra, verify_issuer=False)
        assert agrees(leaf, extra) == (record.error is None)
    assert sum(agrees(leaf, extra) for leaf, extra in entries) >= len(entries) - 5


def test_mutated_entries_are_never_dropped(entries: list[tuple[bytes, bytes]]) -> None:
    rng = random.Random(11)
    taken = given_up = 0
    for _ in range(4000):
        leaf, extra = rng.choice(entries)
        mutated = [bytearray(leaf), bytearray(extra)]
        for _ in range(rng.randint(1, 3)):
            target = mutated[0] if rng.random() < 0.8 or not mutated[1] else mutated[1]
            position = rng.randrange(len(target))
            choice = rng.random()
            if choice < 0.6:
                target[position] = rng.randrange(256)
            elif choice < 0.8:
                del target[position : position + rng.randint(1, 4)]
            else:
                target[position:position] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 4)))
        if agrees(bytes(mutated[0]), bytes(mutated[1])):
            taken += 1
        else:
            given_up += 1
    # Both branches are exercised (many flips land in bytes that change nothing structural).
    assert taken > 500 and given_up > 500
