"""Attribute values of a distinguished name as CertRecord writes it (RFC 4514 text: "CN=x,O=y", with
backslash escapes), for the few places that need one attribute out of it."""

from __future__ import annotations

COMMON_NAME = ("CN", "2.5.4.3")
ORGANIZATION = ("O", "2.5.4.10")


def attribute_values(dn: str, names: tuple[str, ...]) -> list[str]:
    """The values of the attributes called any of `names` (upper case, or dotted OIDs), in DN order,
    unescaped and stripped. A separator behind a backslash is part of the value."""
    found = []
    attribute: list[str] = []
    escaped = False
    for char in dn + ",":
        if escaped:
            attribute.append(char)
            escaped = False
        elif char == "\\":
            escaped = True
        elif char in ",+":
            name, _, value = "".join(attribute).partition("=")
            if name.strip().upper() in names:
                found.append(value.strip())
            attribute = []
        else:
            attribute.append(char)
    return found
