"""The verification rule of docs/monitor-design.md as a small state machine, free of I/O.

A `LogVerifier` holds what has been proven about one log: the last verified tree head (the *target* the
entries are proven against) and the compact range at `position`, the next entry to process. The pipeline
feeds it tree heads, consistency proofs and leaf hashes; every check that fails raises `Misbehaviour` with
the evidence, and leaves the verifier exactly as it was, so nothing unproven can slip into the state.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ctsentinel.ct.errors import CTError
from ctsentinel.ct.merkle import EMPTY_ROOT, CompactRange, verify_consistency
from ctsentinel.ct.misbehaviour import MisbehaviourKind
from ctsentinel.errors import Error
from ctsentinel.store.types import RAW_HEAD_LIMIT
from ctsentinel.store.types import TreeHeadLike as Head  # logs.client.TreeHead has exactly these


class Misbehaviour(Error):
    """A log served something a consistent append-only log cannot."""

    def __init__(self, kind: MisbehaviourKind, detail: str, evidence: dict[str, object]) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind
        self.detail = detail
        self.evidence = evidence


def head_evidence(head: Head) -> dict[str, object]:
    """A tree head as JSON-ready evidence, its raw response included so a third party can re-check it;
    a body over RAW_HEAD_LIMIT bytes (no real head is that large) is cut there, its size and SHA-256 kept."""
    body = head.raw[:RAW_HEAD_LIMIT]
    try:
        raw: str = body.decode("utf-8")
        encoding = "utf-8"
    except UnicodeDecodeError:
        raw, encoding = base64.b64encode(body).decode("ascii"), "base64"
    evidence: dict[str, object] = {
        "tree_size": head.tree_size,
        "timestamp": head.timestamp,
        "root_hash": head.root_hash.hex(),
        "raw": raw,
        "raw_encoding": encoding,
    }
    if len(head.raw) > RAW_HEAD_LIMIT:
        evidence["raw_size"] = len(head.raw)
        evidence["raw_sha256"] = hashlib.sha256(head.raw).hexdigest()
    return evidence


def bad_signature(head: Head, error: Exception) -> Misbehaviour:
    why = str(error)
    why = why if len(why) <= 300 else why[:299] + "…"
    return Misbehaviour(
        MisbehaviourKind.BAD_SIGNATURE,
        f"tree head of size {head.tree_size} does not verify: {why}",
        {"head": head_evidence(head), "error": why},
    )


@dataclass
class Chunk:
    """Entries [start, end) absorbed into a copy of the range; proven, it becomes the new state."""

    start: int
    range: CompactRange
    target: Head

    @property
    def end(self) -> int:
        return self.range.size

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        self.range.extend(leaf_hashes)


class LogVerifier:
    """What is proven about one log. Mutated only by accept_head, advance and bootstrap."""

    def __init__(self, verified: Head | None, compact_range: CompactRange) -> None:
        if verified is not None and compact_range.size > verified.tree_size:
            raise ValueError(
                f"position {compact_range.size} is past the verified tree size {verified.tree_size}"
            )
        self.verified = verified
        self.range = compact_range

    @property
    def position(self) -> int:
        return self.range.size

    @property
    def backlog(self) -> int:
        return (self.verified.tree_size if self.verified else 0) - self.position

    # --- tree heads ------------------------------------------------------------------------------------

    def is_stale(self, head: Head) -> bool:
        """A smaller head signed no later than the verified one: an older head served by a replica or a
        cache, which is no misbehaviour if it is a prefix of the verified tree (check_stale). A smaller head
        signed *later* is a shrink: the log went back on what it had published."""
        last = self.verified
        return last is not None and head.tree_size < last.tree_size and head.timestamp <= last.timestamp

    def check_stale(self, head: Head, proof: Sequence[bytes]) -> None:
        """A stale head must be a prefix of the verified tree (proof: consistency from its size to the
        verified size). Raises inconsistent."""
        last = self.verified
        assert last is not None and self.is_stale(head)
        try:
            if head.tree_size == 0:
                if head.root_hash != EMPTY_ROOT:
                    raise CTError(f"the empty tree's root is {EMPTY_ROOT.hex()}, not {head.root_hash.hex()}")
            else:
                verify_consistency(head.tree_size, last.tree_size, proof, head.root_hash, last.root_hash)
        except CTError as exc:
            raise Misbehaviour(
                MisbehaviourKind.INCONSISTENT,
                f"older tree head of size {head.tree_size} is not a prefix of the verified tree of size "
                f"{last.tree_size}: {exc}",
                {
                    "verified_head": head_evidence(last),
                    "new_head": head_evidence(head),
                    "proof": [h.hex() for h in proof],
                    "error": str(exc),
                },
            ) from None

    def needs_consistency(self, head: Head) -> bool:
        """Classify a signature-verified head: True if it is larger and needs a consistency proof from the
        verified size; False if it is the verified head again, the very first head, or a stale one (which
        the caller checks with check_stale). Raises shrink/fork."""
        last = self.verified
        if last is None:
            return False
        if head.tree_size < last.tree_size:
            if self.is_stale(head):
                return False
            raise Misbehaviour(
                MisbehaviourKind.SHRINK,
                f"tree head of size {head.tree_size} is smaller than the verified size {last.tree_size} "
                f"and signed later ({head.timestamp} > {last.timestamp})",
                {"verified_head": head_evidence(last), "new_head": head_evidence(head)},
            )
        if head.tree_size == last.tree_size:
            if head.root_hash != last.root_hash:
                raise Misbehaviour(
                    MisbehaviourKind.FORK,
                    f"two tree heads of size {head.tree_size} with different roots "
                    f"({last.root_hash.hex()[:16]}… verified, {head.root_hash.hex()[:16]}… new)",
                    {"verified_head": head_evidence(last), "new_head": head_evidence(head)},
                )
            return False
        return last.tree_size > 0

    def accept_head(self, head: Head, proof: Sequence[bytes] = ()) -> bool:
        """Make `head` the target if it extends the verified head (proof: consistency from the verified size
        to the head's). A stale head (is_stale) is checked instead (proof: consistency from its size to the
        verified size) and never becomes the target. Returns True when the target changed. Raises
        shrink/fork/inconsistent."""
        last = self.verified
        if last is None or last.tree_size == 0:
            # Nothing proven yet: any signed head is a fine start, as long as it does not cut below what
            # an earlier run already stored.
            if head.tree_size < self.position:
                raise Misbehaviour(
                    MisbehaviourKind.SHRINK,
                    f"tree head of size {head.tree_size} is smaller than the position {self.position}",
                    {"new_head": head_evidence(head), "position": self.position},
                )
            changed = last is None or head.tree_size != last.tree_size
            if changed:
                self.verified = head
            return changed
        if self.is_stale(head):
            self.check_stale(head, proof)
            return False
        if not self.needs_consistency(head):
            return False
        last = self.verified
        assert last is not None
        try:
            verify_consistency(last.tree_size, head.tree_size, proof, last.root_hash, head.root_hash)
        except CTError as exc:
            raise Misbehaviour(
                MisbehaviourKind.INCONSISTENT,
                f"tree head of size {head.tree_size} is not consistent with the verified size "
                f"{last.tree_size}: {exc}",
                {
                    "verified_head": head_evidence(last),
                    "new_head": head_evidence(head),
                    "proof": [h.hex() for h in proof],
                    "error": str(exc),
                },
            ) from None
        self.verified = head
        return True

    def bootstrap(self, head: Head, compact_range: CompactRange) -> None:
        """start = "end": adopt a range for the head's size obtained from the log (proof or hash tiles)."""
        if compact_range.size != head.tree_size or compact_range.root() != head.root_hash:
            raise Misbehaviour(
                MisbehaviourKind.INCONSISTENT,
                f"the compact range the log serves for size {head.tree_size} has root "
                f"{compact_range.root().hex()} (size {compact_range.size}), not the tree head's",
                {
                    "head": head_evidence(head),
                    "computed_root": compact_range.root().hex(),
                    "range_size": compact_range.size,
                },
            )
        self.verified = head
        self.range = compact_range.copy()

    @staticmethod
    def prove_range_start(
        target: Head, start: int, compact_range: CompactRange, proof: Sequence[bytes]
    ) -> None:
        """A range of the backlog starts from a compact range the log served for `start` (an inclusion proof
        of its last leaf, or hash tiles): it counts only once proven a prefix of the target's tree, by a
        consistency proof from `start` to the target's size with the range's root. Raises inconsistent."""
        computed = compact_range.root()
        try:
            if compact_range.size != start:
                raise CTError(f"the compact range has size {compact_range.size}, not {start}")
            if start == target.tree_size:
                if computed != target.root_hash:
                    raise CTError(f"computed root {computed.hex()} != head root {target.root_hash.hex()}")
            elif start > 0:
                verify_consistency(start, target.tree_size, proof, computed, target.root_hash)
        except CTError as exc:
            raise Misbehaviour(
                MisbehaviourKind.INCONSISTENT,
                f"the compact range the log serves for size {start} is not a prefix of the tree head of "
                f"size {target.tree_size}: {exc}",
                {
                    "head": head_evidence(target),
                    "range_start": start,
                    "computed_root": computed.hex(),
                    "proof": [h.hex() for h in proof],
                    "error": str(exc),
                },
            ) from None

    # --- entries ---------------------------------------------------------------------------------------

    def begin_chunk(self) -> Chunk:
        if self.verified is None:
            raise ValueError("no verified tree head to prove entries against")
        return Chunk(self.position, self.range.copy(), self.verified)

    @staticmethod
    def chunk_needs_proof(chunk: Chunk) -> bool:
        return chunk.end != chunk.target.tree_size

    @staticmethod
    def prove(chunk: Chunk, proof: Sequence[bytes] = ()) -> None:
        """Check the chunk's range against its target: equal roots at the target size, otherwise a
        consistency proof from chunk.end to the target size. Raises bad_entries."""
        target = chunk.target
        computed = chunk.range.root()
        try:
            if chunk.end > target.tree_size:
                raise CTError(f"chunk ends at {chunk.end}, past the tree size {target.tree_size}")
            if chunk.end == target.tree_size:
                if computed != target.root_hash:
                    raise CTError(f"computed root {computed.hex()} != head root {target.root_hash.hex()}")
            else:
                verify_consistency(chunk.end, target.tree_size, proof, computed, target.root_hash)
        except CTError as exc:
            raise Misbehaviour(
                MisbehaviourKind.BAD_ENTRIES,
                f"entries [{chunk.start}, {chunk.end}) do not hash to the tree head of size "
                f"{target.tree_size}: {exc}",
                {
                    "head": head_evidence(target),
                    "chunk": [chunk.start, chunk.end],
                    "computed_root": computed.hex(),
                    "proof": [h.hex() for h in proof],
                    "error": str(exc),
                },
            ) from None

    def advance(self, chunk: Chunk) -> None:
        """Adopt a proven chunk's range (after its commit succeeded)."""
        if chunk.start != self.position:
            raise ValueError(f"chunk starts at {chunk.start}, position is {self.position}")
        self.range = chunk.range
