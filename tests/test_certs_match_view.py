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

from ctsentinel.certs.decode import logged_der, match_view, record_from_entry
from ctsentinel.ct.errors import CTError
from ctsentinel.ct.tls import LogEntryType, PrecertExtraData, decode_extra_data, decode_merkle_tree_leaf
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


def logged_slowly(leaf: bytes, extra: bytes) -> bytes | None:
    """What the log holds as the entry's certificate, through the TLS structures (a certificate's chain
    does not matter; a precertificate is in its extra_data); None if they refuse."""
    try:
        entry = decode_merkle_tree_leaf(leaf).timestamped_entry
        if entry.entry_type != LogEntryType.PRECERT_ENTRY:
            return entry.signed_entry
        chain = decode_extra_data(entry.entry_type, extra)
    except CTError:
        return None
    return chain.pre_certificate if isinstance(chain, PrecertExtraData) else None


def test_logged_der_is_what_the_tls_structures_hold(entries: list[tuple[bytes, bytes]]) -> None:
    # Read by lengths alone (the store keeps it for every certificate with store = "all"): it must give
    # the same bytes as the full TLS decoding, or None, never other bytes, however the entry is mangled.
    for leaf, extra in entries:
        assert logged_der(leaf, extra) == logged_slowly(leaf, extra) is not None
    rng = random.Random(12)
    same = 0
    for _ in range(4000):
        leaf, extra = (bytearray(part) for part in rng.choice(entries))
        target = leaf if rng.random() < 0.5 or not extra else extra
        position = rng.randrange(len(target))
        if rng.random() < 0.7:
            target[position] = rng.randrange(256)
        else:
            del target[position : position + rng.randint(1, 4)]
        fast = logged_der(bytes(leaf), bytes(extra))
        if fast is not None:
            assert fast == logged_slowly(bytes(leaf), bytes(extra))
            same += 1
    assert same > 500
