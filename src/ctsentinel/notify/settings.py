"""What one [[notify]] table asks for, as the command hands it to notify (which never reads the config)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ctsentinel.watch.severity import Severity


@dataclass(frozen=True)
class ChannelSettings:
    kind: str  # stdout | jsonl | webhook | email | exec
    options: Mapping[str, Any] = field(default_factory=dict)  # checked by the channel when it is built
    min_severity: Severity = Severity.LOW
    watches: tuple[str, ...] = ()  # empty: every watch


NOTIFY_KINDS = ("stdout", "jsonl", "webhook", "email", "exec")
