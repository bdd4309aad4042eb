"""The running test log: its storage, its faults and its sequencer, shared by every HTTP handler."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from aiohttp import web

from ctsentinel.ct.sth import SignedTreeHead
from ctsentinel.testlog.faults import FaultError, Faults, parse_value
from ctsentinel.testlog.storage import LogStorage, now_ms
from ctsentinel.testlog.view import LogView

log = logging.getLogger("ctsentinel.testlog")


@dataclass(frozen=True)
class ServeConfig:
    batch_size: int = 256  # most entries one get-entries returns
    merge_delay: float = 1.0  # seconds between sequencer runs; <= 0 integrates on every add
    sth_refresh: float = 60.0  # re-sign the head of an idle log this often, as real logs do


class TestLogService:
    __test__ = False  # not a pytest test class, despite its name

    def __init__(self, storage: LogStorage, config: ServeConfig) -> None:
        self.storage = storage
        self.config = config
        self.faults = Faults()
        self._signed_lies: dict[tuple[int, bytes], SignedTreeHead] = {}

    def view(self) -> LogView:
        return LogView(self.storage, self.faults, self._signed_lies)

    def tick(self) -> SignedTreeHead | None:
        """One sequencer run: publish a new head if entries wait or the last head is getting old."""
        head = self.storage.latest_sth()
        stale = now_ms() - head.timestamp >= self.config.sth_refresh * 1000
        if self.storage.pending_count > 0 or stale:
            return self.storage.integrate()
        return None

    # --- faults ----------------------------------------------------------------------------------------

    def set_fault(self, name: str, raw_value: object) -> None:
        value = parse_value(name, raw_value)
        if name == "fork":
            size = self.storage.tree_size
            index = max(0, size - 1) if value is None else int(value)
            self.faults.fork_base, self.faults.fork_index = size, index
        elif name == "malformed-entry":
            next_index = self.storage.tree_size + self.storage.pending_count
            index = next_index if value is None else int(value)
            if index < next_index:
                raise FaultError(
                    f"malformed-entry: entry {index} is already logged; the next free index is {next_index}"
                )
            self.storage.malformed_indexes.add(index)
            value = index
        elif name == "huge-name":
            next_index = self.storage.tree_size + self.storage.pending_count
            self.storage.huge_names[next_index] = int(value or 0)
        self.faults.set(name, value)
        log.info("fault set: %s=%s", name, value)

    def clear_faults(self, names: Iterable[str]) -> None:
        names = list(names)
        if "malformed-entry" in names:
            self.storage.malformed_indexes.clear()
        if "huge-name" in names:
            self.storage.huge_names.clear()
        self.faults.clear(names)
        log.info("faults cleared: %s", ", ".join(names))

    def apply(self, to_set: Mapping[str, object], to_clear: Iterable[str]) -> None:
        self.clear_faults(to_clear)
        for name, value in to_set.items():
            self.set_fault(name, value)


SERVICE: web.AppKey[TestLogService] = web.AppKey("testlog", TestLogService)
