"""Hash trees over random leaves: every leaf's reduced tree leads to the root, no other digest
passes for it, and the tree does not depend on the order or repetition of its leaves."""

from __future__ import annotations

import hashlib
import random

import pytest

from archive.core.errors import EvidenceFormatError
from archive.evidence import HashTree, root_of


def _reference_root(name: str, leaves: list[bytes]) -> bytes:
    """Bouncy Castle's BinaryTreeRootCalculator, written plainly: sorted leaves, pairs hashed
    in sorted order, the odd one carried up as it is."""
    level = sorted(set(leaves))
    while len(level) > 1:
        nxt = [
            hashlib.new(name, b"".join(sorted(level[i : i + 2]))).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        level = nxt + ([level[-1]] if len(level) % 2 else [])
    return level[0]


@pytest.mark.parametrize("algorithm", ["sha256", "sha512", "sha3_256", "sha3_512"])
@pytest.mark.parametrize("seed", range(4))
def test_every_leaf_proves_itself_and_no_other_digest_does(algorithm: str, seed: int) -> None:
    rng = random.Random(seed)
    size = hashlib.new(algorithm).digest_size
    leaves = [rng.randbytes(size) for _ in range(rng.randint(1, 70))]
    tree = HashTree.build(algorithm, leaves)
    assert tree.root == _reference_root(algorithm, leaves)
    strangers = [rng.randbytes(size) for _ in range(5)]
    for leaf, reduced in tree.all_reduced().items():
        assert leaf in reduced[0]
        assert root_of(algorithm, reduced) == tree.root
        assert reduced == tree.reduced(leaf)
        others = set(reduced[0]) - {leaf}
        for stranger in [*strangers, *(set(leaves) - {leaf} - others)]:
            # a digest that is not in the first list is not covered by this reduced tree
            assert stranger not in reduced[0]
            swapped = ((stranger, *others), *reduced[1:])
            assert root_of(algorithm, swapped) != tree.root


def test_the_tree_ignores_the_order_and_repetition_of_its_leaves() -> None:
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(9)]
    shuffled = [*reversed(leaves), leaves[3]]
    assert HashTree.build("sha256", leaves) == HashTree.build("sha256", shuffled)


def test_one_leaf_is_its_own_root() -> None:
    leaf = hashlib.sha256(b"only").digest()
    tree = HashTree.build("sha256", [leaf])
    assert tree.root == leaf
    assert tree.reduced(leaf) == ((leaf,),)


def test_above_the_leaves_every_list_holds_one_value() -> None:
    # the one shape on which Bouncy Castle, DSS and RFC 4998 compute the same root
    leaves = [hashlib.sha256(bytes([i])).digest() for i in range(37)]
    for reduced in HashTree.build("sha256", leaves).all_reduced().values():
        assert all(len(p) == 1 for p in reduced[1:])


def test_a_digest_that_is_no_leaf_has_no_reduced_tree() -> None:
    tree = HashTree.build("sha256", [hashlib.sha256(b"a").digest()])
    with pytest.raises(ValueError, match="not a leaf"):
        tree.reduced(hashlib.sha256(b"b").digest())


def test_leaves_must_be_digests_of_the_algorithm() -> None:
    with pytest.raises(ValueError, match="sha512 digest of 64 bytes"):
        HashTree.build("sha512", [hashlib.sha256(b"a").digest()])
    with pytest.raises(ValueError, match="at least one leaf"):
        HashTree.build("sha256", [])


def test_an_unsupported_or_empty_tree_is_malformed() -> None:
    with pytest.raises(EvidenceFormatError, match="md5"):
        root_of("md5", [[b"x"]])
    with pytest.raises(EvidenceFormatError, match="no lists"):
        root_of("sha256", [])
    with pytest.raises(EvidenceFormatError, match="empty list"):
        root_of("sha256", [[]])
