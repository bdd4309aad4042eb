"""How bad a finding is: the one ranking that policy, the store, the channels and the config share."""

from __future__ import annotations

from enum import StrEnum


class Severity(StrEnum):
    """`NONE` marks an authorized sighting: stored and searchable, never alerted."""

    NONE = "none"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    @property
    def is_alert(self) -> bool:
        return self is not Severity.NONE

    def at_least(self, floor: Severity) -> bool:
        return self.rank >= floor.rank

    @classmethod
    def alerting(cls) -> tuple[Severity, ...]:
        """The severities an alert can have, lowest first (what `min_severity` may name)."""
        return tuple(s for s in cls if s.is_alert)


_RANK = {severity: rank for rank, severity in enumerate(Severity)}
