"""Checkpoints (c2sp.org/tlog-checkpoint) and their static-ct-api RFC 6962 note signature.

A static-ct-api log signs its checkpoint with an RFC6962NoteSignature: the signature line is
base64(key ID || u64 timestamp || DigitallySigned), where the DigitallySigned is the log's ordinary
TreeHeadSignature over (timestamp, size, root). The origin line itself is not covered by that
signature, so the caller must say which origin it expects.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ctsentinel.ct.errors import DecodeError, SignatureError
from ctsentinel.ct.note import Note, NoteSignature, decode_base64, format_note, parse_note, rfc6962_key_id
from ctsentinel.ct.tls import DigitallySigned, sth_signature_input

if TYPE_CHECKING:
    from ctsentinel.ct.signatures import LogKey, LogSigner

_TREE_SIZE = re.compile("0|[1-9][0-9]*")
_MAX_U64 = (1 << 64) - 1
_MAX_U64_DIGITS = len(str(_MAX_U64))
_HASH_SIZE = 32


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    tree_size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def to_text(self) -> str:
        """The note text; DecodeError if it would not parse back to this checkpoint."""
        root = base64.b64encode(self.root_hash).decode("ascii")
        text = "".join(f"{line}\n" for line in (self.origin, str(self.tree_size), root, *self.extensions))
        if parse_checkpoint_text(text) != self:
            raise DecodeError(f"checkpoint: {self!r} has no valid text form")
        return text


def parse_checkpoint_text(text: str) -> Checkpoint:
    """Parse a checkpoint note text: origin, size, base64 root hash, then optional extension lines."""
    if not text.endswith("\n"):
        raise DecodeError("checkpoint: text does not end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise DecodeError(f"checkpoint: {len(lines)} lines, need at least origin, size and root hash")
    origin, size_line, root_line, *extensions = lines
    if not origin:
        raise DecodeError("checkpoint: line 1: empty origin")
    # fullmatch over ASCII digits only: int() would also take "+5", " 5", "1_0" and non-ASCII digits.
    if not _TREE_SIZE.fullmatch(size_line):
        raise DecodeError(f"checkpoint: line 2: tree size {size_line[:40]!r} is not a canonical decimal")
    # Checked before int(): past 4,300 digits int() refuses the text (a ValueError, not a DecodeError).
    if len(size_line) > _MAX_U64_DIGITS or int(size_line) > _MAX_U64:
        shown = size_line if len(size_line) <= 40 else f"{size_line[:20]}… ({len(size_line)} digits)"
        raise DecodeError(f"checkpoint: line 2: tree size {shown} does not fit in 64 bits")
    tree_size = int(size_line)
    root_hash = decode_base64(root_line, "checkpoint: line 3: root hash")
    if len(root_hash) != _HASH_SIZE:
        raise DecodeError(f"checkpoint: line 3: root hash is {len(root_hash)} bytes, not {_HASH_SIZE}")
    for number, line in enumerate(extensions, start=4):
        if not line:
            raise DecodeError(f"checkpoint: line {number}: empty extension line")
    return Checkpoint(origin=origin, tree_size=tree_size, root_hash=root_hash, extensions=tuple(extensions))


@dataclass(frozen=True, slots=True)
class VerifiedCheckpoint:
    checkpoint: Checkpoint
    timestamp: int  # ms since the epoch, from the RFC6962NoteSignature
    note: Note


def _decode_rfc6962_signature(signature: bytes) -> tuple[int, DigitallySigned]:
    if len(signature) < 8:
        raise DecodeError(f"RFC6962NoteSignature: {len(signature)} bytes, too short for the timestamp")
    timestamp = int.from_bytes(signature[:8], "big")
    try:
        signed = DigitallySigned.decode(signature[8:])
    except DecodeError as exc:
        # Offsets inside DigitallySigned are relative to its start, 8 bytes into the signature.
        raise DecodeError(f"RFC6962NoteSignature: after the 8-byte timestamp: {exc}") from None
    return timestamp, signed


def open_checkpoint(data: bytes, origin: str, log_key: LogKey) -> VerifiedCheckpoint:
    """Parse and verify a static-ct-api checkpoint of the log with this origin and key.

    Other signature lines (witnesses, grease, other keys) are ignored, as the signed-note spec requires;
    every line that matches the log's name and key ID must verify.
    """
    note = parse_note(data)
    checkpoint = parse_checkpoint_text(note.text)
    if checkpoint.origin != origin:
        raise SignatureError(f"checkpoint: origin {checkpoint.origin!r} is not the expected {origin!r}")
    if checkpoint.extensions:
        raise DecodeError("checkpoint: a static-ct-api checkpoint must not have extension lines")
    key_id = rfc6962_key_id(origin, log_key)
    timestamp: int | None = None
    for sig in note.signatures:
        if sig.name != origin or sig.key_id != key_id:
            continue
        sig_timestamp, signed = _decode_rfc6962_signature(sig.signature)
        message = sth_signature_input(sig_timestamp, checkpoint.tree_size, checkpoint.root_hash)
        try:
            log_key.verify(message, signed)
        except SignatureError as exc:
            raise SignatureError(f"checkpoint {origin} size {checkpoint.tree_size}: {exc}") from None
        if timestamp is None:
            timestamp = sig_timestamp
    if timestamp is None:
        raise SignatureError(f"checkpoint: no signature line by {origin} with key ID {key_id.hex()}")
    return VerifiedCheckpoint(checkpoint=checkpoint, timestamp=timestamp, note=note)


def rfc6962_note_signature(checkpoint: Checkpoint, timestamp: int, signer: LogSigner) -> NoteSignature:
    """The log's RFC6962NoteSignature line for `checkpoint`, to combine with other signatures."""
    if checkpoint.extensions:
        raise DecodeError("checkpoint: a static-ct-api checkpoint must not have extension lines")
    signed = signer.sign(sth_signature_input(timestamp, checkpoint.tree_size, checkpoint.root_hash))
    return NoteSignature(
        name=checkpoint.origin,
        key_id=rfc6962_key_id(checkpoint.origin, signer.public_key),
        signature=timestamp.to_bytes(8, "big") + signed.encode(),
    )


def sign_checkpoint(
    checkpoint: Checkpoint, timestamp: int, signer: LogSigner, extra: Sequence[NoteSignature] = ()
) -> bytes:
    """A static-ct-api checkpoint note signed by the log (and carrying any `extra` signature lines)."""
    text = checkpoint.to_text()
    return format_note(text, [rfc6962_note_signature(checkpoint, timestamp, signer), *extra])
