"""Logs, heads and commit_batch on real SQLite files: exactly-once, deduplication, atomicity."""

from __future__ import annotations

import dataclasses
import sqlite3
from pathlib import Path

import pytest

from ctsentinel.ct.merkle import CompactRange, leaf_hash
from ctsentinel.ct.misbehaviour import MisbehaviourKind
from ctsentinel.store import CommitBatch, Store, StoredEntry, StoreError
from ctsentinel.watch import Finding
from store_certs import Feed, head, issue, log_info, make_ca, pair_entries


@pytest.fixture
def store(tmp_path: Path) -> Store:
    s = Store.open(f"sqlite:///{tmp_path / 'ct.db'}")
    yield s
    s.close()


def _dump(db: Path) -> dict[str, list[tuple[object, ...]]]:
    """Every row of every table (updated_at aside), to compare whole database states."""
    out = {}
    with sqlite3.connect(db) as conn:
        for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name"):
            cols = [c[1] for c in conn.execute(f"PRAGMA table_info({table})") if c[1] != "updated_at"]
            out[table] = sorted(conn.execute(f"SELECT {', '.join(cols)} FROM {table}").fetchall(), key=repr)
    return out


def test_sync_logs_inserts_then_updates(store: Store) -> None:
    info = log_info("argon")
    store.sync_logs([info])
    state = store.log_state(info.log_id)
    assert state is not None
    assert (state.url, state.kind, state.state, state.description) == (
        info.url,
        "rfc6962",
        "usable",
        "argon log",
    )
    assert state.position is None and state.start_index is None and state.compact_range is None
    assert not state.misbehaving and state.errors == 0 and state.entries_processed == 0
    store.sync_logs([dataclasses.replace(info, url="https://moved.example/", state="readonly")])
    states = store.log_states()
    assert [(s.url, s.state) for s in states] == [("https://moved.example/", "readonly")]
    assert store.log_state(b"\x01" * 32) is None


def test_start_log_sets_the_starting_point_once(store: Store) -> None:
    info = log_info("xenon")
    store.sync_logs([info])
    cr = CompactRange()
    cr.extend(leaf_hash(b"%d" % i) for i in range(1000))
    store.start_log(info.log_id, 1000, cr.to_bytes(), head(1000, cr.root(), timestamp=77))
    state = store.log_state(info.log_id)
    assert state is not None
    assert (state.position, state.start_index, state.compact_range) == (1000, 1000, cr.to_bytes())
    assert (state.verified_size, state.verified_root, state.verified_timestamp) == (1000, cr.root(), 77)
    with pytest.raises(StoreError, match="already started"):
        store.start_log(info.log_id, 0, CompactRange().to_bytes(), head(0, CompactRange().root()))
    with pytest.raises(StoreError, match="compact range has size 1000, expected 999"):
        store.start_log(info.log_id, 999, cr.to_bytes(), head(1000, cr.root()))


def test_commit_moves_position_and_stores_rows(store: Store, tmp_path: Path) -> None:
    feed = Feed(store, log_info("nimbus"))
    ca = make_ca("Commit CA")
    i = issue(ca, ["www.example.com", "example.com"], ["192.0.2.7"])
    batch = feed.commit(pair_entries(i), gap=10)
    state = store.log_state(feed.info.log_id)
    assert state is not None
    assert (state.position, state.entries_processed) == (12, 12)
    assert state.compact_range == batch.compact_range
    assert (state.verified_size, state.verified_root) == (
        12,
        CompactRange.from_bytes(batch.compact_range).root(),
    )
    counts = store.counts()
    assert counts["certificates"] == 2 and counts["log_entries"] == 2
    assert counts["cert_names"] == 4 and counts["cert_ips"] == 2
    assert store.certificate_der(bytes.fromhex(i.cert.sha256)) == i.cert_der
    with sqlite3.connect(tmp_path / "ct.db") as conn:
        rows = conn.execute(
            "SELECT idx, entry_type, hex(cert_sha256) FROM log_entries ORDER BY idx"
        ).fetchall()
    assert rows == [(0, "precert", i.precert.sha256.upper()), (1, "x509", i.cert.sha256.upper())]


def test_same_batch_twice_is_refused_and_changes_nothing(store: Store, tmp_path: Path) -> None:
    feed = Feed(store, log_info("oak"))
    i = issue(make_ca("Once CA"), ["once.example"])
    finding = Finding("w", "unauthorized_issuer", "critical", ("once.example",))
    batch = feed.commit(pair_entries(i, [finding]))
    before = _dump(tmp_path / "ct.db")
    with pytest.raises(StoreError) as err:
        store.commit_batch(batch, ())
    assert "\n" not in str(err.value)
    assert "refused: the log is at position 2; nothing committed" in str(err.value)
    assert _dump(tmp_path / "ct.db") == before
    state = store.log_state(feed.info.log_id)
    assert state is not None and state.entries_processed == 2


def test_batch_must_start_at_the_position(store: Store, tmp_path: Path) -> None:
    feed = Feed(store, log_info("birch"))
    feed.commit([], gap=5)
    skipping = feed.batch([], gap=3)
    ahead = dataclasses.replace(skipping, start=6)  # a gap of one entry would lose it
    before = _dump(tmp_path / "ct.db")
    with pytest.raises(StoreError, match=r"batch \[6, 8\) refused: the log is at position 5"):
        store.commit_batch(ahead, ())
    unknown = dataclasses.replace(skipping, log_id=b"\x07" * 32)
    with pytest.raises(StoreError, match="not in the store"):
        store.commit_batch(unknown, ())
    info = log_info("unstarted")
    store.sync_logs([info])
    before = _dump(tmp_path / "ct.db")
    with pytest.raises(StoreError, match="not started"):
        store.commit_batch(dataclasses.replace(skipping, log_id=info.log_id), ())
    assert _dump(tmp_path / "ct.db") == before


def test_dedup_across_logs(store: Store) -> None:
    """The same certificate in two logs: one certificate row, two entry rows, names indexed once."""
    i = issue(make_ca("Dedup CA"), ["dup.example", "www.dup.example"], ["2001:db8::1"])
    one, two = Feed(store, log_info("one")), Feed(store, log_info("two"))
    one.commit([("x509", i.cert, i.cert_der, [])], gap=3)
    two.commit([], gap=7)
    two.commit([("x509", i.cert, i.cert_der, [])])
    counts = store.counts()
    assert (counts["certificates"], counts["log_entries"], counts["cert_names"], counts["cert_ips"]) == (
        1,
        2,
        2,
        1,
    )
    [found] = store.search("dup.example")
    assert found.fingerprints == (i.cert.sha256,)
    assert [entry.to_json() for entry in found.entries] == [
        {"log": "https://one.example/", "index": 0, "type": "cert"},
        {"log": "https://two.example/", "index": 7, "type": "cert"},
    ]


def test_failed_commit_leaves_nothing(store: Store, tmp_path: Path) -> None:
    """An exception midway (a bad object after good ones: certificates already inserted) rolls back all."""
    feed = Feed(store, log_info("ash"))
    i = issue(make_ca("Atomic CA"), ["atomic.example"], ["198.51.100.1"])
    good = pair_entries(i, [Finding("w", "unauthorized_issuer", "critical", ("atomic.example",))])
    batch = feed.batch(good, gap=2)
    before = _dump(tmp_path / "ct.db")

    class Exploding:
        watch, reason, matched = "w", "x", ()

        @property
        def severity(self) -> str:
            raise RuntimeError("injected failure")

    broken_entries = [*batch.entries[:1], dataclasses.replace(batch.entries[1], findings=[Exploding()])]
    with pytest.raises(RuntimeError, match="injected failure"):
        store.commit_batch(dataclasses.replace(batch, entries=broken_entries), ())
    assert _dump(tmp_path / "ct.db") == before
    bad_type = [dataclasses.replace(batch.entries[0], entry_type="x509_entry")]
    with pytest.raises(StoreError, match="has type 'x509_entry'"):
        store.commit_batch(dataclasses.replace(batch, entries=bad_type), ())
    out_of_range = [dataclasses.replace(batch.entries[0], index=4)]
    with pytest.raises(StoreError, match="index 4 is out of range"):
        store.commit_batch(dataclasses.replace(batch, entries=out_of_range), ())
    assert _dump(tmp_path / "ct.db") == before
    store.commit_batch(batch, ())  # the intact batch still goes in afterwards
    assert store.counts()["log_entries"] == 2


def test_commit_checks_its_range_and_head(store: Store) -> None:
    feed = Feed(store, log_info("elm"))
    batch = feed.batch([], gap=4)
    with pytest.raises(StoreError, match="compact range has size 4, expected 5"):
        store.commit_batch(dataclasses.replace(batch, end=5), ())
    with pytest.raises(StoreError, match="does not decode"):
        store.commit_batch(dataclasses.replace(batch, compact_range=batch.compact_range[:-1]), ())
    with pytest.raises(StoreError, match="beyond its head of size 3"):
        store.commit_batch(dataclasses.replace(batch, head=head(3, b"\0" * 32)), ())


def test_tree_heads_are_idempotent_and_verified_head_only_moves_forward(store: Store) -> None:
    info = log_info("pine")
    store.sync_logs([info])
    h10, h20 = head(10, b"\x0a" * 32, 1000), head(20, b"\x14" * 32, 2000)
    store.record_tree_head(info.log_id, h20, verified=False)
    store.record_tree_head(info.log_id, h20, verified=False)
    store.record_tree_head(info.log_id, h10, verified=True)
    store.record_tree_head(info.log_id, h20, verified=True)  # the same head, now verified
    store.record_tree_head(info.log_id, h10, verified=True)  # older: does not move it back
    heads = store.tree_heads(info.log_id)
    assert [(h.tree_size, h.verified, h.raw) for h in heads] == [
        (10, True, h10.raw),
        (20, True, h20.raw),
    ]
    state = store.log_state(info.log_id)
    assert state is not None
    assert (state.verified_size, state.verified_root, state.verified_timestamp) == (20, h20.root_hash, 2000)
    assert (state.latest_size, state.latest_timestamp) == (20, 2000)
    fork = head(20, b"\xff" * 32, 3000)
    store.record_tree_head(info.log_id, fork, verified=False)  # evidence kept, verified head unchanged
    assert len(store.tree_heads(info.log_id)) == 3
    state = store.log_state(info.log_id)
    assert state is not None and state.verified_root == h20.root_hash


def test_misbehaviour_and_errors(store: Store) -> None:
    info = log_info("fir")
    store.sync_logs([info])
    a, b = head(10, b"\x01" * 32), head(10, b"\x02" * 32)
    store.record_misbehaviour(
        info.log_id,
        MisbehaviourKind.FORK,
        "two roots at size 10",
        {"old": a, "new": b, "index": 10, "hashes": [b"\xab\xcd"]},
    )
    store.record_error(info.log_id, "https://fir.example/: HTTP 503 after 6 tries\nsecond line")
    store.record_error(info.log_id, "timeout")
    state = store.log_state(info.log_id)
    assert state is not None
    assert state.misbehaving and state.errors == 2 and state.last_error == "timeout"
    [m] = store.misbehaviour(info.log_id)
    assert (m.kind, m.detail) == ("fork", "two roots at size 10")
    evidence = m.evidence
    assert isinstance(evidence, dict)
    assert evidence["old"]["root_hash"] == "01" * 32 and evidence["new"]["root_hash"] == "02" * 32
    assert evidence["old"]["raw"] == a.raw.hex()
    assert evidence["index"] == 10 and evidence["hashes"] == ["abcd"]


def test_concurrent_reader_sees_committed_batches_only(store: Store, tmp_path: Path) -> None:
    """A second Store on the same file (the `logs` command during `run`) reads while batches commit."""
    feed = Feed(store, log_info("cedar"))
    i = issue(make_ca("Reader CA"), ["reader.example"])
    with Store.open(str(tmp_path / "ct.db")) as reader:
        feed.commit(pair_entries(i))
        state = reader.log_state(feed.info.log_id)
        assert state is not None and state.position == 2
        assert len(reader.search("reader.example")) == 1


def test_stored_entry_without_der(store: Store) -> None:
    feed = Feed(store, log_info("spruce"))
    i = issue(make_ca("NoDer CA"), ["noder.example"])
    feed.commit([("x509", i.cert, None, [])])
    assert store.certificate_der(bytes.fromhex(i.cert.sha256)) is None
    assert store.search("noder.example")[0].fingerprints == (i.cert.sha256,)


def test_commit_batch_is_a_documented_dataclass() -> None:
    """The monitor builds these positionally, as documented."""
    cr = CompactRange()
    batch = CommitBatch(b"\0" * 32, 0, 0, cr.to_bytes(), head(0, cr.root()), [])
    assert batch.entries == []
    i = issue(make_ca("Doc CA"), ["doc.example"])
    entry = StoredEntry(0, "x509", 1, i.cert, i.cert_der, [])
    assert entry.findings == []


def test_two_writers_on_one_file_serialize(tmp_path: Path) -> None:
    """Two processes' worth of writers (two Stores, two threads) interleave batches without a
    "database is locked" error: write transactions take the lock up front and wait for it."""
    import threading

    db = str(tmp_path / "ct.db")
    stores = [Store.open(db), Store.open(db)]
    feeds = [Feed(stores[0], log_info("w1")), Feed(stores[1], log_info("w2"))]
    ca = make_ca("Writers CA")
    work = [[issue(ca, [f"w{k}-{n}.example"]) for n in range(15)] for k in range(2)]
    errors: list[BaseException] = []

    def writer(k: int) -> None:
        try:
            for i in work[k]:
                feeds[k].commit(pair_entries(i), gap=1)
                stores[k].log_states()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert stores[0].counts()["log_entries"] == 60
    assert [s.position for s in stores[1].log_states()] == [45, 45]
    for s in stores:
        s.close()


def test_malformed_certificate_is_kept_with_its_error(store: Store) -> None:
    """A truncated certificate decodes partly: it is stored with its error, found by its name and hash,
    and (issuer key unknown) forms an issuance of its own."""
    from ctsentinel.certs.decode import record_from_der

    i = issue(make_ca("Broken CA"), ["broken.example"])
    der = i.cert_der[:200]
    record = record_from_der(der)
    assert record.error and record.issuer_spki_sha256 is None and record.dns_names == ["broken.example"]
    finding = Finding("w", "malformed", "high", ("broken.example",))
    Feed(store, log_info("malformed")).commit([("x509", record, der, [finding])])
    [found] = store.search("broken.example")
    assert found.record.error == record.error and found.fingerprints == (record.sha256,)
    assert store.search(f"sha256:{record.sha256}") == [found]
    [alert] = [a.to_json() for a in store.list_alerts()]
    assert (alert["reason"], alert["serial"], alert["issuer_spki_sha256"]) == (
        "malformed",
        record.serial,
        None,
    )
    assert store.certificate_der(bytes.fromhex(record.sha256)) == der
