"""Domain matching through a suffix index: cost per certificate name is one dict lookup per label.

A watched domain covers itself and every subdomain; a watched "*.example.com" covers only the subdomains.
A wildcard certificate name "*.s" stands for any single label under s, so it matches a watched domain d when
the names it covers can fall under d (s is d or below it) or when it covers d itself (d is one label below s).
"""

from __future__ import annotations

from collections.abc import Iterable


class DomainIndex:
    """Maps watched domains (A-labels, lower case) to the ids of the watches that hold them."""

    def __init__(self) -> None:
        # domain -> watch ids that cover the domain itself and its subdomains
        self._with_apex: dict[str, list[int]] = {}
        # domain -> watch ids that cover only its subdomains ("*.domain" in the config)
        self._below_only: dict[str, list[int]] = {}
        # parent -> watch ids on a domain exactly one label below it (a wildcard "*.parent" covers those)
        self._by_parent: dict[str, list[int]] = {}

    def add(self, domain: str, watch_id: int) -> None:
        if domain.startswith("*."):
            _add(self._below_only, domain[2:], watch_id)
            return
        _add(self._with_apex, domain, watch_id)
        parent = domain.partition(".")[2]
        if parent:
            _add(self._by_parent, parent, watch_id)

    def __len__(self) -> int:
        return len(self._with_apex) + len(self._below_only)

    def match(self, name: str) -> Iterable[int]:
        """Ids of the watches that the certificate name `name` matches (may repeat)."""
        name = name.rstrip(".").lower()
        if name.startswith("*."):
            yield from self._match_wildcard(name[2:])
            return
        with_apex, below_only = self._with_apex, self._below_only
        ids = with_apex.get(name)
        if ids:
            yield from ids
        position = name.find(".")
        while position != -1:
            suffix = name[position + 1 :]
            ids = with_apex.get(suffix)
            if ids:
                yield from ids
            ids = below_only.get(suffix)
            if ids:
                yield from ids
            position = name.find(".", position + 1)

    def _match_wildcard(self, base: str) -> Iterable[int]:
        # "*.base" names some label under base: every watch covering base's subdomains matches, which is
        # a watch on base itself (either form) or on any suffix of base.
        yield from self._with_apex.get(base, ())
        yield from self._below_only.get(base, ())
        position = base.find(".")
        while position != -1:
            suffix = base[position + 1 :]
            yield from self._with_apex.get(suffix, ())
            yield from self._below_only.get(suffix, ())
            position = base.find(".", position + 1)
        # ... and "*.base" also covers a watched domain exactly one label below base.
        yield from self._by_parent.get(base, ())


def _add(table: dict[str, list[int]], key: str, watch_id: int) -> None:
    # Watches are added in increasing id order, so a repeat can only be the last id: O(1) per add.
    ids = table.setdefault(key, [])
    if not ids or ids[-1] != watch_id:
        ids.append(watch_id)
