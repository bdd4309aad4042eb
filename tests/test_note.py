"""Signed notes (c2sp.org/signed-note): parsing, verifier keys, Ed25519 and cosignature verification."""

from __future__ import annotations

import base64
import contextlib
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ctsentinel.ct.errors import DecodeError, SignatureError
from ctsentinel.ct.note import (
    MAX_NOTE_SIZE,
    MAX_SIGNATURES,
    CosignatureV1Verifier,
    Ed25519NoteSigner,
    Ed25519NoteVerifier,
    Note,
    NoteSignature,
    format_note,
    parse_note,
    parse_vkey,
    rfc6962_key_id,
    verify_note,
)
from ctsentinel.ct.signatures import LogKey

DATA = Path(__file__).parent / "data"
TLOG = DATA / "tlog"
STATIC = DATA / "static-ct"
SKYLIGHT = STATIC / "synthetic-sunlight-skylight"
WITNESS_CHECKPOINT = (
    SKYLIGHT / "witness" / "000de184301123b9278c086a7d9f68c9577e83872224c197058fd90784ea9706" / "checkpoint"
)
WITNESS2_CHECKPOINT = (
    SKYLIGHT / "witness2" / "88ad7a28caeb0b2aa890fdf0304c2fcaf59fca2ee140134ff8c1300bac493482" / "checkpoint"
)
TESSERA_CHECKPOINTS = sorted((TLOG / "tessera-testdata" / "log").glob("checkpoint*"))

# The example in the signed-note spec's "Verifier keys" section.
SPEC_VKEY = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k"
SPEC_NOTE = (
    "This is an example message.\n\n— example.com/foo "
    "Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n"
).encode()


def _read(path: Path) -> bytes:
    return path.read_bytes()


def _vkey(path: Path) -> str:
    return path.read_text().strip()


def _witness_verifier(directory: str) -> CosignatureV1Verifier:
    meta = json.loads((SKYLIGHT / directory / "witness.v0.json").read_text())
    (vkey,) = meta["verifier_keys"]
    return CosignatureV1Verifier.from_vkey(vkey)


def _flip(data: bytes, position: int, mask: int = 0x01) -> bytes:
    return data[:position] + bytes([data[position] ^ mask]) + data[position + 1 :]


# --- real notes ---------------------------------------------------------------------------------------------


def test_spec_example_verifies() -> None:
    verifier = Ed25519NoteVerifier.from_vkey(SPEC_VKEY)
    assert verifier.name == "example.com/foo"
    assert verifier.key_id == bytes.fromhex("530d903a")
    note = parse_note(SPEC_NOTE)
    assert note.text == "This is an example message.\n"
    assert verify_note(note, [verifier]) == note.signatures
    tampered = parse_note(SPEC_NOTE.replace(b"example message", b"example massage"))
    with pytest.raises(SignatureError, match="does not verify"):
        verify_note(tampered, [verifier])


def test_sumdb_checkpoint_verifies() -> None:
    data = _read(TLOG / "sum.golang.org" / "checkpoint")
    verifier = Ed25519NoteVerifier.from_vkey(_vkey(TLOG / "sum.golang.org" / "vkey.txt"))
    assert (verifier.name, verifier.key_id.hex()) == ("sum.golang.org", "033de0ae")
    note = parse_note(data)
    assert note.text.splitlines() == [
        "go.sum database tree",
        "6476701",
        "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=",
    ]
    assert [(s.name, s.key_id.hex(), len(s.signature)) for s in note.signatures] == [
        ("sum.golang.org", "033de0ae", 64)
    ]
    assert verify_note(note, [verifier]) == note.signatures
    assert format_note(note.text, note.signatures) == data


def test_sumdb_every_flipped_signature_byte_fails() -> None:
    note = parse_note(_read(TLOG / "sum.golang.org" / "checkpoint"))
    verifier = Ed25519NoteVerifier.from_vkey(_vkey(TLOG / "sum.golang.org" / "vkey.txt"))
    (sig,) = note.signatures
    for position in range(len(sig.signature)):
        bad = NoteSignature(sig.name, sig.key_id, _flip(sig.signature, position))
        with pytest.raises(SignatureError):
            verify_note(Note(note.text, [bad]), [verifier])


def test_sumdb_every_flipped_body_byte_fails() -> None:
    data = _read(TLOG / "sum.golang.org" / "checkpoint")
    verifier = Ed25519NoteVerifier.from_vkey(_vkey(TLOG / "sum.golang.org" / "vkey.txt"))
    text_len = len(parse_note(data).text.encode())
    for position in range(text_len):
        with pytest.raises((DecodeError, SignatureError)):
            verify_note(parse_note(_flip(data, position)), [verifier])


def test_tessera_checkpoints_verify() -> None:
    verifier = Ed25519NoteVerifier.from_vkey(_vkey(TLOG / "tessera-testdata" / "vkey.txt"))
    assert len(TESSERA_CHECKPOINTS) == 17
    sizes = set()
    for path in TESSERA_CHECKPOINTS:
        note = parse_note(_read(path))
        assert verify_note(note, [verifier]) == note.signatures
        origin, size, _root = note.text.splitlines()
        assert origin == "example.com/log/testdata"
        if path.suffix:
            assert int(size) == int(path.suffix[1:])
        sizes.add(int(size))
    assert sizes == set(range(16))


def test_tessera_verifier_rejects_sumdb() -> None:
    # Different key entirely: the lines are from an unknown key, so nothing verifies.
    verifier = Ed25519NoteVerifier.from_vkey(_vkey(TLOG / "tessera-testdata" / "vkey.txt"))
    with pytest.raises(SignatureError, match="no signature from a known key"):
        verify_note(parse_note(_read(TLOG / "sum.golang.org" / "checkpoint")), [verifier])


def test_witness_cosignatures_verify() -> None:
    for directory, path in (("witness", WITNESS_CHECKPOINT), ("witness2", WITNESS2_CHECKPOINT)):
        verifier = _witness_verifier(directory)
        note = parse_note(_read(path))
        (verified,) = verify_note(note, [verifier])
        assert verified.name == f"{directory}.example.org"
        # 2026-01-01T00:00:00Z, the time gen.go signs with.
        assert CosignatureV1Verifier.timestamp(verified.signature) == 1767139200
        for position in range(len(verified.signature)):
            bad = NoteSignature(verified.name, verified.key_id, _flip(verified.signature, position))
            with pytest.raises(SignatureError):
                verify_note(Note(note.text, [bad]), [verifier])


def test_witness_checkpoint_keeps_log_line() -> None:
    note = parse_note(_read(WITNESS_CHECKPOINT))
    assert [s.name for s in note.signatures] == ["rome2026h1.example.org", "witness.example.org"]
    # A cosignature over a different body does not verify (witness2 signed the milan origin).
    witness2 = _witness_verifier("witness2")
    other = parse_note(_read(WITNESS2_CHECKPOINT))
    moved = NoteSignature(witness2.name, witness2.key_id, other.signatures[0].signature)
    with pytest.raises(SignatureError):
        verify_note(Note(note.text, [moved]), [witness2])


def test_sycamore_grease_line_is_parsed_and_ignored() -> None:
    note = parse_note(_read(STATIC / "letsencrypt-sycamore2026h1" / "checkpoint"))
    assert [s.name for s in note.signatures] == ["grease.invalid", "log.sycamore.ct.letsencrypt.org/2026h1"]
    key = LogKey.from_pem(_read(STATIC / "letsencrypt-sycamore2026h1" / "letsencrypt-sycamore2026h1.pem"))
    assert note.signatures[1].key_id == rfc6962_key_id("log.sycamore.ct.letsencrypt.org/2026h1", key)
    assert note.signatures[0].key_id != note.signatures[1].key_id


# --- verification rules -----------------------------------------------------------------------------------


def test_unknown_keys_ignored_but_known_failure_rejects() -> None:
    good = Ed25519NoteSigner.generate("example.com/good")
    other = Ed25519NoteSigner.generate("example.com/other")
    text = "hello\n"
    note = Note(text, [other.sign(text), good.sign(text)])
    assert verify_note(note, [good.verifier()]) == [note.signatures[1]]
    # Same name, different key ID: an unknown key, ignored.
    impostor = Ed25519NoteSigner.generate("example.com/good")
    assert impostor.key_id != good.key_id
    note2 = Note(text, [impostor.sign(text), good.sign(text)])
    assert verify_note(note2, [good.verifier()]) == [note2.signatures[1]]
    # Same name and key ID with a bad signature: the whole note is rejected.
    forged = NoteSignature(good.name, good.key_id, impostor.sign(text).signature)
    with pytest.raises(SignatureError, match="does not verify"):
        verify_note(Note(text, [good.sign(text), forged]), [good.verifier()])
    with pytest.raises(SignatureError, match="no signature from a known key"):
        verify_note(Note(text, [other.sign(text)]), [good.verifier()])


def test_signer_round_trip() -> None:
    signer = Ed25519NoteSigner.generate("example.com/log42")
    vkey = signer.vkey()
    parsed = parse_vkey(vkey)
    assert (parsed.name, parsed.sig_type, len(parsed.public_key)) == ("example.com/log42", 1, 32)
    assert parsed.key_id == signer.key_id
    again = Ed25519NoteSigner.from_skey(signer.skey())
    assert again.vkey() == vkey
    assert signer.skey().startswith("PRIVATE+KEY+example.com/log42+")
    text = "example.com/log42\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    data = format_note(text, [signer.sign(text)])
    note = parse_note(data)
    assert note.text == text
    assert verify_note(note, [Ed25519NoteVerifier.from_vkey(vkey)]) == note.signatures


def test_vkey_errors() -> None:
    with pytest.raises(DecodeError):
        parse_vkey("example.com/foo+530d903a")
    with pytest.raises(DecodeError, match="lowercase hex"):
        parse_vkey(SPEC_VKEY.replace("530d903a", "530D903A"))
    with pytest.raises(DecodeError, match="does not match"):
        Ed25519NoteVerifier.from_vkey(SPEC_VKEY.replace("530d903a", "530d903b"))
    with pytest.raises(DecodeError, match="does not match"):
        Ed25519NoteVerifier.from_vkey(SPEC_VKEY.replace("example.com/foo", "example.com/bar"))
    with pytest.raises(DecodeError, match="base64"):
        Ed25519NoteVerifier.from_vkey(SPEC_VKEY + "!")
    # Rome's vkey is type 0x05 (RFC 6962), not Ed25519.
    with pytest.raises(SignatureError, match="not Ed25519"):
        Ed25519NoteVerifier.from_vkey(_vkey(STATIC / "filippo-rome2024h1" / "vkey.txt"))
    with pytest.raises(SignatureError, match="not cosignature"):
        CosignatureV1Verifier.from_vkey(SPEC_VKEY)
    with pytest.raises(DecodeError):
        Ed25519NoteSigner.from_skey(SPEC_VKEY)


def test_rfc6962_key_id_matches_rome_vkey() -> None:
    parsed = parse_vkey(_vkey(STATIC / "filippo-rome2024h1" / "vkey.txt"))
    assert parsed.name == "rome.ct.filippo.io/2024h1"
    assert parsed.sig_type == 0x05
    assert parsed.key_id == bytes.fromhex("78f4abae")
    key = LogKey.from_pem(_read(STATIC / "filippo-rome2024h1" / "key.pem"))
    assert parsed.public_key == key.spki_der
    assert base64.b64encode(key.log_id).decode() == "qT0HRLk491QYz2Xop38YM3+Te7X6hfRNtTuuLBTBGss="
    assert rfc6962_key_id(parsed.name, key) == bytes.fromhex("78f4abae")
    assert rfc6962_key_id("rome.ct.filippo.io/2024h2", key) != bytes.fromhex("78f4abae")


# --- malformed notes ----------------------------------------------------------------------------------------

GOOD_SIG = "— a.example/k " + base64.b64encode(b"\x01\x02\x03\x04sig").decode()


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"text\n" + GOOD_SIG.encode() + b"\n", "no blank line"),
        (b"text\n\n", "no signature lines"),
        (b"text\n\n\n", "no signature lines"),
        (b"text\n\n" + GOOD_SIG.encode(), "does not end with a newline"),
        (b"text\n\n" + GOOD_SIG.encode() + b"\n\n", "no signature lines"),
        (b"text\n\n- a.example/k AQIDBHNpZw==\n", "em dash"),
        (b"text\n\n\xe2\x80\x94a.example/k AQIDBHNpZw==\n", "em dash"),
        ("text\n\n—  a.example/k AQIDBHNpZw==\n".encode(), "expected"),
        ("text\n\n— a.example/k AQIDBHNpZw== \n".encode(), "expected"),
        ("text\n\n— a.example/k\n".encode(), "expected"),
        ("text\n\n— a+b AQIDBHNpZw==\n".encode(), "space or '\\+'"),
        ("text\n\n— a\u00a0b AQIDBHNpZw==\n".encode(), "space or '\\+'"),
        ("text\n\n— a.example/k AQIDBHNpZw=\n".encode(), "base64"),
        ("text\n\n— a.example/k AQIDBHNpZw\n".encode(), "base64"),
        ("text\n\n— a.example/k AQIDBHNpZx==\n".encode(), "non-canonical base64"),
        ("text\n\n— a.example/k AQID!HNpZw==\n".encode(), "base64"),
        ("text\n\n— a.example/k AQIDBA==\n".encode(), "too short"),
        (b"te\xffxt\n\n" + GOOD_SIG.encode() + b"\n", "invalid UTF-8 at offset 2"),
        (b"te\txt\n\n" + GOOD_SIG.encode() + b"\n", "control character 0x09 at offset 2"),
        (b"text\r\n\n" + GOOD_SIG.encode() + b"\n", "control character 0x0d at offset 4"),
        (b"text\x00\n\n" + GOOD_SIG.encode() + b"\n", "control character"),
        (b"\xed\xa0\x80\n\n" + GOOD_SIG.encode() + b"\n", "invalid UTF-8"),  # an encoded surrogate
        (b"x" * MAX_NOTE_SIZE + b"\n\n" + GOOD_SIG.encode() + b"\n", "exceeds the limit"),
        (b"text\n\n" + (GOOD_SIG.encode() + b"\n") * (MAX_SIGNATURES + 1), "exceeds the limit"),
    ],
)
def test_malformed_notes_rejected(data: bytes, message: str) -> None:
    with pytest.raises(DecodeError, match=message):
        parse_note(data)


def test_error_names_signature_line_and_offset() -> None:
    data = ("ab\n\n" + GOOD_SIG + "\n— bad+name AQIDBHNpZw==\n").encode()
    offset = len(("ab\n\n" + GOOD_SIG + "\n").encode())
    with pytest.raises(DecodeError, match=rf"signature line 2 \(offset {offset}\)"):
        parse_note(data)


def test_text_may_contain_blank_lines_and_sixteen_signatures() -> None:
    signers = [Ed25519NoteSigner.generate(f"w{i}.example") for i in range(16)]
    text = "first\n\nsecond paragraph, ünïcode — fine\n\n\nlast\n"
    data = format_note(text, [s.sign(text) for s in signers])
    note = parse_note(data)
    assert note.text == text
    assert len(note.signatures) == 16
    assert verify_note(note, [s.verifier() for s in signers]) == note.signatures


def test_text_may_be_a_single_newline() -> None:
    assert parse_note(b"\n\n" + GOOD_SIG.encode() + b"\n").text == "\n"


def test_format_note_rejects_what_would_not_parse() -> None:
    sig = NoteSignature("a.example/k", b"\x01\x02\x03\x04", b"sig")
    with pytest.raises(DecodeError):
        format_note("no newline", [sig])
    with pytest.raises(DecodeError):
        format_note("tab\there\n", [sig])
    with pytest.raises(DecodeError):
        format_note("text\n", [])
    with pytest.raises(DecodeError):
        format_note("text\n", [NoteSignature("a b", b"\x01\x02\x03\x04", b"sig")])
    with pytest.raises(DecodeError):
        format_note("text\n", [NoteSignature("a.example/k", b"\x01\x02\x03", b"sig")])
    with pytest.raises(DecodeError):
        format_note("text\n", [NoteSignature("a.example/k", b"\x01\x02\x03\x04", b"")])


# --- properties ---------------------------------------------------------------------------------------------

_NAME = st.text(
    alphabet=st.characters(
        codec="utf-8", exclude_categories=("Cc", "Cs", "Zs", "Zl", "Zp"), exclude_characters="+"
    ),
    min_size=1,
    max_size=20,
).filter(lambda s: not any(c.isspace() for c in s))
_TEXT_LINE = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cc", "Cs")), max_size=30)
_SIGNATURE = st.builds(
    NoteSignature, _NAME, st.binary(min_size=4, max_size=4), st.binary(min_size=1, max_size=80)
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_TEXT_LINE, min_size=1, max_size=5), st.lists(_SIGNATURE, min_size=1, max_size=5))
def test_format_parse_round_trip(lines: list[str], signatures: list[NoteSignature]) -> None:
    text = "".join(line + "\n" for line in lines)
    note = parse_note(format_note(text, signatures))
    assert note == Note(text, signatures)


REAL_NOTES = [
    _read(TLOG / "sum.golang.org" / "checkpoint"),
    _read(TESSERA_CHECKPOINTS[0]),
    _read(STATIC / "letsencrypt-sycamore2026h1" / "checkpoint"),
    _read(WITNESS_CHECKPOINT),
    SPEC_NOTE,
]
_VERIFIERS: list[Ed25519NoteVerifier | CosignatureV1Verifier] = [
    Ed25519NoteVerifier.from_vkey(_vkey(TLOG / "sum.golang.org" / "vkey.txt")),
    Ed25519NoteVerifier.from_vkey(_vkey(TLOG / "tessera-testdata" / "vkey.txt")),
    Ed25519NoteVerifier.from_vkey(SPEC_VKEY),
    _witness_verifier("witness"),
]


def _check_only_core_errors(data: bytes) -> None:
    with contextlib.suppress(DecodeError, SignatureError):
        verify_note(parse_note(data), _VERIFIERS)


@st.composite
def _mutated_note(draw: st.DrawFn) -> bytes:
    data = bytearray(draw(st.sampled_from(REAL_NOTES)))
    for _ in range(draw(st.integers(1, 4))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        if action == "flip":
            data[position] ^= draw(st.integers(1, 255))
        elif action == "delete":
            del data[position]
        elif action == "insert":
            data[position:position] = draw(st.sampled_from([b"\n", b" ", b"+", "—".encode(), b"=", b"\x00"]))
        else:
            del data[position:]
        if not data:
            break
    return bytes(data)


@settings(max_examples=300, deadline=None)
@given(_mutated_note())
def test_mutated_real_notes_raise_only_core_errors(data: bytes) -> None:
    _check_only_core_errors(data)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_core_errors(data: bytes) -> None:
    _check_only_core_errors(data)


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="— \n+=/abAB01\t\u00a0é", max_size=120))
def test_random_note_shaped_text_raises_only_core_errors(text: str) -> None:
    _check_only_core_errors(text.encode())


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=80))
def test_random_vkeys_raise_only_core_errors(vkey: str) -> None:
    for parse in (parse_vkey, Ed25519NoteVerifier.from_vkey, CosignatureV1Verifier.from_vkey):
        with contextlib.suppress(DecodeError, SignatureError):
            parse(vkey)
