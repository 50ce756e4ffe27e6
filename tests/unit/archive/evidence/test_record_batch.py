"""The batch builder writes, byte for byte, what :func:`new_record` writes, for every tree shape
a run can have (one leaf, an odd leaf moving up unhashed, deep and shallow paths)."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from archive.evidence import HashTree, new_record, new_record_ders, read_record
from tests.support.evidence import local_tsa

TSA = local_tsa(datetime(2020, 1, 1, tzinfo=UTC), datetime(2030, 1, 1, tzinfo=UTC), "TSA batch")


@pytest.mark.parametrize("leaves", [1, 2, 3, 5, 8, 9, 33])
def test_batch_records_equal_one_by_one_records(leaves: int) -> None:
    docs = [hashlib.sha256(b"pdf %d" % i).digest() for i in range(leaves)]
    tree = HashTree.build("sha256", docs)
    token = TSA.stamp(tree.root, "sha256", datetime(2026, 1, 1, tzinfo=UTC))
    reduced = tree.all_reduced()
    ders = new_record_ders("sha256", reduced, token)
    assert set(ders) == set(docs)
    for doc in docs:
        assert ders[doc] == new_record("sha256", reduced[doc], token).dump()
        assert read_record(ders[doc]).chains[0][0].reduced == reduced[doc]
