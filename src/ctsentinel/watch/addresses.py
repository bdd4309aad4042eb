"""Address matching through an interval index: one binary search per certificate address.

Watched networks may nest or overlap (1.1.1.1 inside 1.1.1.0/24 inside 1.0.0.0/8, in different watches),
so the index is built once as a sorted list of elementary segments, each carrying every watch that covers
it. A lookup is a bisect over segment starts, whatever the number of watched networks.
"""

from __future__ import annotations

import bisect
import ipaddress
from collections.abc import Iterable, Sequence

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AddressIndex:
    """Maps watched IPv4/IPv6 networks to the ids of the watches that hold them."""

    def __init__(self, networks: Iterable[tuple[IPNetwork, int]] = ()) -> None:
        self._starts: dict[int, list[int]] = {4: [], 6: []}
        self._segments: dict[int, list[tuple[int, tuple[int, ...]]]] = {4: [], 6: []}
        pending: dict[int, list[tuple[int, int, int]]] = {4: [], 6: []}
        for network, watch_id in networks:
            first, last = int(network.network_address), int(network.broadcast_address)
            pending[network.version].append((first, last, watch_id))
        for version, spans in pending.items():
            self._build(version, spans)

    def _build(self, version: int, spans: Sequence[tuple[int, int, int]]) -> None:
        # Sweep the boundaries in order: at a network's first address its watch joins the covering set,
        # just past its last address it leaves. O(n log n) in the number of networks.
        events: dict[int, list[tuple[int, int]]] = {}
        for first, last, watch_id in spans:
            events.setdefault(first, []).append((watch_id, +1))
            events.setdefault(last + 1, []).append((watch_id, -1))
        active: dict[int, int] = {}
        segments: list[tuple[int, tuple[int, ...]]] = []
        for point in sorted(events):
            for watch_id, change in events[point]:
                count = active.get(watch_id, 0) + change
                if count:
                    active[watch_id] = count
                else:
                    active.pop(watch_id, None)
            covering = tuple(sorted(active))
            if not segments or segments[-1][1] != covering:
                segments.append((point, covering))
        self._segments[version] = segments
        self._starts[version] = [start for start, _ in segments]

    def __len__(self) -> int:
        return sum(len(s) for s in self._segments.values())

    def match(self, address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> tuple[int, ...]:
        """Ids of the watches whose networks hold `address` (an IPv4-mapped IPv6 address counts as IPv4)."""
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        starts = self._starts[address.version]
        position = bisect.bisect_right(starts, int(address)) - 1
        if position < 0:
            return ()
        return self._segments[address.version][position][1]
