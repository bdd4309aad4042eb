"""A cache of byte strings bounded by their total size, for what a log sends and the monitor keeps reusing
(static-ct issuer certificates, the chains built from them): a count bound alone lets a hostile log fill
the memory with a few huge values, so the budget is in bytes, the least recently used values go first,
and a value larger than the whole budget is not kept at all (its user simply has it again next time)."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable, Iterator, Mapping
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


class ByteCache(Mapping[K, bytes], Generic[K]):
    """Least recently used byte strings, `budget` bytes in all (values only: keys are small)."""

    def __init__(self, budget: int) -> None:
        if budget < 0:
            raise ValueError("a byte budget cannot be negative")
        self.budget = budget
        self.size = 0  # bytes held now
        self._values: OrderedDict[K, bytes] = OrderedDict()

    def __getitem__(self, key: K) -> bytes:
        value = self._values[key]
        self._values.move_to_end(key)
        return value

    def __iter__(self) -> Iterator[K]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def put(self, key: K, value: bytes) -> None:
        old = self._values.pop(key, None)
        if old is not None:
            self.size -= len(old)
        if len(value) > self.budget:
            return
        while self.size + len(value) > self.budget:
            _, evicted = self._values.popitem(last=False)
            self.size -= len(evicted)
        self._values[key] = value
        self.size += len(value)

    def clear(self) -> None:
        self._values.clear()
        self.size = 0
