"""Safe terminal output of attacker-controlled text (certificate fields).

A certificate's names are chosen by whoever requested it: a CN may hold ANSI escape sequences that rewrite
the operator's screen, or bidi controls that reorder what is shown. Everything printed on a terminal goes
through safe_text, which shows such characters as visible escapes instead of obeying them.
"""

from __future__ import annotations

import unicodedata

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
