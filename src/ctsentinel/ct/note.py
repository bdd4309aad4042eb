"""C2SP signed notes (c2sp.org/signed-note): parsing, formatting, verifier keys and Ed25519 signatures.

A note is UTF-8 text ending in a newline, a blank line, then one or more lines
"— <key name> base64(key ID[4] || signature)". Which signatures matter is the caller's choice: the spec
says verifiers ignore lines from keys they do not know, so parsing keeps every well-formed line and
never interprets the signature bytes.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol, Self

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ctsentinel.ct.errors import DecodeError, SignatureError

if TYPE_CHECKING:
    from ctsentinel.ct.signatures import LogKey

# The spec asks verifiers to cap the note size but to accept at least 16 signatures of up to ~5 kB
# (post-quantum); these bounds leave ample room for that while refusing absurd inputs.
MAX_NOTE_SIZE = 1 << 20
MAX_SIGNATURES = 100

KEY_ID_SIZE = 4
SIG_TYPE_ED25519 = 0x01
SIG_TYPE_COSIGNATURE_V1 = 0x04
SIG_TYPE_RFC6962 = 0x05

_EM_DASH_PREFIX = "— "
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f]")
_HEX_KEY_ID = re.compile("[0-9a-f]{8}")
_ED25519_SIGNATURE_SIZE = 64
_COSIGNATURE_SIZE = 8 + _ED25519_SIGNATURE_SIZE


@dataclass(frozen=True, slots=True)
class NoteSignature:
    name: str
    key_id: bytes  # 4 bytes
    signature: bytes  # the signature proper, without the key ID


@dataclass(frozen=True, slots=True)
class Note:
    text: str  # ends with "\n"; excludes the blank separator line
    signatures: list[NoteSignature]


class NoteVerifier(Protocol):
    """Anything that can check one note signature line: matched by (name, key_id), then verified."""

    @property
    def name(self) -> str: ...
    @property
    def key_id(self) -> bytes: ...
    def verify(self, text: bytes, signature: bytes) -> bool: ...


def decode_base64(text: str, what: str) -> bytes:
    """Standard base64 with padding, accepting only the canonical encoding of the result.

    Re-encoding and comparing rejects non-alphabet characters, missing padding and non-zero trailing
    bits alike, so two different strings never decode to the same bytes.
    """
    try:
        raw = text.encode("ascii")
        decoded = base64.b64decode(raw, validate=True)
    except (UnicodeEncodeError, binascii.Error, ValueError):
        raise DecodeError(f"{what}: invalid base64") from None
    if base64.b64encode(decoded) != raw:
        raise DecodeError(f"{what}: non-canonical base64")
    return decoded


def _check_key_name(name: str, what: str) -> None:
    if not name:
        raise DecodeError(f"{what}: empty key name")
    if "+" in name or any(ch.isspace() for ch in name):
        raise DecodeError(f"{what}: key name {name!r} contains a space or '+'")
    if _CONTROL.search(name):
        raise DecodeError(f"{what}: key name contains a control character")


def _check_text(text: str, what: str) -> None:
    if not text.endswith("\n"):
        raise DecodeError(f"{what}: text does not end with a newline")
    match = _CONTROL.search(text)
    if match:
        raise DecodeError(
            f"{what}: control character U+{ord(match.group()):04X} at character {match.start()}"
        )


def parse_note(data: bytes) -> Note:
    """Split a signed note into its text and signature lines; DecodeError if it is malformed."""
    if len(data) > MAX_NOTE_SIZE:
        raise DecodeError(f"signed note: {len(data)} bytes exceeds the limit of {MAX_NOTE_SIZE}")
    try:
        whole = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise DecodeError(f"signed note: invalid UTF-8 at offset {exc.start}") from None
    match = _CONTROL.search(whole)
    if match:
        offset = len(whole[: match.start()].encode("utf-8"))
        raise DecodeError(f"signed note: control character 0x{ord(match.group()):02x} at offset {offset}")
    split = whole.rfind("\n\n")
    if split < 0:
        raise DecodeError("signed note: no blank line separating text from signatures")
    text, block = whole[: split + 1], whole[split + 2 :]
    if not block:
        raise DecodeError("signed note: no signature lines")
    if not block.endswith("\n"):
        raise DecodeError("signed note: signature block does not end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise DecodeError(f"signed note: {len(lines)} signatures exceeds the limit of {MAX_SIGNATURES}")
    offset = len(text.encode("utf-8")) + 1
    signatures = []
    for number, line in enumerate(lines, start=1):
        signatures.append(
            _parse_signature_line(line, f"signed note: signature line {number} (offset {offset})")
        )
        offset += len(line.encode("utf-8")) + 1
    return Note(text=text, signatures=signatures)


def _parse_signature_line(line: str, what: str) -> NoteSignature:
    if not line.startswith(_EM_DASH_PREFIX):
        raise DecodeError(f"{what}: does not start with an em dash and a space")
    parts = line[len(_EM_DASH_PREFIX) :].split(" ")
    if len(parts) != 2:
        raise DecodeError(f"{what}: expected '— <name> <base64>'")
    name, encoded = parts
    _check_key_name(name, what)
    raw = decode_base64(encoded, what)
    if len(raw) <= KEY_ID_SIZE:
        raise DecodeError(f"{what}: signature of {len(raw)} bytes is too short for a key ID and signature")
    return NoteSignature(name=name, key_id=raw[:KEY_ID_SIZE], signature=raw[KEY_ID_SIZE:])


def format_note(text: str, signatures: Sequence[NoteSignature]) -> bytes:
    """The wire form of a signed note; DecodeError if the result would not parse back identically."""
    _check_text(text, "signed note")
    if not signatures:
        raise DecodeError("signed note: at least one signature is required")
    if len(signatures) > MAX_SIGNATURES:
        raise DecodeError(f"signed note: {len(signatures)} signatures exceeds the limit of {MAX_SIGNATURES}")
    lines = [text, "\n"]
    for sig in signatures:
        _check_key_name(sig.name, "signed note")
        if len(sig.key_id) != KEY_ID_SIZE or not sig.signature:
            raise DecodeError(f"signed note: signature by {sig.name!r} needs a 4-byte key ID and a signature")
        encoded = base64.b64encode(sig.key_id + sig.signature).decode("ascii")
        lines.append(f"{_EM_DASH_PREFIX}{sig.name} {encoded}\n")
    data = "".join(lines).encode("utf-8")
    if len(data) > MAX_NOTE_SIZE:
        raise DecodeError(f"signed note: {len(data)} bytes exceeds the limit of {MAX_NOTE_SIZE}")
    return data


def verify_note(note: Note, verifiers: Sequence[NoteVerifier]) -> list[NoteSignature]:
    """The signatures of `note` made by `verifiers`, all checked, per the signed-note rules.

    Lines whose (name, key ID) pair matches no verifier are ignored, even if one of the two matches.
    A matching line that fails to verify rejects the whole note, and so does having no verified line.
    """
    by_id = {(v.name, v.key_id): v for v in verifiers}
    text = note.text.encode("utf-8")
    verified = []
    for sig in note.signatures:
        verifier = by_id.get((sig.name, sig.key_id))
        if verifier is None:
            continue
        if not verifier.verify(text, sig.signature):
            raise SignatureError(f"signed note: signature by {sig.name}+{sig.key_id.hex()} does not verify")
        verified.append(sig)
    if not verified:
        raise SignatureError("signed note: no signature from a known key")
    return verified


def note_key_id(name: str, sig_type: int, public_key: bytes) -> bytes:
    """SHA-256(name || 0x0A || type || public key)[:4], the key ID the spec recommends."""
    digest = hashlib.sha256(name.encode("utf-8") + b"\n" + bytes([sig_type]) + public_key).digest()
    return digest[:KEY_ID_SIZE]


def rfc6962_key_id(name: str, log_key: LogKey) -> bytes:
    """The key ID of a static-ct-api log's RFC6962NoteSignature: hashes the LogID, not the SPKI."""
    return note_key_id(name, SIG_TYPE_RFC6962, log_key.log_id)


@dataclass(frozen=True, slots=True)
class VerifierKey:
    """A parsed vkey "<name>+<hex key ID>+base64(type || public key)"."""

    name: str
    key_id: bytes
    sig_type: int
    public_key: bytes


def parse_vkey(vkey: str) -> VerifierKey:
    """Parse a verifier key of any signature type; DecodeError if it is malformed."""
    what = "verifier key"
    # The name holds no '+', and neither does the hex ID, but base64 may: split from the left only.
    parts = vkey.split("+", 2)
    if len(parts) != 3:
        raise DecodeError(f"{what}: expected '<name>+<hex key ID>+<base64 key>'")
    name, hex_id, encoded = parts
    _check_key_name(name, what)
    if not _HEX_KEY_ID.fullmatch(hex_id):
        raise DecodeError(f"{what}: key ID {hex_id!r} is not 8 lowercase hex digits")
    raw = decode_base64(encoded, what)
    if len(raw) < 2:
        raise DecodeError(f"{what}: key material is empty")
    return VerifierKey(name=name, key_id=bytes.fromhex(hex_id), sig_type=raw[0], public_key=raw[1:])


def _ed25519_vkey(vkey: str, sig_type: int, label: str) -> tuple[str, bytes, Ed25519PublicKey]:
    parsed = parse_vkey(vkey)
    if parsed.sig_type != sig_type:
        raise SignatureError(
            f"verifier key {parsed.name}: signature type 0x{parsed.sig_type:02x} "
            f"is not {label} (0x{sig_type:02x})"
        )
    if len(parsed.public_key) != 32:
        raise DecodeError(
            f"verifier key {parsed.name}: Ed25519 key is {len(parsed.public_key)} bytes, not 32"
        )
    if note_key_id(parsed.name, sig_type, parsed.public_key) != parsed.key_id:
        raise DecodeError(f"verifier key {parsed.name}: key ID {parsed.key_id.hex()} does not match the key")
    return parsed.name, parsed.key_id, Ed25519PublicKey.from_public_bytes(parsed.public_key)


def _ed25519_verify(key: Ed25519PublicKey, signature: bytes, message: bytes) -> bool:
    try:
        key.verify(signature, message)
    except InvalidSignature:
        return False
    return True


class _Ed25519KeyVerifier:
    """A note verifier holding an Ed25519 key; subclasses fix the signature type and what is signed."""

    __slots__ = ("_key", "_key_id", "_name")
    _SIG_TYPE: int
    _LABEL: str

    def __init__(self, name: str, public_key: bytes) -> None:
        _check_key_name(name, f"{self._LABEL} verifier")
        if len(public_key) != 32:
            raise DecodeError(f"{self._LABEL} verifier {name}: key is {len(public_key)} bytes, not 32")
        self._name = name
        self._key_id = note_key_id(name, self._SIG_TYPE, public_key)
        self._key = Ed25519PublicKey.from_public_bytes(public_key)

    @classmethod
    def from_vkey(cls, vkey: str) -> Self:
        """DecodeError if malformed or the ID mismatches; SignatureError if the vkey is of another type."""
        name, _, key = _ed25519_vkey(vkey, cls._SIG_TYPE, cls._LABEL)
        return cls(name, key.public_bytes_raw())

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id


class Ed25519NoteVerifier(_Ed25519KeyVerifier):
    """An Ed25519 (type 0x01) note verifier, as used by sum.golang.org and tlog-tiles logs."""

    __slots__ = ()
    _SIG_TYPE = SIG_TYPE_ED25519
    _LABEL = "Ed25519"

    def verify(self, text: bytes, signature: bytes) -> bool:
        return len(signature) == _ED25519_SIGNATURE_SIZE and _ed25519_verify(self._key, signature, text)


def cosignature_message(text: bytes, timestamp: int) -> bytes:
    """What a cosignature/v1 signs: a domain-separation header, the time, then the note text."""
    return b"cosignature/v1\ntime %d\n" % timestamp + text


class CosignatureV1Verifier(_Ed25519KeyVerifier):
    """A witness's Ed25519 checkpoint cosignature (c2sp.org/tlog-cosignature, type 0x04)."""

    __slots__ = ()
    _SIG_TYPE = SIG_TYPE_COSIGNATURE_V1
    _LABEL = "cosignature/v1"

    def verify(self, text: bytes, signature: bytes) -> bool:
        if len(signature) != _COSIGNATURE_SIZE:
            return False
        timestamp = int.from_bytes(signature[:8], "big")
        if timestamp >= 1 << 63:
            return False
        return _ed25519_verify(self._key, signature[8:], cosignature_message(text, timestamp))

    @staticmethod
    def timestamp(signature: bytes) -> int:
        """The POSIX time (seconds) a cosignature claims; DecodeError if it is not a cosignature."""
        if len(signature) != _COSIGNATURE_SIZE:
            raise DecodeError(f"cosignature: {len(signature)} bytes, expected {_COSIGNATURE_SIZE}")
        return int.from_bytes(signature[:8], "big")


class Ed25519NoteSigner:
    """The private side of an Ed25519 note key, for tests and the test log.

    Private keys use the Go note package's text form "PRIVATE+KEY+<name>+<hex ID>+base64(0x01 || seed)".
    """

    __slots__ = ("_key", "_key_id", "_name")

    def __init__(self, name: str, private_key: Ed25519PrivateKey) -> None:
        _check_key_name(name, "Ed25519 signer")
        self._name = name
        self._key = private_key
        self._key_id = note_key_id(name, SIG_TYPE_ED25519, private_key.public_key().public_bytes_raw())

    @classmethod
    def generate(cls, name: str) -> Ed25519NoteSigner:
        return cls(name, Ed25519PrivateKey.generate())

    @classmethod
    def from_skey(cls, skey: str) -> Ed25519NoteSigner:
        prefix = "PRIVATE+KEY+"
        if not skey.startswith(prefix):
            raise DecodeError("signer key: does not start with 'PRIVATE+KEY+'")
        parsed = parse_vkey(skey[len(prefix) :])
        if parsed.sig_type != SIG_TYPE_ED25519:
            raise SignatureError(
                f"signer key {parsed.name}: signature type 0x{parsed.sig_type:02x} is not Ed25519"
            )
        if len(parsed.public_key) != 32:
            raise DecodeError(
                f"signer key {parsed.name}: Ed25519 seed is {len(parsed.public_key)} bytes, not 32"
            )
        signer = cls(parsed.name, Ed25519PrivateKey.from_private_bytes(parsed.public_key))
        if signer.key_id != parsed.key_id:
            raise DecodeError(
                f"signer key {parsed.name}: key ID {parsed.key_id.hex()} does not match the key"
            )
        return signer

    @property
    def name(self) -> str:
        return self._name

    @property
    def key_id(self) -> bytes:
        return self._key_id

    def sign(self, text: str | bytes) -> NoteSignature:
        message = text.encode("utf-8") if isinstance(text, str) else text
        return NoteSignature(name=self._name, key_id=self._key_id, signature=self._key.sign(message))

    def vkey(self) -> str:
        public = self._key.public_key().public_bytes_raw()
        encoded = base64.b64encode(bytes([SIG_TYPE_ED25519]) + public).decode("ascii")
        return f"{self._name}+{self._key_id.hex()}+{encoded}"

    def skey(self) -> str:
        seed = self._key.private_bytes_raw()
        encoded = base64.b64encode(bytes([SIG_TYPE_ED25519]) + seed).decode("ascii")
        return f"PRIVATE+KEY+{self._name}+{self._key_id.hex()}+{encoded}"

    def verifier(self) -> Ed25519NoteVerifier:
        return Ed25519NoteVerifier(self._name, self._key.public_key().public_bytes_raw())
