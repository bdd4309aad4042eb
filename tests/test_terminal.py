from ctsentinel.terminal import safe_text


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
