"""Checkpoints (c2sp.org/tlog-checkpoint) and static-ct-api RFC6962NoteSignature verification."""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctsentinel.ct.checkpoint import (
    Checkpoint,
    open_checkpoint,
    parse_checkpoint_text,
    rfc6962_note_signature,
    sign_checkpoint,
)
from ctsentinel.ct.errors import DecodeError, SignatureError
from ctsentinel.ct.note import (
    CosignatureV1Verifier,
    Ed25519NoteSigner,
    NoteSignature,
    format_note,
    parse_note,
    rfc6962_key_id,
    verify_note,
)
from ctsentinel.ct.signatures import LogKey, LogSigner

DATA = Path(__file__).parent / "data" / "static-ct"
ROME = DATA / "filippo-rome2024h1"
ROME_ORIGIN = "rome.ct.filippo.io/2024h1"
SYCAMORE = DATA / "letsencrypt-sycamore2026h1"
SYCAMORE_ORIGIN = "log.sycamore.ct.letsencrypt.org/2026h1"
SKYLIGHT = DATA / "synthetic-sunlight-skylight"
SKYLIGHT_ORIGIN = "rome2026h1.example.org"
ROOT = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="  # base64 of bytes 0..31
WITNESS_CHECKPOINT = (
    SKYLIGHT / "witness" / "000de184301123b9278c086a7d9f68c9577e83872224c197058fd90784ea9706" / "checkpoint"
)


def _rome_key() -> LogKey:
    return LogKey.from_pem((ROME / "key.pem").read_bytes())


def _skylight_meta() -> dict[str, object]:
    meta: dict[str, object] = json.loads((SKYLIGHT / "tree" / "log.v3.json").read_text())
    return meta


def _skylight_key() -> LogKey:
    return LogKey.from_base64(str(_skylight_meta()["key"]))


def _flip(data: bytes, position: int, mask: int = 0x01) -> bytes:
    return data[:position] + bytes([data[position] ^ mask]) + data[position + 1 :]


# --- real checkpoints ---------------------------------------------------------------------------------------


def test_rome_checkpoint_verifies() -> None:
    verified = open_checkpoint((ROME / "checkpoint").read_bytes(), ROME_ORIGIN, _rome_key())
    assert verified.checkpoint == Checkpoint(
        origin=ROME_ORIGIN,
        tree_size=115474666,
        root_hash=base64.b64decode("2q1K6aiIJR+F7TyhiWOghoWOjY0/3dVBLsBbAvB4xCw="),
    )
    assert verified.timestamp == 1711519390034
    assert [s.name for s in verified.note.signatures] == [ROME_ORIGIN]
    assert verified.note.signatures[0].key_id == bytes.fromhex("78f4abae")


def test_rome_every_flipped_byte_fails() -> None:
    data = (ROME / "checkpoint").read_bytes()
    key = _rome_key()
    for position in range(len(data)):
        for mask in (0x01, 0x80):
            with pytest.raises((DecodeError, SignatureError)):
                open_checkpoint(_flip(data, position, mask), ROME_ORIGIN, key)


def test_rome_every_flipped_signature_bit_fails() -> None:
    # Flips inside the decoded signature (timestamp, algorithm bytes, length, ECDSA DER), re-encoded
    # canonically so that the line still parses.
    data = (ROME / "checkpoint").read_bytes()
    key = _rome_key()
    note = parse_note(data)
    (sig,) = note.signatures
    for position in range(len(sig.signature)):
        bad = NoteSignature(sig.name, sig.key_id, _flip(sig.signature, position))
        with pytest.raises((DecodeError, SignatureError)):
            open_checkpoint(format_note(note.text, [bad]), ROME_ORIGIN, key)


def test_rome_wrong_origin_or_key() -> None:
    data = (ROME / "checkpoint").read_bytes()
    with pytest.raises(SignatureError, match="origin"):
        open_checkpoint(data, "rome.ct.filippo.io/2024h2", _rome_key())
    with pytest.raises(SignatureError, match="no signature line"):
        other = LogKey.from_pem((SYCAMORE / "letsencrypt-sycamore2026h1.pem").read_bytes())
        open_checkpoint(data, ROME_ORIGIN, other)


def test_sycamore_parses_but_does_not_verify() -> None:
    data = (SYCAMORE / "checkpoint").read_bytes()
    note = parse_note(data)
    checkpoint = parse_checkpoint_text(note.text)
    assert (checkpoint.origin, checkpoint.tree_size) == (SYCAMORE_ORIGIN, 910004669)
    assert note.signatures[0].name == "grease.invalid"
    key = LogKey.from_pem((SYCAMORE / "letsencrypt-sycamore2026h1.pem").read_bytes())
    assert note.signatures[1].key_id == rfc6962_key_id(SYCAMORE_ORIGIN, key)
    assert int.from_bytes(note.signatures[1].signature[:8], "big") == 1776604895286
    with pytest.raises(SignatureError, match="does not verify"):
        open_checkpoint(data, SYCAMORE_ORIGIN, key)


def test_skylight_checkpoint_verifies_and_matches_log_metadata() -> None:
    meta = _skylight_meta()
    head = meta["final_tree_head"]
    assert isinstance(head, dict)
    data = (SKYLIGHT / "tree" / "checkpoint").read_bytes()
    verified = open_checkpoint(data, SKYLIGHT_ORIGIN, _skylight_key())
    assert verified.checkpoint.tree_size == head["tree_size"] == 300
    assert verified.timestamp == head["timestamp"] == 1767139200000
    assert base64.b64encode(verified.checkpoint.root_hash).decode() == head["sha256_root_hash"]
    assert base64.b64encode(_skylight_key().log_id).decode() == meta["log_id"]


def test_cosigned_checkpoint_opens_and_cosignature_verifies() -> None:
    data = WITNESS_CHECKPOINT.read_bytes()
    verified = open_checkpoint(data, SKYLIGHT_ORIGIN, _skylight_key())
    assert verified.timestamp == 1767139200000
    (vkey,) = json.loads((SKYLIGHT / "witness" / "witness.v0.json").read_text())["verifier_keys"]
    (cosig,) = verify_note(verified.note, [CosignatureV1Verifier.from_vkey(vkey)])
    assert cosig.name == "witness.example.org"


# --- signing (the test log's side) --------------------------------------------------------------------------


def test_sign_and_open_round_trip() -> None:
    signer = LogSigner.generate()
    checkpoint = Checkpoint("log.example/2026", 12345, bytes(range(32)))
    data = sign_checkpoint(checkpoint, 1700000000123, signer)
    verified = open_checkpoint(data, "log.example/2026", signer.public_key)
    assert verified.checkpoint == checkpoint
    assert verified.timestamp == 1700000000123
    assert data.startswith(f"log.example/2026\n12345\n{ROOT}\n\n— log.example/2026 ".encode())
    other = LogSigner.generate()
    with pytest.raises(SignatureError):
        open_checkpoint(data, "log.example/2026", other.public_key)


def test_extra_signature_lines_are_ignored() -> None:
    signer = LogSigner.generate()
    witness = Ed25519NoteSigner.generate("witness.example")
    checkpoint = Checkpoint("log.example/2026", 7, bytes(32))
    data = sign_checkpoint(checkpoint, 5, signer, extra=[witness.sign(checkpoint.to_text())])
    verified = open_checkpoint(data, "log.example/2026", signer.public_key)
    assert [s.name for s in verified.note.signatures] == ["log.example/2026", "witness.example"]
    # A line with the log's name but another key ID is someone else's key: ignored.
    stranger = rfc6962_note_signature(checkpoint, 6, LogSigner.generate())
    data = format_note(checkpoint.to_text(), [stranger, rfc6962_note_signature(checkpoint, 5, signer)])
    assert open_checkpoint(data, "log.example/2026", signer.public_key).timestamp == 5


def test_bad_matching_line_rejects_even_with_a_good_one() -> None:
    signer = LogSigner.generate()
    checkpoint = Checkpoint("log.example/2026", 7, bytes(32))
    good = rfc6962_note_signature(checkpoint, 5, signer)
    bad = NoteSignature(good.name, good.key_id, (6).to_bytes(8, "big") + good.signature[8:])
    with pytest.raises(SignatureError, match="does not verify"):
        open_checkpoint(format_note(checkpoint.to_text(), [good, bad]), "log.example/2026", signer.public_key)


def test_extension_lines_rejected_for_static_ct() -> None:
    signer = LogSigner.generate()
    checkpoint = Checkpoint("log.example/2026", 7, bytes(32), ("ext",))
    with pytest.raises(DecodeError, match="extension"):
        sign_checkpoint(checkpoint, 5, signer)
    plain = Checkpoint("log.example/2026", 7, bytes(32))
    line = rfc6962_note_signature(plain, 5, signer)
    with pytest.raises(DecodeError, match="extension"):
        open_checkpoint(format_note(checkpoint.to_text(), [line]), "log.example/2026", signer.public_key)


def test_truncated_signature_is_a_decode_error() -> None:
    signer = LogSigner.generate()
    checkpoint = Checkpoint("log.example/2026", 7, bytes(32))
    line = rfc6962_note_signature(checkpoint, 5, signer)
    for cut in (1, 7, 8, 9, 11, len(line.signature) - 1):
        short = NoteSignature(line.name, line.key_id, line.signature[:cut])
        with pytest.raises(DecodeError, match="RFC6962NoteSignature"):
            open_checkpoint(format_note(checkpoint.to_text(), [short]), "log.example/2026", signer.public_key)


# --- checkpoint text ----------------------------------------------------------------------------------------


def test_parse_checkpoint_text_fields() -> None:
    checkpoint = parse_checkpoint_text(f"example.com/log\n0\n{ROOT}\nfoo bar\nbaz\n")
    assert checkpoint == Checkpoint("example.com/log", 0, bytes(range(32)), ("foo bar", "baz"))
    assert checkpoint.to_text() == f"example.com/log\n0\n{ROOT}\nfoo bar\nbaz\n"
    big = parse_checkpoint_text(f"o\n{2**64 - 1}\n{ROOT}\n")
    assert big.tree_size == 2**64 - 1


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (f"o\n1\n{ROOT}", "newline"),
        ("o\n1\n", "at least"),
        (f"\n1\n{ROOT}\n", "empty origin"),
        (f"o\n01\n{ROOT}\n", "canonical decimal"),
        (f"o\n00\n{ROOT}\n", "canonical decimal"),
        (f"o\n+1\n{ROOT}\n", "canonical decimal"),
        (f"o\n 1\n{ROOT}\n", "canonical decimal"),
        (f"o\n1 \n{ROOT}\n", "canonical decimal"),
        (f"o\n1_0\n{ROOT}\n", "canonical decimal"),
        (f"o\n\u0661\n{ROOT}\n", "canonical decimal"),
        (f"o\n{2**64}\n{ROOT}\n", "tree size 18446744073709551616 does not fit in 64 bits"),
        (f"o\n{'9' * 4301}\n{ROOT}\n", r"tree size 9{20}… \(4301 digits\) does not fit"),
        (f"o\n-1\n{ROOT}\n", "canonical decimal"),
        (f"o\n\n{ROOT}\n", "canonical decimal"),
        (f"o\n{2**64}\n{ROOT}\n", "64 bits"),
        ("o\n1\nAAAA\n", "3 bytes, not 32"),
        (f"o\n1\n{ROOT[:-1]}\n", "base64"),
        (f"o\n1\n{ROOT}=\n", "base64"),
        (f"o\n1\n{ROOT[:-2]}x=\n", "non-canonical"),
        (f"o\n1\n{ROOT}\n\n", "empty extension"),
        (f"o\n1\n{ROOT}\next\n\nmore\n", "line 5: empty extension"),
    ],
)
def test_malformed_checkpoint_text(text: str, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        parse_checkpoint_text(text)


def test_to_text_rejects_unrepresentable_checkpoints() -> None:
    for bad in (
        Checkpoint("", 1, bytes(32)),
        Checkpoint("a\nb", 1, bytes(32)),
        Checkpoint("o", -1, bytes(32)),
        Checkpoint("o", 1, bytes(31)),
        Checkpoint("o", 1, bytes(32), ("",)),
        Checkpoint("o", 1, bytes(32), ("a\nb",)),
    ):
        with pytest.raises(DecodeError):
            bad.to_text()


_LINE = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), min_size=1, max_size=30
)


@settings(max_examples=200, deadline=None)
@given(_LINE, st.integers(0, 2**64 - 1), st.binary(min_size=32, max_size=32), st.lists(_LINE, max_size=3))
def test_checkpoint_text_round_trip(origin: str, size: int, root: bytes, extensions: list[str]) -> None:
    checkpoint = Checkpoint(origin, size, root, tuple(extensions))
    assert parse_checkpoint_text(checkpoint.to_text()) == checkpoint


# --- robustness ---------------------------------------------------------------------------------------------

_REAL = [
    ((ROME / "checkpoint").read_bytes(), ROME_ORIGIN, _rome_key()),
    ((SKYLIGHT / "tree" / "checkpoint").read_bytes(), SKYLIGHT_ORIGIN, _skylight_key()),
    (WITNESS_CHECKPOINT.read_bytes(), SKYLIGHT_ORIGIN, _skylight_key()),
    (
        (SYCAMORE / "checkpoint").read_bytes(),
        SYCAMORE_ORIGIN,
        LogKey.from_pem((SYCAMORE / "letsencrypt-sycamore2026h1.pem").read_bytes()),
    ),
]


@st.composite
def _mutated(draw: st.DrawFn) -> tuple[bytes, str, LogKey]:
    data, origin, key = draw(st.sampled_from(_REAL))
    buf = bytearray(data)
    for _ in range(draw(st.integers(1, 3))):
        if not buf:
            break
        position = draw(st.integers(0, len(buf) - 1))
        action = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if action == "flip":
            buf[position] ^= draw(st.integers(1, 255))
        elif action == "delete":
            del buf[position]
        elif action == "insert":
            buf[position:position] = draw(st.sampled_from([b"\n", b"0", b"=", b"A", "—".encode(), b" "]))
        else:
            del buf[position:]
    return bytes(buf), origin, key


@settings(max_examples=300, deadline=None)
@given(_mutated())
def test_mutated_checkpoints_raise_only_core_errors(case: tuple[bytes, str, LogKey]) -> None:
    data, origin, key = case
    with contextlib.suppress(DecodeError, SignatureError):
        open_checkpoint(data, origin, key)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="—\n 0123456789+=/AQab.", max_size=150))
def test_random_checkpoint_shaped_text_raises_only_core_errors(text: str) -> None:
    with contextlib.suppress(DecodeError, SignatureError):
        open_checkpoint(text.encode(), ROME_ORIGIN, _REAL[0][2])
