"""Throughput of ctsentinel.ct.merkle against baselines measured in the same run.

    .venv/bin/python bench/merkle_bench.py

Rows with a baseline show ours/baseline as a ratio of rates: 1.00 means no overhead over the baseline,
above 1 means faster. Data is generated here (seeded), nothing is read from disk.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from hashlib import sha256

from ctsentinel.ct.merkle import (
    CompactRange,
    consistency_proof,
    inclusion_proof,
    leaf_hash,
    root_hash,
    verify_consistency,
    verify_inclusion,
)

REPEAT = 3


def best_seconds(fn: Callable[[], object], repeat: int = REPEAT) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def naive_mth(d: list[bytes]) -> bytes:
    """RFC 6962 2.1 as written: recursive split at the largest power of two below n, slicing lists."""
    n = len(d)
    if n == 0:
        return sha256(b"").digest()
    if n == 1:
        return d[0]
    k = 1 << ((n - 1).bit_length() - 1)
    return sha256(b"\x01" + naive_mth(d[:k]) + naive_mth(d[k:])).digest()


def raw_node_hashes(d: list[bytes]) -> None:
    """The hashing a tree of len(d) leaves needs at minimum (n-1 SHA-256 calls over 65 bytes), with no
    tree logic: the floor for any Python implementation on hashlib."""
    pair = b"\x01" + d[0] + d[1]
    for _ in range(len(d) - 1):
        sha256(pair).digest()


def row(name: str, count: int, seconds: float, unit: str, baseline: tuple[str, float] | None = None) -> None:
    rate = count / seconds
    text = f"{name:<44} {rate:>14,.0f} {unit:<9}"
    if baseline is not None:
        base_name, base_rate = baseline
        text += f"  x{rate / base_rate:5.2f} of {base_name}"
    print(text)


def main() -> None:
    rnd = random.Random(6962)
    started = time.perf_counter()
    print(f"{'operation':<44} {'rate':>14} {'unit':<9}  ratio")
    print("-" * 100)

    # 1. leaf hashing over certificate-sized leaf inputs
    inputs = [rnd.randbytes(rnd.randint(1200, 1800)) for _ in range(20_000)]
    total_kib = sum(map(len, inputs)) / 1024
    t_raw = best_seconds(lambda: [sha256(x).digest() for x in inputs])
    t_leaf = best_seconds(lambda: [leaf_hash(x) for x in inputs])
    raw_rate = len(inputs) / t_raw
    row("hashlib.sha256(input).digest()  [baseline]", len(inputs), t_raw, "leaves/s")
    row("leaf_hash(input), ~1.5 KB inputs", len(inputs), t_leaf, "leaves/s", ("raw sha256", raw_rate))
    print(f"{'':<44} {total_kib / 1024 / t_leaf:>14,.1f} MiB/s")
    print()

    # 2. absorbing leaf hashes into a compact range (the monitor's per-entry path)
    n = (1 << 17) + 12_345
    hashes = [rnd.randbytes(32) for _ in range(n)]
    t_floor = best_seconds(lambda: raw_node_hashes(hashes))
    floor_rate = n / t_floor
    row("raw sha256 x (n-1) over 65 B  [floor]", n, t_floor, "leaves/s")

    def extend_in(batch: int) -> Callable[[], object]:
        def run() -> None:
            rng = CompactRange()
            for i in range(0, n, batch):
                rng.extend(hashes[i : i + batch])
            rng.root()

        return run

    for batch in (n, 1000, 256, 32):
        label = "one batch" if batch == n else f"batches of {batch}"
        t = best_seconds(extend_in(batch))
        row(f"CompactRange.extend, {label}", n, t, "leaves/s", ("floor", floor_rate))

    def append_all() -> None:
        rng = CompactRange()
        for h in hashes:
            rng.append(h)
        rng.root()

    t_append = best_seconds(append_all)
    row("CompactRange.append, one by one", n, t_append, "leaves/s", ("floor", floor_rate))
    t_root = best_seconds(lambda: root_hash(hashes))
    row("root_hash(all leaves)", n, t_root, "leaves/s", ("floor", floor_rate))
    t_naive = best_seconds(lambda: naive_mth(hashes))
    naive_rate = n / t_naive
    row("naive recursive MTH  [baseline]", n, t_naive, "leaves/s", ("floor", floor_rate))
    row("root_hash vs naive recursive MTH", n, t_root, "leaves/s", ("naive MTH", naive_rate))
    assert root_hash(hashes) == naive_mth(hashes)

    # A monitor without a compact range would recompute the root after every batch: O(n) per batch.
    small = hashes[:16_384]
    t_recompute = best_seconds(lambda: [naive_mth(small[: i + 256]) for i in range(0, len(small), 256)], 1)
    t_small = best_seconds(lambda: _extend_small(small), 1)
    row("naive MTH recomputed per 256-batch, 16k", len(small), t_recompute, "leaves/s")
    row(
        "CompactRange.extend per 256-batch, 16k",
        len(small),
        t_small,
        "leaves/s",
        ("recompute", len(small) / t_recompute),
    )
    print()

    # 3. proofs (per call)
    tree = hashes[:100_000]
    root = root_hash(tree)
    old = 77_777
    old_root = root_hash(tree[:old])
    cons = consistency_proof(tree, old)
    incl = inclusion_proof(tree, 12_345)
    reps = 20_000

    def check_consistency() -> None:
        for _ in range(reps):
            verify_consistency(old, len(tree), cons, old_root, root)

    def check_inclusion() -> None:
        for _ in range(reps):
            verify_inclusion(tree[12_345], 12_345, len(tree), incl, root)

    t = best_seconds(check_consistency)
    row(f"verify_consistency, {len(cons)} hashes", reps, t, "proofs/s")
    t = best_seconds(check_inclusion)
    row(f"verify_inclusion, {len(incl)} hashes", reps, t, "proofs/s")
    t = best_seconds(lambda: inclusion_proof(tree, 54_321), 1)
    row("inclusion_proof generation, n=100k", 1, t, "proofs/s")
    t = best_seconds(lambda: consistency_proof(tree, old), 1)
    row("consistency_proof generation, n=100k", 1, t, "proofs/s")

    print("-" * 100)
    print(f"total run time {time.perf_counter() - started:.1f} s")


def _extend_small(leaves: list[bytes]) -> None:
    rng = CompactRange()
    for i in range(0, len(leaves), 256):
        rng.extend(leaves[i : i + 256])
        rng.root()


if __name__ == "__main__":
    main()
