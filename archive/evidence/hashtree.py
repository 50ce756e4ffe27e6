"""RFC 4998 §4.2 to §4.3 hash trees: one root over many digests, one reduced tree per digest.

Building: the distinct leaf digests are sorted (so the tree does not depend on the order a run
met its documents), then paired level by level; a pair's parent is H(sorted concatenation),
and the odd node at the end of a level moves up *unhashed*. Every level above the first then
holds a single value per reduced tree, which is the one shape that Bouncy Castle's
``recoverRootHash``, DSS and the RFC's own procedure all compute the same way (bc-java #1164:
they disagree on lists of several values above the leaves).

Recovering: :func:`root_of` follows the vectors (DSS/BSI), not RFC 4998's text: each list's
values plus the value carried up from below are sorted and hashed, except that a list of one
value and nothing carried is passed on as it is, so a record with one document stamps H(d).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from archive.core.errors import EvidenceFormatError
from archive.evidence.algorithms import hasher_for

__all__ = ["HashTree", "ReducedTree", "root_of"]

ReducedTree = tuple[tuple[bytes, ...], ...]


def root_of(algorithm: str, reduced: Sequence[Sequence[bytes]]) -> bytes:
    """The root a reduced hash tree leads to (RFC 4998 §4.3 step 3, as the vectors do it)."""
    name = hasher_for(algorithm)
    carried: bytes | None = None
    for partial in reduced:
        values = [*partial] if carried is None else [*partial, carried]
        if not values:
            raise EvidenceFormatError("a reduced hash tree has an empty list of values")
        if len(values) == 1:
            carried = values[0]
        else:
            carried = hashlib.new(name, b"".join(sorted(values))).digest()
    if carried is None:
        raise EvidenceFormatError("a reduced hash tree has no lists")
    return carried


@dataclass(frozen=True)
class HashTree:
    """A built tree: ``levels[0]`` the sorted distinct leaves, ``levels[-1]`` the root alone."""

    algorithm: str
    levels: tuple[tuple[bytes, ...], ...]

    @classmethod
    def build(cls, algorithm: str, leaves: Iterable[bytes]) -> HashTree:
        name = hasher_for(algorithm)
        new = getattr(hashlib, name)  # the named constructor: faster than hashlib.new per node
        size = new().digest_size
        level = tuple(sorted(set(leaves)))
        if not level:
            raise ValueError("a hash tree needs at least one leaf")
        if any(len(leaf) != size for leaf in level):
            raise ValueError(f"every leaf must be a {algorithm} digest of {size} bytes")
        levels = [level]
        while len(level) > 1:
            parents = [
                new(a + b if a <= b else b + a).digest()
                for a, b in zip(level[::2], level[1::2], strict=False)
            ]
            if len(level) % 2:
                parents.append(level[-1])  # the odd one moves up unhashed
            level = tuple(parents)
            levels.append(level)
        return cls(algorithm, tuple(levels))

    @property
    def root(self) -> bytes:
        return self.levels[-1][0]

    def reduced(self, leaf: bytes) -> ReducedTree:
        """The reduced hash tree proving ``leaf`` (ValueError if it is not a leaf)."""
        return self._path(self._index(leaf))

    def all_reduced(self) -> dict[bytes, ReducedTree]:
        """Every leaf's reduced tree (what a run writes: one evidence record per document)."""
        return {leaf: self._path(i) for i, leaf in enumerate(self.levels[0])}

    def _index(self, leaf: bytes) -> int:
        first = self.levels[0]
        lo = bisect.bisect_left(first, leaf)  # build() sorted the leaves
        if lo == len(first) or first[lo] != leaf:
            raise ValueError("this digest is not a leaf of the tree")
        return lo

    def _path(self, index: int) -> ReducedTree:
        leaves = self.levels[0]
        sibling = index ^ 1
        first = (leaves[index], leaves[sibling]) if sibling < len(leaves) else (leaves[index],)
        path = [tuple(sorted(first))]
        for level in self.levels[1:-1]:
            index //= 2
            sibling = index ^ 1
            if sibling < len(level):
                path.append((level[sibling],))
        return tuple(path)
