"""The two guards every evidence job shares (archive.pipeline.evidence_tokens): a TSA answer
that stamps another digest, or the right digest in another hash, is refused before it is saved;
a saved tree whose leaves, root or token disagree is refused before any record is written."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from asn1crypto import cms

from archive.core.errors import ArchiveError
from archive.evidence import HashTree, TimestampCheck, TimestampRejectedError
from archive.pipeline.evidence_tokens import checked_token, verified_tree
from tests.support.evidence import local_tsa

AT = datetime(2026, 6, 1, tzinfo=UTC)
TSA = local_tsa(datetime(2026, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC))
LEAVES = [hashlib.sha256(bytes([n])).hexdigest() for n in range(5)]
TREE = HashTree.build("sha256", (bytes.fromhex(leaf) for leaf in LEAVES))


def _checked(seen: list[datetime]) -> TimestampCheck:
    def check(token: cms.ContentInfo, valid_at: datetime) -> None:
        seen.append(valid_at)

    return check


def test_a_token_over_the_root_is_kept_and_its_tsa_checked_when_it_stamped() -> None:
    seen: list[datetime] = []
    token = TSA.stamp(TREE.root, "sha256", AT)
    assert checked_token(token, root=TREE.root, algorithm="sha256", check=_checked(seen)) is token
    assert seen == [AT]


@pytest.mark.parametrize(
    ("digest", "algorithm"),
    [
        (hashlib.sha256(b"another root").digest(), "sha256"),  # another digest
        (TREE.root, "sha3_256"),  # our root's bytes, declared as another hash
    ],
    ids=["another-digest", "another-hash"],
)
def test_a_token_over_anything_else_is_refused_before_its_tsa_is_asked(
    digest: bytes, algorithm: str
) -> None:
    seen: list[datetime] = []
    token = TSA.stamp(digest, algorithm, AT)
    with pytest.raises(TimestampRejectedError) as refused:
        checked_token(token, root=TREE.root, algorithm="sha256", check=_checked(seen))
    assert refused.value.code == "evidence.tsa_wrong_imprint"
    assert seen == []


def test_a_saved_tree_is_rebuilt_and_must_lead_to_the_root_its_token_stamps() -> None:
    der = TSA.stamp(TREE.root, "sha256", AT).dump()
    tree, token = verified_tree("sha256", LEAVES, root=TREE.root.hex(), token_der=der, what="t")
    assert tree.root == TREE.root
    assert token.dump() == der
    other = TSA.stamp(hashlib.sha256(b"x").digest(), "sha256", AT).dump()
    for leaves, root, token_der in (
        (LEAVES[:-1], TREE.root.hex(), der),  # a member lost from the saved index
        (LEAVES, "00" * 32, der),  # the saved root altered
        (LEAVES, TREE.root.hex(), other),  # another tree's token
    ):
        with pytest.raises(ArchiveError, match="t: its leaves do not lead"):
            verified_tree("sha256", leaves, root=root, token_der=token_der, what="t")
