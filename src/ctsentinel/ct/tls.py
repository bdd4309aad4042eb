"""RFC 6962 section 3 TLS structures: Merkle tree leaves, extra_data, SCTs and signature inputs.

Every decoder here is an exact inverse of its encoder and rejects trailing bytes, so that a decoded
structure can be re-encoded byte-identically (the Merkle leaf hash is over the original bytes).
Decoders sit on the per-entry hot path: they slice the input bytes (each field is copied once, as the
value it becomes) and read integers with int.from_bytes, never looping per byte, and raise nothing but
DecodeError whatever the input.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import IntEnum

from ctsentinel.ct.errors import DecodeError

__all__ = [
    "DigitallySigned",
    "HashAlgorithm",
    "LogEntryType",
    "MerkleTreeLeaf",
    "PrecertExtraData",
    "SignatureAlgorithm",
    "SignedCertificateTimestamp",
    "TimestampedEntry",
    "X509ExtraData",
    "decode_extra_data",
    "decode_merkle_tree_leaf",
    "decode_sct_list",
    "decode_timestamped_entry",
    "encode_extra_data",
    "encode_sct_list",
    "sct_signature_input",
    "sth_signature_input",
]


class LogEntryType(IntEnum):
    X509_ENTRY = 0
    PRECERT_ENTRY = 1


class HashAlgorithm(IntEnum):
    SHA256 = 4
    SHA384 = 5


class SignatureAlgorithm(IntEnum):
    RSA = 1
    ECDSA = 3
    ED25519 = 7


_V1 = 0
_LEAF_TYPE_TIMESTAMPED_ENTRY = 0
_SIGNATURE_TYPE_CERTIFICATE_TIMESTAMP = 0
_SIGNATURE_TYPE_TREE_HASH = 1
_KEY_HASH_SIZE = 32
_LOG_ID_SIZE = 32


class _Reader:
    """A cursor over bytes; every short read becomes a DecodeError naming the structure and offset."""

    __slots__ = ("_buf", "_end", "pos", "structure")

    def __init__(
        self, data: bytes | memoryview, structure: str, offset: int = 0, end: int | None = None
    ) -> None:
        # bytes, not a memoryview: every read makes a bytes object anyway, and a memoryview slice first
        # would be one more object per field.
        self._buf = data if isinstance(data, bytes) else bytes(data)
        self._end = len(self._buf) if end is None else end
        self.structure = structure
        self.pos = offset

    # Message parts are passed separately and joined only on error: this is the per-entry hot path.
    def _need(self, n: int, what: str, suffix: str = "") -> int:
        start = self.pos
        if self._end - start < n:
            raise DecodeError(
                f"{self.structure}: truncated at offset {start}: need {n} bytes for {what}{suffix}"
            )
        self.pos = start + n
        return start

    def uint(self, size: int, what: str) -> int:
        start = self._need(size, what)
        return int.from_bytes(self._buf[start : start + size], "big")

    def fixed(self, size: int, what: str) -> bytes:
        start = self._need(size, what)
        return self._buf[start : start + size]

    def _length(self, len_size: int, what: str, min_len: int) -> int:
        at = self._need(len_size, what, " length")
        length = int.from_bytes(self._buf[at : at + len_size], "big")
        if length < min_len:
            raise DecodeError(f"{self.structure}: {what} length {length} at offset {at} is below {min_len}")
        return length

    def opaque(self, len_size: int, what: str, min_len: int = 0) -> bytes:
        return self.fixed(self._length(len_size, what, min_len), what)

    def sub_reader(self, len_size: int, what: str, min_len: int = 0) -> _Reader:
        """A reader bounded to a length-prefixed vector, with offsets still relative to the whole input."""
        length = self._length(len_size, what, min_len)
        start = self._need(length, what)
        return _Reader(self._buf, self.structure, start, start + length)

    def at_end(self) -> bool:
        return self.pos >= self._end

    def finish(self, after: str) -> None:
        extra = self._end - self.pos
        if extra:
            raise DecodeError(f"{self.structure}: {extra} trailing bytes after {after} at offset {self.pos}")


def _u(value: int, size: int, what: str) -> bytes:
    if not 0 <= value < 1 << (8 * size):
        raise DecodeError(f"cannot encode {what} {value}: it does not fit in {size} bytes")
    return value.to_bytes(size, "big")


def _opaque(value: bytes, len_size: int, what: str) -> bytes:
    return _u(len(value), len_size, f"{what} length") + value


# --- DigitallySigned --------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class DigitallySigned:
    """RFC 5246 4.7 as profiled by RFC 6962: hash and signature algorithm bytes plus the signature."""

    hash_algorithm: int
    signature_algorithm: int
    signature: bytes

    def encode(self) -> bytes:
        return (
            _u(self.hash_algorithm, 1, "hash_algorithm")
            + _u(self.signature_algorithm, 1, "signature_algorithm")
            + _opaque(self.signature, 2, "signature")
        )

    @classmethod
    def decode(cls, data: bytes) -> DigitallySigned:
        r = _Reader(data, "DigitallySigned")
        signed = _read_digitally_signed(r)
        r.finish("DigitallySigned")
        return signed


def _read_digitally_signed(r: _Reader) -> DigitallySigned:
    hash_algorithm = r.uint(1, "hash algorithm")
    signature_algorithm = r.uint(1, "signature algorithm")
    signature = r.opaque(2, "signature")
    return DigitallySigned(hash_algorithm, signature_algorithm, signature)


# --- MerkleTreeLeaf / TimestampedEntry --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TimestampedEntry:
    timestamp: int
    entry_type: LogEntryType
    signed_entry: bytes
    issuer_key_hash: bytes | None
    extensions: bytes = b""

    def encode(self) -> bytes:
        return (
            _u(self.timestamp, 8, "timestamp")
            + _u(self.entry_type, 2, "entry_type")
            + _encode_signed_entry(self.entry_type, self.signed_entry, self.issuer_key_hash)
            + _opaque(self.extensions, 2, "extensions")
        )


def _encode_signed_entry(
    entry_type: LogEntryType, signed_entry: bytes, issuer_key_hash: bytes | None
) -> bytes:
    """The `signed_entry` select shared by TimestampedEntry and the SCT signature input."""
    if entry_type == LogEntryType.X509_ENTRY:
        if issuer_key_hash is not None:
            raise DecodeError("cannot encode x509_entry with an issuer_key_hash (precert_entry only)")
        return _opaque(signed_entry, 3, "certificate")
    if entry_type == LogEntryType.PRECERT_ENTRY:
        if issuer_key_hash is None or len(issuer_key_hash) != _KEY_HASH_SIZE:
            raise DecodeError("cannot encode precert_entry without a 32-byte issuer_key_hash")
        return issuer_key_hash + _opaque(signed_entry, 3, "tbs_certificate")
    raise DecodeError(f"cannot encode unknown entry_type {int(entry_type)}")


def _read_timestamped_entry(r: _Reader) -> TimestampedEntry:
    timestamp = r.uint(8, "timestamp")
    type_at = r.pos
    raw_type = r.uint(2, "entry_type")
    issuer_key_hash: bytes | None
    if raw_type == LogEntryType.X509_ENTRY:
        entry_type = LogEntryType.X509_ENTRY
        issuer_key_hash = None
        signed_entry = r.opaque(3, "certificate", min_len=1)
    elif raw_type == LogEntryType.PRECERT_ENTRY:
        entry_type = LogEntryType.PRECERT_ENTRY
        issuer_key_hash = r.fixed(_KEY_HASH_SIZE, "issuer_key_hash")
        signed_entry = r.opaque(3, "tbs_certificate", min_len=1)
    else:
        raise DecodeError(f"{r.structure}: unknown entry_type {raw_type} at offset {type_at}")
    extensions = r.opaque(2, "extensions")
    return TimestampedEntry(timestamp, entry_type, signed_entry, issuer_key_hash, extensions)


def decode_timestamped_entry(data: bytes, offset: int = 0) -> tuple[TimestampedEntry, int]:
    """Decode one TimestampedEntry starting at `offset`; return it and the offset just after it.

    Trailing data is allowed here, because static-ct-api data tiles follow the entry with more fields.
    """
    if offset < 0:
        raise DecodeError(f"TimestampedEntry: negative offset {offset}")
    r = _Reader(data, "TimestampedEntry", offset)
    entry = _read_timestamped_entry(r)
    return entry, r.pos


@dataclass(frozen=True, slots=True)
class MerkleTreeLeaf:
    timestamped_entry: TimestampedEntry

    def encode(self) -> bytes:
        return bytes((_V1, _LEAF_TYPE_TIMESTAMPED_ENTRY)) + self.timestamped_entry.encode()


def decode_merkle_tree_leaf(data: bytes) -> MerkleTreeLeaf:
    r = _Reader(data, "MerkleTreeLeaf")
    version = r.uint(1, "version")
    if version != _V1:
        raise DecodeError(f"MerkleTreeLeaf: unknown version {version} at offset 0")
    leaf_type = r.uint(1, "leaf_type")
    if leaf_type != _LEAF_TYPE_TIMESTAMPED_ENTRY:
        raise DecodeError(f"MerkleTreeLeaf: unknown leaf_type {leaf_type} at offset 1")
    entry = _read_timestamped_entry(r)
    r.finish("MerkleTreeLeaf")
    return MerkleTreeLeaf(entry)


# --- extra_data -------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class X509ExtraData:
    certificate_chain: list[bytes]


@dataclass(frozen=True, slots=True)
class PrecertExtraData:
    pre_certificate: bytes
    precertificate_chain: list[bytes]


def _read_chain(r: _Reader, what: str) -> list[bytes]:
    chain_r = r.sub_reader(3, what)
    item = what + " certificate"
    chain: list[bytes] = []
    while not chain_r.at_end():
        chain.append(chain_r.opaque(3, item, min_len=1))
    return chain


def _encode_chain(chain: Sequence[bytes], what: str) -> bytes:
    return _opaque(b"".join(_opaque(cert, 3, f"{what} certificate") for cert in chain), 3, what)


def decode_extra_data(entry_type: LogEntryType, data: bytes) -> X509ExtraData | PrecertExtraData:
    if entry_type == LogEntryType.X509_ENTRY:
        r = _Reader(data, "X509ChainEntry")
        x509 = X509ExtraData(_read_chain(r, "certificate_chain"))
        r.finish("certificate_chain")
        return x509
    if entry_type == LogEntryType.PRECERT_ENTRY:
        r = _Reader(data, "PrecertChainEntry")
        pre_certificate = r.opaque(3, "pre_certificate", min_len=1)
        precert = PrecertExtraData(pre_certificate, _read_chain(r, "precertificate_chain"))
        r.finish("precertificate_chain")
        return precert
    raise DecodeError(f"extra_data: unknown entry_type {int(entry_type)}")


def encode_extra_data(extra: X509ExtraData | PrecertExtraData) -> bytes:
    if isinstance(extra, X509ExtraData):
        return _encode_chain(extra.certificate_chain, "certificate_chain")
    return _opaque(extra.pre_certificate, 3, "pre_certificate") + _encode_chain(
        extra.precertificate_chain, "precertificate_chain"
    )


# --- SignedCertificateTimestamp ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SignedCertificateTimestamp:
    version: int
    log_id: bytes
    timestamp: int
    extensions: bytes
    signature: DigitallySigned

    def encode(self) -> bytes:
        if len(self.log_id) != _LOG_ID_SIZE:
            raise DecodeError(f"SignedCertificateTimestamp: cannot encode a {len(self.log_id)}-byte log_id")
        return (
            _u(self.version, 1, "version")
            + self.log_id
            + _u(self.timestamp, 8, "timestamp")
            + _opaque(self.extensions, 2, "extensions")
            + self.signature.encode()
        )

    @classmethod
    def decode(cls, data: bytes) -> SignedCertificateTimestamp:
        r = _Reader(data, "SignedCertificateTimestamp")
        sct = _read_sct(r)
        r.finish("SignedCertificateTimestamp")
        return sct


def _read_sct(r: _Reader) -> SignedCertificateTimestamp:
    version_at = r.pos
    version = r.uint(1, "version")
    # Only v1 has a defined layout; a later version could be laid out differently.
    if version != _V1:
        raise DecodeError(f"{r.structure}: unknown version {version} at offset {version_at}")
    log_id = r.fixed(_LOG_ID_SIZE, "log_id")
    timestamp = r.uint(8, "timestamp")
    extensions = r.opaque(2, "extensions")
    signature = _read_digitally_signed(r)
    return SignedCertificateTimestamp(version, log_id, timestamp, extensions, signature)


def decode_sct_list(data: bytes) -> list[SignedCertificateTimestamp]:
    """A SignedCertificateTimestampList (RFC 6962 3.3): the octets inside the X.509v3/OCSP/TLS extension."""
    r = _Reader(data, "SignedCertificateTimestampList")
    list_r = r.sub_reader(2, "sct_list", min_len=1)
    r.finish("sct_list")
    scts: list[SignedCertificateTimestamp] = []
    while not list_r.at_end():
        sct_r = list_r.sub_reader(2, "SerializedSCT", min_len=1)
        scts.append(_read_sct(sct_r))
        sct_r.finish("SerializedSCT")
    return scts


def encode_sct_list(scts: Sequence[SignedCertificateTimestamp]) -> bytes:
    if not scts:
        raise DecodeError("SignedCertificateTimestampList: cannot encode an empty list (at least one SCT)")
    return _opaque(b"".join(_opaque(sct.encode(), 2, "SerializedSCT") for sct in scts), 2, "sct_list")


# --- signature inputs -------------------------------------------------------------------------------------


def sct_signature_input(
    sct: SignedCertificateTimestamp,
    entry_type: LogEntryType,
    signed_entry: bytes,
    issuer_key_hash: bytes | None = None,
) -> bytes:
    """The digitally-signed struct of RFC 6962 3.2 that a log signs to issue `sct`."""
    return (
        _u(sct.version, 1, "version")
        + bytes((_SIGNATURE_TYPE_CERTIFICATE_TIMESTAMP,))
        + _u(sct.timestamp, 8, "timestamp")
        + _u(entry_type, 2, "entry_type")
        + _encode_signed_entry(entry_type, signed_entry, issuer_key_hash)
        + _opaque(sct.extensions, 2, "extensions")
    )


def sth_signature_input(timestamp: int, tree_size: int, root_hash: bytes) -> bytes:
    """TreeHeadSignature (RFC 6962 3.5), version v1."""
    if len(root_hash) != 32:
        raise DecodeError(f"TreeHeadSignature: cannot encode a {len(root_hash)}-byte root_hash (need 32)")
    return (
        bytes((_V1, _SIGNATURE_TYPE_TREE_HASH))
        + _u(timestamp, 8, "timestamp")
        + _u(tree_size, 8, "tree_size")
        + root_hash
    )
