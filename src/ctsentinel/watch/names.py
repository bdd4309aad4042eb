"""Domain matching through a suffix index: cost per certificate name is one dict lookup per label.

A watched domain covers itself and every subdomain; a watched "*.example.com" covers only the subdomains.
A wildcard certificate name "*.s" stands for any single label under s, so it matches a watched domain d when
the names it covers can fall under d (s is d or below it) or when it covers d itself (d is one label below s).
"""

from __future__ import annotations

from collections.abc import Iterable

from ctsentinel.certs.hosts import MAX_NAME, name_problem


class DomainIndex:
    """Maps watched domains (A-labels, lower case) to the ids of the watches that hold them.

    A name can only match a watched domain that is one of its suffixes with at most as many labels as the
    deepest watched domain: those few suffixes are looked up, found from the right, so the cost of a name
    is linear in its length, never one copy per dot.
    """

    def __init__(self) -> None:
        # domain -> watch ids that cover the domain itself and its subdomains
        self._with_apex: dict[str, list[int]] = {}
        # domain -> watch ids that cover only its subdomains ("*.domain" in the config)
        self._below_only: dict[str, list[int]] = {}
        # parent -> watch ids on a domain exactly one label below it (a wildcard "*.parent" covers those)
        self._by_parent: dict[str, list[int]] = {}
        self._depth = 0  # labels of the deepest key of _with_apex and _below_only
        # The last label of every watched domain: a name can match only a domain it shares that with
        # (every match is a suffix, or a parent one label up), and nearly every name a log holds shares
        # it with none, so most names are ruled out by this one set lookup.
        self._last_labels: set[str] = set()

    def add(self, domain: str, watch_id: int) -> None:
        if domain.startswith("*."):
            domain = domain[2:]
            _add(self._below_only, domain, watch_id)
        else:
            _add(self._with_apex, domain, watch_id)
            parent = domain.partition(".")[2]
            if parent:
                _add(self._by_parent, parent, watch_id)
        self._depth = max(self._depth, domain.count(".") + 1)
        self._last_labels.add(domain.rpartition(".")[2])

    def __len__(self) -> int:
        return len(self._with_apex) + len(self._below_only)

    def covers(self, name: str) -> bool:
        """Whether some watch matches the certificate name `name` (what match() finds, as a yes or no)."""
        last = name[name.rfind(".") + 1 :]
        if last not in self._last_labels and (last.islower() or not last) and name[-1:] != ".":
            return False  # the usual name, in the form match() compares: no watched domain ends like it
        return next(iter(self.match(name)), None) is not None

    def match(self, name: str) -> Iterable[int]:
        """Ids of the watches that the certificate name `name` matches (may repeat); none for what cannot
        be a DNS name (over 253 octets, or a label over 63: certs.hosts flags those in the record)."""
        if len(name) > MAX_NAME + 1:
            return
        name = name.rstrip(".").lower()
        if name_problem(name) is not None:
            return
        if name.startswith("*."):
            yield from self._match_wildcard(name[2:])
            return
        with_apex, below_only = self._with_apex, self._below_only
        ids = with_apex.get(name)
        if ids:
            yield from ids
        for suffix in self._parents(name):
            ids = with_apex.get(suffix)
            if ids:
                yield from ids
            ids = below_only.get(suffix)
            if ids:
                yield from ids

    def _match_wildcard(self, base: str) -> Iterable[int]:
        # "*.base" names some label under base: every watch covering base's subdomains matches, which is
        # a watch on base itself (either form) or on any suffix of base.
        yield from self._with_apex.get(base, ())
        yield from self._below_only.get(base, ())
        for suffix in self._parents(base):
            yield from self._with_apex.get(suffix, ())
            yield from self._below_only.get(suffix, ())
        # ... and "*.base" also covers a watched domain exactly one label below base.
        yield from self._by_parent.get(base, ())

    def _parents(self, name: str) -> list[str]:
        """The proper suffixes of name that could be watched: of 1 to _depth labels, shortest first."""
        found = []
        position = len(name)
        for _ in range(self._depth):
            position = name.rfind(".", 0, position)
            if position == -1:
                break
            found.append(name[position + 1 :])
        return found


def _add(table: dict[str, list[int]], key: str, watch_id: int) -> None:
    # Watches are added in increasing id order, so a repeat can only be the last id: O(1) per add.
    ids = table.setdefault(key, [])
    if not ids or ids[-1] != watch_id:
        ids.append(watch_id)
