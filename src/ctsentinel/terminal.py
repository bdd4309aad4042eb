"""Safe terminal output of attacker-controlled text (certificate fields).

A certificate's names are chosen by whoever requested it: a CN may hold ANSI escape sequences that rewrite
the operator's screen, or bidi controls that reorder what is shown. Everything printed on a terminal goes
through safe_text, which shows such characters as visible escapes instead of obeying them.
"""

from __future__ import annotations

import json
import unicodedata
from typing import Any

# Bidi embedding/override/isolate controls and other invisible format characters that can disguise text.
_FORMAT_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFF:
        return f"\\x{code:02x}"
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def safe_text(text: str) -> str:
    """`text` with control, format and unassigned characters written as \\xNN / \\uNNNN escapes."""
    if text.isprintable() and "\\" not in text:
        return text
    out = []
    for char in text:
        if char == "\\":
            out.append("\\\\")
        elif char != " " and unicodedata.category(char) in _FORMAT_CATEGORIES:
            out.append(_escape(char))
        else:
            out.append(char)
    return "".join(out)


def _json_escape(char: str) -> str:
    code = ord(char)
    if code <= 0xFFFF:
        return f"\\u{code:04x}"
    code -= 0x10000  # JSON spells a character beyond the BMP as its UTF-16 surrogate pair
    return f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}"


def safe_json(value: Any, indent: int | None = None) -> str:
    """JSON for a terminal: the same value json.dumps gives, with every control, format (bidi), separator
    and unassigned character written as a \\u escape, and other Unicode kept readable.

    json.dumps with ensure_ascii=False escapes only C0 controls, so DEL, the C1 controls (\\x9b is CSI to
    many terminals) and bidi overrides reached the terminal raw; ensure_ascii=True would escape them too,
    but also every letter outside ASCII, leaving a CA's name in its own script unreadable. Outside strings
    JSON is ASCII, so escaping characters anywhere in the text changes how strings are spelt, never what
    they hold: a JSON reader gets the same value either way.
    """
    text = json.dumps(value, ensure_ascii=False, indent=indent)
    if text.isprintable():
        return text
    return "".join(
        _json_escape(char) if char not in " \n" and unicodedata.category(char) in _FORMAT_CATEGORIES else char
        for char in text
    )
