"""Building a run's hash tree and every record's reduced tree (issue #12: 100,000 leaves < 2 s).

Run by hand: `python -m bench.bench_evidence [LEAVES]`. The naive baseline hashes each level
with a fresh hashlib object per node and finds each leaf's path by searching every level
(list.index), which is quadratic, so it runs on a sample of leaves and is scaled up.
"""

from __future__ import annotations

import hashlib
import os
import sys
import time

from archive.evidence import HashTree


def naive_paths(leaves: list[bytes], sample: list[bytes]) -> None:
    levels = [sorted(set(leaves))]
    while len(levels[-1]) > 1:
        level = levels[-1]
        up = [
            hashlib.sha256(b"".join(sorted(level[i : i + 2]))).digest()
            for i in range(0, len(level), 2)
        ]
        levels.append(
            [u if len(level[i * 2 : i * 2 + 2]) == 2 else level[i * 2] for i, u in enumerate(up)]
        )
    for leaf in sample:
        node = leaf
        for level in levels[:-1]:
            i = level.index(node)
            pair = level[i ^ 1 : (i ^ 1) + 1]
            node = hashlib.sha256(b"".join(sorted([node, *pair]))).digest() if pair else node


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100_000
    leaves = [hashlib.sha256(os.urandom(32)).digest() for _ in range(n)]
    start = time.perf_counter()
    tree = HashTree.build("sha256", leaves)
    reduced = tree.all_reduced()
    ours = time.perf_counter() - start
    sample = leaves[:200]
    start = time.perf_counter()
    naive_paths(leaves, sample)
    naive = (time.perf_counter() - start) * n / len(sample)
    print(f"{n} leaves: tree + {len(reduced)} reduced trees in {ours:.2f} s (bound: < 2 s)")
    print(f"naive baseline (scaled from {len(sample)} paths): {naive:.1f} s")


if __name__ == "__main__":
    main()
