"""The stdout channel: a readable block per event on the terminal (or wherever stdout goes)."""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import TextIO

from ctsentinel.notify.base import Channel, DeliveryError
from ctsentinel.notify.events import Event
from ctsentinel.notify.render import text_block
from ctsentinel.watch.severity import Severity


class StdoutChannel(Channel):
    kind = "stdout"

    def __init__(
        self,
        key: str,
        min_severity: Severity = Severity.LOW,
        watches: Sequence[str] = (),
        stream: TextIO | None = None,
    ) -> None:
        super().__init__(key, min_severity, watches)
        self._stream = stream

    async def deliver(self, event: Event, idempotency_key: str) -> None:
        stream = self._stream or sys.stdout  # looked up late so that tests' capture applies
        try:
            stream.write(text_block(event) + "\n")
            stream.flush()
        except (OSError, ValueError) as exc:  # a closed pipe, a closed file
            raise DeliveryError(f"stdout: {exc}") from None
