"""The ways a log can break the promise of one consistent, append-only tree (docs/monitor-design.md)."""

from __future__ import annotations

from enum import StrEnum


class MisbehaviourKind(StrEnum):
    BAD_SIGNATURE = "bad_signature"  # a tree head whose signature does not verify
    SHRINK = "shrink"  # a newer head of a smaller tree
    FORK = "fork"  # two different roots for one tree size
    INCONSISTENT = "inconsistent"  # a consistency proof that fails between two signed heads
    BAD_ENTRIES = "bad_entries"  # entries that do not hash to the signed root
