"""Hostile input: random bytes, truncations and mutations of real certificates and entries never make the
decoders raise; they always return a CertRecord whose error is None or one line."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ctsentinel.certs.decode import record_from_der, record_from_entry, record_from_tile_leaf
from ctsentinel.certs.record import CertRecord
from ctsentinel.ct.tiles import TileLeaf, decode_data_tile
from ctsentinel.ct.tls import TimestampedEntry
from test_certs_corpus import CORPUS_CERTS

DATA = Path(__file__).parent / "data" / "certs"
FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# A spread of real certificates: every 7th of the corpus (malformed ones included), about 50.
SAMPLE = [der for _, _, der in CORPUS_CERTS[::7]]


def _entries() -> list[tuple[bytes, bytes]]:
    out = []
    for name in (
        "get-entries_0_3.json",
        "ctgo-client-test_x509-entry.json",
        "ctgo-client-test_precert-entry.json",
    ):
        doc = json.loads((DATA / "entries" / name).read_text())
        out += [
            (base64.b64decode(e["leaf_input"]), base64.b64decode(e["extra_data"])) for e in doc["entries"]
        ]
    return out


ENTRIES = _entries()
TILE = decode_data_tile((DATA / "navigli" / "tile" / "data" / "000").read_bytes())[:16]


def well_formed(r: CertRecord, data: bytes | None = None) -> None:
    assert isinstance(r, CertRecord)
    if data is not None:
        assert r.sha256 == hashlib.sha256(data).hexdigest()
    assert r.error is None or (r.error and "\n" not in r.error and "\r" not in r.error)
    # The broad last-resort handler must not be what caught it: problems get precise messages.
    assert r.error is None or "internal error" not in r.error
    json.dumps(r.to_json())
    assert all(isinstance(n, str) for n in r.dns_names + r.ip_addresses + r.unicode_names)


def mutate(data: bytes, edits: list[tuple[int, int]]) -> bytes:
    buf = bytearray(data)
    for position, value in edits:
        buf[position % len(buf)] = value
    return bytes(buf)


EDITS = st.lists(st.tuples(st.integers(0, 1 << 16), st.integers(0, 255)), min_size=1, max_size=6)


@FUZZ
@given(st.binary(max_size=600))
def test_random_bytes(data: bytes) -> None:
    well_formed(record_from_der(data), data)


@FUZZ
@given(st.binary(min_size=1, max_size=64))
def test_random_bytes_behind_a_sequence_header(tail: bytes) -> None:
    data = b"\x30\x82" + len(tail).to_bytes(2, "big") + tail
    well_formed(record_from_der(data), data)


@FUZZ
@given(st.sampled_from(SAMPLE), st.floats(0, 1))
def test_truncations(der: bytes, fraction: float) -> None:
    cut = der[: int(len(der) * fraction)]
    well_formed(record_from_der(cut), cut)


@FUZZ
@given(st.sampled_from(SAMPLE), EDITS)
def test_mutations(der: bytes, edits: list[tuple[int, int]]) -> None:
    bad = mutate(der, edits)
    well_formed(record_from_der(bad), bad)


@FUZZ
@given(st.sampled_from(SAMPLE), st.integers(0, 1 << 16), st.binary(min_size=1, max_size=8))
def test_insertions(der: bytes, position: int, junk: bytes) -> None:
    at = position % len(der)
    bad = der[:at] + junk + der[at:]
    well_formed(record_from_der(bad), bad)


@FUZZ
@given(st.sampled_from(ENTRIES), EDITS, st.booleans())
def test_entry_mutations(entry: tuple[bytes, bytes], edits: list[tuple[int, int]], in_leaf: bool) -> None:
    leaf, extra = entry
    if in_leaf:
        leaf = mutate(leaf, edits)
    else:
        extra = mutate(extra, edits)
    well_formed(record_from_entry(leaf, extra))


@FUZZ
@given(st.sampled_from(ENTRIES), st.floats(0, 1), st.floats(0, 1))
def test_entry_truncations(entry: tuple[bytes, bytes], leaf_part: float, extra_part: float) -> None:
    leaf, extra = entry
    well_formed(record_from_entry(leaf[: int(len(leaf) * leaf_part)], extra[: int(len(extra) * extra_part)]))


@FUZZ
@given(st.sampled_from(TILE), EDITS)
def test_tile_leaf_mutations(leaf: TileLeaf, edits: list[tuple[int, int]]) -> None:
    entry = leaf.timestamped_entry
    bad = TimestampedEntry(
        entry.timestamp,
        entry.entry_type,
        mutate(entry.signed_entry, edits),
        entry.issuer_key_hash,
        entry.extensions,
    )
    well_formed(record_from_tile_leaf(TileLeaf(bad, leaf.pre_certificate, leaf.chain_fingerprints)))
