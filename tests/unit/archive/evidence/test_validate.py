"""Records we build, judged as of dates decades ahead, and every tampering caught with its code.

A local TSA (pyHanko's DummyTimeStamper under a throwaway root) stamps at chosen times: TSA1's
certificate lapses in 2026, TSA2's in 2045, so "as of 2030" needs a renewal by TSA2.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from asn1crypto import cms

from archive.evidence import (
    CHAIN_BROKEN,
    EXPIRED,
    MALFORMED,
    NOT_COVERED,
    WEAK_ALGORITHM,
    DataObject,
    EvidenceVerdict,
    HashTree,
    Record,
    TsaTrust,
    WeakAlgorithms,
    asn1,
    hash_tree_renewal_leaf,
    new_record,
    read_record,
    renew_hash_tree,
    renew_timestamp,
    timestamp_renewal_leaf,
    validate_evidence,
)
from tests.support.evidence import LocalTsa, local_tsa


def _at(year: int) -> datetime:
    return datetime(year, 6, 1, tzinfo=UTC)


TSA1 = local_tsa(_at(2020), _at(2026), "TSA one")
TSA2 = local_tsa(_at(2023), _at(2045), "TSA two")
DOCS = [f"signed pdf number {i}".encode() * 3 for i in range(5)]
SHA256_WEAK_2035 = WeakAlgorithms({"sha256": _at(2035)})


def _check(token: cms.ContentInfo, valid_at: datetime) -> None:
    TsaTrust([TSA1.root, TSA2.root])(token, valid_at)


def _judge(
    der: bytes,
    doc: bytes,
    year: int,
    weak: WeakAlgorithms = WeakAlgorithms(),  # noqa: B008 (frozen)
) -> EvidenceVerdict:
    return validate_evidence(
        der, [DataObject(data=doc)], as_of=_at(year), check_timestamp=_check, weak=weak
    )


def _initial(tsa: LocalTsa = TSA1, year: int = 2021) -> dict[bytes, Record]:
    """One run: a tree over the five documents, one token on its root, one record each."""
    tree = HashTree.build("sha256", [hashlib.sha256(d).digest() for d in DOCS])
    token = tsa.stamp(tree.root, "sha256", _at(year))
    return {d: new_record("sha256", tree.reduced(hashlib.sha256(d).digest()), token) for d in DOCS}


def _renew_timestamps(
    records: dict[bytes, Record], year: int, tsa: LocalTsa = TSA2
) -> dict[bytes, Record]:
    """One token for all records: a tree over their renewal leaves (never one call per record)."""
    leaves = {d: timestamp_renewal_leaf(r) for d, r in records.items()}
    tree = HashTree.build("sha256", leaves.values())
    token = tsa.stamp(tree.root, "sha256", _at(year))
    return {d: renew_timestamp(r, tree.reduced(leaves[d]), token) for d, r in records.items()}


def _renew_hash_trees(records: dict[bytes, Record], year: int) -> dict[bytes, Record]:
    leaves = {
        d: hash_tree_renewal_leaf(r, len(r.chains), "sha512", hashlib.sha512(d).digest())
        for d, r in records.items()
    }
    tree = HashTree.build("sha512", leaves.values())
    token = TSA2.stamp(tree.root, "sha512", _at(year))
    return {
        d: renew_hash_tree(r, "sha512", tree.reduced(leaves[d]), token) for d, r in records.items()
    }


@pytest.fixture(scope="module")
def renewed() -> dict[bytes, Record]:
    """Stamped 2021 by TSA1, timestamp-renewed 2024 by TSA2, hash-tree renewed 2030 (SHA-512)."""
    return _renew_hash_trees(_renew_timestamps(_initial(), 2024), 2030)


def _mutate(record: Record, change: object) -> bytes:
    copy = asn1.EvidenceRecord.load(record.dump())
    change(copy)  # type: ignore[operator]
    der: bytes = copy.dump(force=True)
    return der


# --- what holds ---------------------------------------------------------------------------------


def test_a_fresh_record_proves_its_document_at_the_run_s_time() -> None:
    records = _initial()
    for doc, record in records.items():
        verdict = _judge(record.dump(), doc, 2022)
        assert verdict.ok, verdict.detail
        assert verdict.proven_at == _at(2021)


def test_without_renewal_the_proof_ends_with_the_tsa_certificate() -> None:
    doc, record = next(iter(_initial().items()))
    assert _judge(record.dump(), doc, 2025).ok
    assert _judge(record.dump(), doc, 2030).code == EXPIRED


def test_renewed_records_hold_decades_ahead_then_lapse_with_the_last_tsa(
    renewed: dict[bytes, Record],
) -> None:
    for doc, record in renewed.items():
        verdict = _judge(record.dump(), doc, 2040, SHA256_WEAK_2035)
        assert verdict.ok, verdict.detail
        assert verdict.proven_at == _at(2021)
    doc, record = next(iter(renewed.items()))
    assert _judge(record.dump(), doc, 2046).code == EXPIRED


def test_as_of_a_past_date_the_record_is_judged_as_it_stood_then(
    renewed: dict[bytes, Record],
) -> None:
    doc, record = next(iter(renewed.items()))
    assert _judge(record.dump(), doc, 2022).ok  # only the 2021 token existed
    assert _judge(record.dump(), doc, 2020).code == NOT_COVERED  # nothing existed yet


def test_sha256_relied_on_after_it_weakened_is_refused() -> None:
    doc, record = next(iter(_renew_timestamps(_initial(), 2024).items()))
    assert _judge(record.dump(), doc, 2030, SHA256_WEAK_2035).ok
    assert _judge(record.dump(), doc, 2036, SHA256_WEAK_2035).code == WEAK_ALGORITHM


def test_a_hash_tree_renewal_made_after_the_hash_weakened_is_too_late() -> None:
    late = _renew_hash_trees(_renew_timestamps(_initial(), 2024), 2036)
    doc, record = next(iter(late.items()))
    assert _judge(record.dump(), doc, 2040, SHA256_WEAK_2035).code == WEAK_ALGORITHM


def test_a_token_from_an_untrusted_tsa_breaks_the_chain() -> None:
    stranger = local_tsa(_at(2020), _at(2040), "Stranger TSA")
    doc, record = next(iter(_initial(stranger).items()))
    assert _judge(record.dump(), doc, 2022).code == CHAIN_BROKEN


# --- tampering ----------------------------------------------------------------------------------


def test_any_byte_of_the_document_changed_is_not_covered(renewed: dict[bytes, Record]) -> None:
    doc, record = next(iter(renewed.items()))
    der = record.dump()
    for i in range(len(doc)):
        changed = doc[:i] + bytes([doc[i] ^ 0x01]) + doc[i + 1 :]
        assert _judge(der, changed, 2040).code == NOT_COVERED, i


def test_any_byte_of_a_reduced_tree_node_changed_is_caught(renewed: dict[bytes, Record]) -> None:
    doc, record = next(iter(renewed.items()))
    der = record.dump()
    own = hashlib.sha256(doc).digest()
    for j, chain in enumerate(record.chains):
        for k, stamp in enumerate(chain):
            for p, partial in enumerate(stamp.reduced or ()):
                ats = record.asn1["archive_time_stamp_sequence"][j][k]
                where = (ats.dump(), ats["reduced_hashtree"][p].dump())
                for value in partial:
                    expected = (
                        NOT_COVERED if (j, k, p) == (0, 0, 0) and value == own else CHAIN_BROKEN
                    )
                    for i in range(len(value)):
                        verdict = _judge(_flip(der, *where, value, i=i), doc, 2040)
                        assert verdict.code == expected, (j, k, p, i, verdict.detail)


def _flip(der: bytes, *path: bytes, i: int) -> bytes:
    """``der`` with byte ``i`` of the last of ``path`` changed, each part of ``path`` found
    inside the one before (a byte-level tamper: no re-encoding that could undo it)."""
    at = 0
    for part in path:
        at = der.index(part, at)
    at += i
    return der[:at] + bytes([der[at] ^ 0x01]) + der[at + 1 :]


def test_any_byte_of_a_renewed_timestamp_changed_breaks_the_chain(
    renewed: dict[bytes, Record],
) -> None:
    """Every token but the newest is covered by the next ATS: the hash layer catches it all."""
    doc, record = next(iter(renewed.items()))
    der = record.dump()
    for j, k in [(0, 0), (0, 1)]:
        token = record.chains[j][k].token_der
        for i in range(0, len(token), 3):  # every 3rd byte keeps this to a few seconds
            verdict = _judge(_flip(der, token, i=i), doc, 2040)
            assert verdict.code in {CHAIN_BROKEN, MALFORMED}, (j, k, i, verdict.detail)


def test_any_byte_of_the_newest_timestamp_changed_is_caught(renewed: dict[bytes, Record]) -> None:
    """The newest token stands on its signature alone. A change passes only where it leaves
    the token's meaning as it was (an unused-bits count or length form that re-encodes to the
    same DER), or where it moves the token's time past the as-of date: then the token is not
    part of the record as it stood that day, and judged as of its new date it fails."""
    doc, record = next(iter(renewed.items()))
    der = record.dump()
    token = record.chains[1][0].token_der
    for i in range(0, len(token)):
        tampered = _flip(der, token, i=i)
        verdict = _judge(tampered, doc, 2040)
        if not verdict.ok:
            assert verdict.code in {CHAIN_BROKEN, MALFORMED}, (i, verdict.detail)
            continue
        changed = cms.ContentInfo.load(_flip(token, token, i=i))
        info = changed["content"]["encap_content_info"]["content"].parsed
        moved = info["gen_time"].native
        if moved > _at(2040):
            later = validate_evidence(
                tampered,
                [DataObject(data=doc)],
                as_of=moved,
                check_timestamp=_check,
                weak=WeakAlgorithms(),
            )
            assert not later.ok, i
        else:
            assert changed.dump(force=True) == token, i


def test_timestamps_in_another_order_break_the_chain(renewed: dict[bytes, Record]) -> None:
    doc, record = next(iter(renewed.items()))

    def swap_stamps(er: asn1.EvidenceRecord) -> None:
        first = er["archive_time_stamp_sequence"][0]
        er["archive_time_stamp_sequence"][0] = asn1.ArchiveTimeStampChain([first[1], first[0]])

    def swap_chains(er: asn1.EvidenceRecord) -> None:
        chains = list(er["archive_time_stamp_sequence"])
        er["archive_time_stamp_sequence"] = asn1.ArchiveTimeStampSequence([chains[1], chains[0]])

    assert _judge(_mutate(record, swap_stamps), doc, 2040).code == CHAIN_BROKEN
    assert _judge(_mutate(record, swap_chains), doc, 2040).code == CHAIN_BROKEN


def test_a_removed_timestamp_is_caught(renewed: dict[bytes, Record]) -> None:
    doc, record = next(iter(renewed.items()))

    def drop_first(er: asn1.EvidenceRecord) -> None:
        er["archive_time_stamp_sequence"][0] = asn1.ArchiveTimeStampChain(
            [er["archive_time_stamp_sequence"][0][1]]
        )

    def drop_renewal(er: asn1.EvidenceRecord) -> None:
        er["archive_time_stamp_sequence"][0] = asn1.ArchiveTimeStampChain(
            [er["archive_time_stamp_sequence"][0][0]]
        )

    def drop_last_chain(er: asn1.EvidenceRecord) -> None:
        er["archive_time_stamp_sequence"] = asn1.ArchiveTimeStampSequence(
            [er["archive_time_stamp_sequence"][0]]
        )

    assert _judge(_mutate(record, drop_first), doc, 2040).code == NOT_COVERED
    assert _judge(_mutate(record, drop_renewal), doc, 2040).code == CHAIN_BROKEN
    # without its newest chain, the record is back on SHA-256 and TSA2's 2024 token
    assert (
        _judge(_mutate(record, drop_last_chain), doc, 2040, SHA256_WEAK_2035).code == WEAK_ALGORITHM
    )


def test_a_record_covers_its_tree_siblings_and_no_other_document() -> None:
    """RFC 4998's first list holds the leaf's sibling too, so a record proves both (as BC and
    DSS agree); every other document of the run is not covered by it. Judged on the run's own
    SHA-256 tree: a hash-tree renewal re-hashes each document into a tree of its own."""
    records = _initial()
    pairs = []
    for record in records.values():
        first = set(record.chains[0][0].reduced[0])  # type: ignore[index]
        for other in records:
            covered = hashlib.sha256(other).digest() in first
            verdict = _judge(record.dump(), other, 2022)
            assert verdict.ok if covered else verdict.code == NOT_COVERED
        pairs.append(sum(hashlib.sha256(o).digest() in first for o in records))
    assert sorted(pairs) == [1, 2, 2, 2, 2]  # five leaves: two pairs and the odd one moved up


def test_an_ats_declaring_another_algorithm_than_its_chain_is_malformed(
    renewed: dict[bytes, Record],
) -> None:
    doc, record = next(iter(renewed.items()))

    def declare(er: asn1.EvidenceRecord) -> None:
        er["archive_time_stamp_sequence"][0][1]["digest_algorithm"] = {"algorithm": "sha512"}

    assert _judge(_mutate(record, declare), doc, 2040).code == MALFORMED


def test_garbage_is_malformed() -> None:
    assert _judge(b"\x30\x03\x02\x01\x01", DOCS[0], 2022).code == MALFORMED
    assert read_record(_initial()[DOCS[0]].dump()).chains[0][0].algorithm == "sha256"
