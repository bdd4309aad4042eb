"""The test log's durable state in DIR: its key, its entries, its Merkle tree and its tree heads.

Layout of DIR:
  key.pem   the log's ECDSA P-256 private key (mode 0600)
  log.db    SQLite (WAL):
            meta(name, value)                   format version, public key, default origin
            entries(idx, leaf_input, pre_certificate, chain, hash_prefix)
                                                leaf_input: the MerkleTreeLeaf exactly as hashed;
                                                chain: SHA-256 of each issuer, 32 bytes each;
                                                hash_prefix: leaf hash's first 8 bytes (get-proof-by-hash)
            issuers(fingerprint, der, root)     every issuer certificate once; root=1 if it ended a chain
            tiles(id, hashes)                   tlog-tiles hash tiles, id = level << 48 | index (see tree.py)
            tree_heads(id, tree_size, timestamp, root, signature)   every STH the log signed, in order

One tree serves both APIs. Every leaf carries the static-ct-api leaf_index extension in its CtExtensions
(as Sunlight's logs do), so the RFC 6962 get-entries leaf_input, the SCT extensions and the data tile's
TimestampedEntry are the same bytes and hash to the same root. An entry's index is assigned when it is
added (so its SCT can carry the index); it becomes visible when integrate() publishes a tree head over it.
Issuer chains are stored once per issuer, not per entry, which keeps a million-entry log small; the
RFC 6962 extra_data is rebuilt from them on read.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import os
import sqlite3
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ctsentinel.ct.checkpoint import Checkpoint
from ctsentinel.ct.merkle import HASH_SIZE, leaf_hash
from ctsentinel.ct.note import NoteSignature, format_note, rfc6962_key_id
from ctsentinel.ct.signatures import LogSigner
from ctsentinel.ct.sth import SignedTreeHead
from ctsentinel.ct.tiles import encode_leaf_index_extension
from ctsentinel.ct.tls import (
    DigitallySigned,
    HashAlgorithm,
    MerkleTreeLeaf,
    SignatureAlgorithm,
    SignedCertificateTimestamp,
    TimestampedEntry,
    X509ExtraData,
    encode_extra_data,
    sct_signature_input,
    sth_signature_input,
)
from ctsentinel.testlog.chains import ChainChecker, CheckedChain, SubmissionError
from ctsentinel.testlog.malform import (
    add_dns_name,
    add_dns_name_to_tbs,
    corrupt_certificate,
    corrupt_tbs,
    long_dns_name,
)
from ctsentinel.testlog.tree import (
    FULL_TILE_BYTES,
    TreeReader,
    append_leaf_hashes,
)

__all__ = ["DEFAULT_ORIGIN", "LogStorage", "StorageError", "Submission", "SubmissionError"]

DEFAULT_ORIGIN = "127.0.0.1/testlog"
KEY_FILE = "key.pem"
DB_FILE = "log.db"
_FORMAT = "1"
_TILE_ID_SHIFT = 48
_MAX_LEAF_INDEX = (1 << 40) - 1  # leaf_index is a uint40
_INTEGRATE_CHUNK = 1 << 16
_TILE_CACHE_LIMIT = 4096  # full tiles are immutable; 4096 of them are 32 MiB
_CHAIN_CACHE_LIMIT = 4096  # distinct issuer chains whose encoding is kept

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS entries (
    idx INTEGER PRIMARY KEY,
    leaf_input BLOB NOT NULL,
    pre_certificate BLOB,
    chain BLOB NOT NULL,
    hash_prefix INTEGER NOT NULL
);
CREATE INDEX IF NOT EXISTS entries_by_hash ON entries(hash_prefix);
CREATE TABLE IF NOT EXISTS issuers (
    fingerprint BLOB PRIMARY KEY,
    der BLOB NOT NULL,
    root INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tiles (id INTEGER PRIMARY KEY, hashes BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS tree_heads (
    id INTEGER PRIMARY KEY,
    tree_size INTEGER NOT NULL,
    timestamp INTEGER NOT NULL,
    root BLOB NOT NULL,
    signature BLOB NOT NULL
);
"""


class StorageError(Exception):
    """DIR holds something this log cannot continue from (a missing key, a foreign database)."""


@dataclass(frozen=True)
class Submission:
    chain: Sequence[bytes]  # the certificate or precertificate DER first, then its issuer chain, root last
    precert: bool  # True for add-pre-chain: the first cert carries the CT poison extension
    timestamp: int | None = None  # ms since the epoch for the entry's SCT and leaf; None = now


@dataclass(frozen=True, slots=True)
class StoredEntry:
    index: int
    leaf_input: bytes
    pre_certificate: bytes | None
    chain_fingerprints: tuple[bytes, ...]


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def _hash_prefix(h: bytes) -> int:
    return int.from_bytes(h[:8], "big", signed=True)


def _tile_id(level: int, index: int) -> int:
    return (level << _TILE_ID_SHIFT) | index


def _split_fingerprints(blob: bytes) -> tuple[bytes, ...]:
    return tuple(blob[i : i + HASH_SIZE] for i in range(0, len(blob), HASH_SIZE))


def _load_or_create_key(path: Path) -> tuple[LogSigner, bool]:
    try:
        return LogSigner.from_pem(path.read_bytes()), False
    except FileNotFoundError:
        pass
    signer = LogSigner.generate()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        # Another process created it between our read and our create: use theirs.
        return LogSigner.from_pem(path.read_bytes()), False
    with os.fdopen(fd, "wb") as f:
        f.write(signer.to_pem())
        f.flush()
        os.fsync(f.fileno())
    return signer, True


class LogStorage:
    """One log in one directory. Not thread-safe; several processes may share DIR (SQLite locks)."""

    def __init__(self, directory: Path, conn: sqlite3.Connection, signer: LogSigner, origin: str) -> None:
        self.directory = directory
        self.signer = signer
        self.origin = origin  # the server sets the origin its URL implies; checkpoints are rendered for it
        # Indexes whose certificate is stored corrupted (the malformed-entry fault): see malform.py.
        self.malformed_indexes: set[int] = set()
        # Index -> octets of the extra dNSName its certificate is stored with (the huge-name fault).
        self.huge_names: dict[int, int] = {}
        self._conn = conn
        self._checker = ChainChecker()
        self._issuer_der: dict[bytes, bytes] = {}
        self._chains: dict[tuple[bytes, ...], bytes] = {}  # chain fingerprints -> encoded chain
        self._known_issuers: set[bytes] = set()
        self._known_roots: set[bytes] = set()
        self._full_tiles: dict[int, bytes] = {}
        self._data_version = -1
        self._head: SignedTreeHead | None = None
        self._reload_issuer_sets()

    # --- opening -----------------------------------------------------------------------------------------

    @classmethod
    def open(cls, directory: Path, *, origin: str | None = None) -> LogStorage:
        """Open the log in directory, creating it (a fresh P-256 key and an empty tree) if absent."""
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        db_path = directory / DB_FILE
        db_existed = db_path.exists()
        signer, key_created = _load_or_create_key(directory / KEY_FILE)
        if key_created and db_existed:
            raise StorageError(f"{directory}: {DB_FILE} exists but {KEY_FILE} is missing; refusing a new key")
        conn = sqlite3.connect(db_path, isolation_level=None, timeout=30.0)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA cache_size=-65536")
        conn.execute("PRAGMA temp_store=MEMORY")
        conn.executescript(_SCHEMA)
        public_key = base64.b64encode(signer.public_key.spki_der).decode("ascii")
        conn.execute("BEGIN IMMEDIATE")
        try:
            meta = dict(conn.execute("SELECT name, value FROM meta").fetchall())
            if not meta:
                conn.executemany(
                    "INSERT INTO meta(name, value) VALUES (?, ?)",
                    [("format", _FORMAT), ("public_key", public_key), ("origin", origin or DEFAULT_ORIGIN)],
                )
                meta = {"format": _FORMAT, "public_key": public_key, "origin": origin or DEFAULT_ORIGIN}
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            conn.close()
            raise
        if meta.get("format") != _FORMAT or meta.get("public_key") != public_key:
            conn.close()
            raise StorageError(f"{directory}: {DB_FILE} belongs to another key or format")
        storage = cls(directory, conn, signer, origin or meta["origin"])
        if storage._latest_head() is None:
            storage.integrate()  # an empty log still publishes a (size 0) tree head
        return storage

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> LogStorage:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front, so index assignment cannot race another process.
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            yield self._conn
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        self._conn.execute("COMMIT")

    # --- tree heads --------------------------------------------------------------------------------------

    def _latest_head(self) -> SignedTreeHead | None:
        row = self._conn.execute(
            "SELECT tree_size, timestamp, root, signature FROM tree_heads ORDER BY id DESC LIMIT 1"
        ).fetchone()
        if row is None:
            return None
        return SignedTreeHead(row[0], row[1], row[2], DigitallySigned.decode(row[3]))

    def _refresh(self) -> SignedTreeHead:
        # data_version changes only when another connection (e.g. a populate run) committed.
        version = self._conn.execute("PRAGMA data_version").fetchone()[0]
        if self._head is None or version != self._data_version:
            self._data_version = version
            self._head = self._latest_head()
            if self._head is None:
                raise StorageError(f"{self.directory}: no tree head")
        return self._head

    @property
    def tree_size(self) -> int:
        """Size of the latest published tree head."""
        return self._refresh().tree_size

    @property
    def created_ms(self) -> int:
        """When the log signed its first tree head (ms since the epoch)."""
        row = self._conn.execute("SELECT timestamp FROM tree_heads ORDER BY id LIMIT 1").fetchone()
        return int(row[0]) if row else now_ms()

    def latest_sth(self) -> SignedTreeHead:
        return self._refresh()

    def sign_tree_head(self, tree_size: int, timestamp: int, root: bytes) -> SignedTreeHead:
        signature = self.signer.sign(sth_signature_input(timestamp, tree_size, root))
        return SignedTreeHead(tree_size=tree_size, timestamp=timestamp, root_hash=root, signature=signature)

    def checkpoint(self, sth: SignedTreeHead | None = None, origin: str | None = None) -> bytes:
        """The static-ct-api checkpoint of sth (default: the latest) for origin (default: self.origin).

        The RFC6962NoteSignature is the STH's own signature (static-ct-api: a get-sth response converts to
        a checkpoint without the private key), so get-sth and checkpoint always agree byte for byte.
        """
        sth = sth or self.latest_sth()
        origin = origin or self.origin
        text = Checkpoint(origin=origin, tree_size=sth.tree_size, root_hash=sth.root_hash).to_text()
        signature = NoteSignature(
            name=origin,
            key_id=rfc6962_key_id(origin, self.signer.public_key),
            signature=sth.timestamp.to_bytes(8, "big") + sth.signature.encode(),
        )
        return format_note(text, [signature])

    # --- tiles -------------------------------------------------------------------------------------------

    def _read_tile(self, level: int, index: int) -> bytes:
        tile_id = _tile_id(level, index)
        blob = self._full_tiles.get(tile_id)
        if blob is not None:
            return blob
        row = self._conn.execute("SELECT hashes FROM tiles WHERE id = ?", (tile_id,)).fetchone()
        blob = bytes(row[0]) if row else b""
        if len(blob) == FULL_TILE_BYTES:
            self._cache_tile(tile_id, blob)
        return blob

    def _write_tile(self, level: int, index: int, blob: bytes) -> None:
        tile_id = _tile_id(level, index)
        self._conn.execute("INSERT OR REPLACE INTO tiles(id, hashes) VALUES (?, ?)", (tile_id, blob))
        if len(blob) == FULL_TILE_BYTES:
            self._cache_tile(tile_id, blob)

    def _cache_tile(self, tile_id: int, blob: bytes) -> None:
        if len(self._full_tiles) >= _TILE_CACHE_LIMIT:
            self._full_tiles.pop(next(iter(self._full_tiles)))
        self._full_tiles[tile_id] = blob

    def tile_bytes(self, level: int, index: int) -> bytes:
        """The stored hash tile (level, index) as it stands now, possibly partial; b"" if not started."""
        return self._read_tile(level, index)

    def tree(self) -> TreeReader:
        """Hashes and proofs over the stored tree (valid for any size up to tree_size)."""
        return TreeReader(self._read_tile)

    # --- reading entries ---------------------------------------------------------------------------------

    def entries(self, start: int, end: int) -> list[StoredEntry]:
        """Stored entries [start, end) (end exclusive), whether published yet or not."""
        rows = self._conn.execute(
            "SELECT idx, leaf_input, pre_certificate, chain FROM entries"
            " WHERE idx >= ? AND idx < ? ORDER BY idx",
            (start, end),
        ).fetchall()
        return [
            StoredEntry(r[0], bytes(r[1]), None if r[2] is None else bytes(r[2]), _split_fingerprints(r[3]))
            for r in rows
        ]

    def issuer(self, fingerprint: bytes) -> bytes | None:
        der = self._issuer_der.get(fingerprint)
        if der is None:
            row = self._conn.execute(
                "SELECT der FROM issuers WHERE fingerprint = ?", (fingerprint,)
            ).fetchone()
            if row is None:
                return None
            der = bytes(row[0])
            self._issuer_der[fingerprint] = der
        return der

    def roots(self) -> list[bytes]:
        """The distinct certificates that ended a submitted chain, in the order first seen."""
        return [
            bytes(r[0]) for r in self._conn.execute("SELECT der FROM issuers WHERE root = 1 ORDER BY rowid")
        ]

    def extra_data(
        self, entry: StoredEntry, issuer: Callable[[bytes], bytes | None] | None = None
    ) -> bytes:
        """The entry's RFC 6962 extra_data, its chain looked up by `issuer` (default: this log's issuers;
        a chain is named by its certificates' SHA-256, so the cache holds for any lookup)."""
        # Chains repeat across entries: each is encoded once (it is the bulk of every get-entries answer).
        lookup = issuer or self.issuer
        chain = self._chains.get(entry.chain_fingerprints)
        if chain is None:
            ders = []
            for fingerprint in entry.chain_fingerprints:
                der = lookup(fingerprint)
                if der is None:
                    raise StorageError(
                        f"entry {entry.index}: issuer {fingerprint.hex()} missing from the database"
                    )
                ders.append(der)
            chain = encode_extra_data(X509ExtraData(certificate_chain=ders))
            if len(self._chains) >= _CHAIN_CACHE_LIMIT:
                self._chains.clear()
            self._chains[entry.chain_fingerprints] = chain
        if entry.pre_certificate is None:
            return chain
        # PrecertExtraData: the precertificate as an ASN.1Cert, then the same chain encoding.
        return len(entry.pre_certificate).to_bytes(3, "big") + entry.pre_certificate + chain

    def get_entries(self, start: int, end: int) -> list[tuple[bytes, bytes]]:
        """(leaf_input, extra_data) for [start, end] inclusive, as RFC 6962 get-entries counts."""
        return [(e.leaf_input, self.extra_data(e)) for e in self.entries(start, end + 1)]

    def find_leaf(self, leaf_hash_value: bytes, tree_size: int) -> int | None:
        """The lowest index < tree_size whose leaf hash is leaf_hash_value (get-proof-by-hash)."""
        if len(leaf_hash_value) != HASH_SIZE:
            return None
        tree = self.tree()
        for (index,) in self._conn.execute(
            "SELECT idx FROM entries WHERE hash_prefix = ? AND idx < ? ORDER BY idx",
            (_hash_prefix(leaf_hash_value), tree_size),
        ):
            if tree.leaf_hash(index) == leaf_hash_value:
                return int(index)
        return None

    # --- writing -----------------------------------------------------------------------------------------

    def _next_index(self) -> int:
        row = self._conn.execute("SELECT MAX(idx) FROM entries").fetchone()
        return 0 if row[0] is None else int(row[0]) + 1

    def _remember_issuers(self, issuers: tuple[bytes, ...]) -> list[bytes]:
        fingerprints = []
        for der in issuers:
            fingerprint = hashlib.sha256(der).digest()
            if fingerprint not in self._known_issuers:
                self._conn.execute(
                    "INSERT OR IGNORE INTO issuers(fingerprint, der) VALUES (?, ?)", (fingerprint, der)
                )
                self._known_issuers.add(fingerprint)
                self._issuer_der[fingerprint] = der
            fingerprints.append(fingerprint)
        if fingerprints and fingerprints[-1] not in self._known_roots:
            self._conn.execute("UPDATE issuers SET root = 1 WHERE fingerprint = ?", (fingerprints[-1],))
            self._known_roots.add(fingerprints[-1])
        return fingerprints

    def _sct(self, entry: TimestampedEntry) -> SignedCertificateTimestamp:
        unsigned = SignedCertificateTimestamp(
            version=0,
            log_id=self.signer.public_key.log_id,
            timestamp=entry.timestamp,
            extensions=entry.extensions,
            signature=DigitallySigned(HashAlgorithm.SHA256, SignatureAlgorithm.ECDSA, b""),
        )
        message = sct_signature_input(unsigned, entry.entry_type, entry.signed_entry, entry.issuer_key_hash)
        return dataclasses.replace(unsigned, signature=self.signer.sign(message))

    @staticmethod
    def _malformed(checked: CheckedChain) -> CheckedChain:
        if checked.pre_certificate is None:
            return dataclasses.replace(checked, signed_entry=corrupt_certificate(checked.signed_entry))
        return dataclasses.replace(
            checked,
            signed_entry=corrupt_tbs(checked.signed_entry),
            pre_certificate=corrupt_certificate(checked.pre_certificate),
        )

    @staticmethod
    def _with_huge_name(checked: CheckedChain, octets: int) -> CheckedChain:
        name = long_dns_name(octets)
        if checked.pre_certificate is None:
            return dataclasses.replace(checked, signed_entry=add_dns_name(checked.signed_entry, name))
        return dataclasses.replace(
            checked,
            signed_entry=add_dns_name_to_tbs(checked.signed_entry, name),
            pre_certificate=add_dns_name(checked.pre_certificate, name),
        )

    def add(
        self, submissions: Sequence[Submission], *, sign: bool = True
    ) -> list[SignedCertificateTimestamp | None]:
        """Validate and durably store submissions as pending entries, in order, in one transaction.

        Raises SubmissionError (nothing stored) if any chain is refused. Returns one SCT per submission,
        or None for each when sign=False.
        """
        checked = []
        for number, submission in enumerate(submissions):
            try:
                checked.append(self._checker.check(submission.chain, submission.precert))
            except SubmissionError as exc:
                raise SubmissionError(f"submission {number}: {exc}") from None
            ts = submission.timestamp
            if ts is not None and (not isinstance(ts, int) or not 0 <= ts < 1 << 63):
                raise SubmissionError(f"submission {number}: timestamp {ts!r} is not ms since the epoch")
        try:
            return self._store(submissions, checked, sign)
        except BaseException:
            self._reload_issuer_sets()  # the rolled-back transaction may have held new issuers
            raise

    def _reload_issuer_sets(self) -> None:
        self._known_issuers.clear()
        self._known_roots.clear()
        for fingerprint, root in self._conn.execute("SELECT fingerprint, root FROM issuers"):
            self._known_issuers.add(fingerprint)
            if root:
                self._known_roots.add(fingerprint)

    def _store(
        self, submissions: Sequence[Submission], checked: list[CheckedChain], sign: bool
    ) -> list[SignedCertificateTimestamp | None]:
        scts: list[SignedCertificateTimestamp | None] = []
        default_ts = now_ms()
        with self._write() as conn:
            first = self._next_index()
            if first + len(checked) - 1 > _MAX_LEAF_INDEX:
                raise SubmissionError("log is full (leaf_index is 40 bits)")
            rows = []
            for offset, (submission, chain) in enumerate(zip(submissions, checked, strict=True)):
                index = first + offset
                if index in self.malformed_indexes:
                    chain = self._malformed(chain)
                if index in self.huge_names:
                    chain = self._with_huge_name(chain, self.huge_names[index])
                entry = TimestampedEntry(
                    timestamp=default_ts if submission.timestamp is None else submission.timestamp,
                    entry_type=chain.entry_type,
                    signed_entry=chain.signed_entry,
                    issuer_key_hash=chain.issuer_key_hash,
                    extensions=encode_leaf_index_extension(index),
                )
                leaf_input = MerkleTreeLeaf(entry).encode()
                fingerprints = self._remember_issuers(chain.issuers)
                rows.append(
                    (
                        index,
                        leaf_input,
                        chain.pre_certificate,
                        b"".join(fingerprints),
                        _hash_prefix(leaf_hash(leaf_input)),
                    )
                )
                scts.append(self._sct(entry) if sign else None)
            conn.executemany(
                "INSERT INTO entries(idx, leaf_input, pre_certificate, chain, hash_prefix)"
                " VALUES (?, ?, ?, ?, ?)",
                rows,
            )
        return scts

    @property
    def pending_count(self) -> int:
        return self._next_index() - self.tree_size

    def integrate(self, timestamp: int | None = None) -> SignedTreeHead:
        """Sequence every pending entry, extend the hash tiles, and sign and store a new tree head.

        With no timestamp the head is stamped now (and strictly after the previous head, as real logs do).
        """
        with self._write() as conn:
            previous = self._latest_head()
            size = previous.tree_size if previous else 0
            while True:
                rows = conn.execute(
                    "SELECT idx, leaf_input FROM entries WHERE idx >= ? ORDER BY idx LIMIT ?",
                    (size, _INTEGRATE_CHUNK),
                ).fetchall()
                if not rows:
                    break
                if rows[0][0] != size or rows[-1][0] != size + len(rows) - 1:
                    raise StorageError(f"entries after index {size} are not contiguous")
                append_leaf_hashes(self._read_tile, self._write_tile, size, [leaf_hash(r[1]) for r in rows])
                size += len(rows)
            root = self.tree().root(size)
            if timestamp is None:
                timestamp = max(now_ms(), previous.timestamp + 1 if previous else 0)
            sth = self.sign_tree_head(size, timestamp, root)
            conn.execute(
                "INSERT INTO tree_heads(tree_size, timestamp, root, signature) VALUES (?, ?, ?, ?)",
                (sth.tree_size, sth.timestamp, sth.root_hash, sth.signature.encode()),
            )
        self._head = sth
        return sth

    def tree_heads(self) -> list[SignedTreeHead]:
        """Every tree head the log has signed, oldest first."""
        return [
            SignedTreeHead(r[0], r[1], r[2], DigitallySigned.decode(r[3]))
            for r in self._conn.execute(
                "SELECT tree_size, timestamp, root, signature FROM tree_heads ORDER BY id"
            )
        ]
