"""The jsonl channel: one event object per line, appended to a file and fsynced before it counts.

Each line is written with ONE os.write on a descriptor opened with O_APPEND, so several processes may
append to the same file without interleaving parts of their lines.
"""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence

from ctsentinel.notify.base import Channel, DeliveryError
from ctsentinel.notify.events import Event
from ctsentinel.watch.severity import Severity


class JsonlChannel(Channel):
    kind = "jsonl"

    def __init__(
        self, key: str, path: str, min_severity: Severity = Severity.LOW, watches: Sequence[str] = ()
    ) -> None:
        super().__init__(key, min_severity, watches)
        self.path = path

    def destination(self) -> tuple[str, tuple[str, ...]]:
        return self.path, (self.path,)

    async def deliver(self, event: Event, idempotency_key: str) -> None:
        # ensure_ascii: the file is meant to be tailed on a terminal; escapes keep hostile text inert.
        line = (json.dumps(event.to_json(), ensure_ascii=True) + "\n").encode("ascii")
        await asyncio.to_thread(self._append, line)

    def _append(self, line: bytes) -> None:
        try:
            fd = os.open(
                self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600
            )
        except OSError as exc:
            raise DeliveryError(f"jsonl {self.path}: cannot open: {exc.strerror or exc}") from None
        try:
            written = os.write(fd, line)
            if written != len(line):  # a full disk: the partial line is followed by the retry's whole one
                raise DeliveryError(f"jsonl {self.path}: short write ({written} of {len(line)} bytes)")
            os.fsync(fd)
        except OSError as exc:
            raise DeliveryError(f"jsonl {self.path}: {exc.strerror or exc}") from None
        finally:
            os.close(fd)
