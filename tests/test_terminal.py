import json
import unicodedata

from hypothesis import given, settings
from hypothesis import strategies as st

from ctsentinel.terminal import safe_json, safe_text

UNSAFE = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


def test_plain_text_unchanged() -> None:
    assert safe_text("www.example.com, 1.1.1.1 — Ünïcödé") == "www.example.com, 1.1.1.1 — Ünïcödé"


def test_escape_sequences_and_controls_are_shown_not_obeyed() -> None:
    hostile = "evil\x1b[2J\x1b]0;owned\x07.com\r\nX\x00\u202egnp.exe\x7f\x9b"
    shown = safe_text(hostile)
    assert not any(ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F for c in shown)
    assert "\u202e" not in shown
    assert shown == "evil\\x1b[2J\\x1b]0;owned\\x07.com\\x0d\\x0aX\\x00\\u202egnp.exe\\x7f\\x9b"


def test_backslash_is_escaped_so_escapes_are_unambiguous() -> None:
    assert safe_text("a\\x1b") == "a\\\\x1b"


@given(st.recursive(st.text() | st.none(), lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner)))
@settings(max_examples=300, deadline=None)
def test_safe_json_is_the_same_value_with_nothing_a_terminal_obeys(value: object) -> None:
    for indent in (None, 2):
        text = safe_json(value, indent=indent)
        assert json.loads(text) == value
        assert all(c in " \n" or unicodedata.category(c) not in UNSAFE for c in text)


def test_safe_json_keeps_letters_and_spells_astral_format_characters_as_pairs() -> None:
    assert safe_json(["Ünïcödé 中文", "\u202e\x9b\U000e0001"]) == (
        '["Ünïcödé 中文", "\\u202e\\u009b\\udb40\\udc01"]'
    )
