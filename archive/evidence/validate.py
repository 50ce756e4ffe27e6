"""Judge an evidence record against data objects, as of a moment (RFC 4998 §5.3).

Pure: the moment, the weak-algorithm table and the check of each RFC 3161 token (signature,
TSA certificate path and validity at a given time) are passed in. The hash layer is checked
here: the objects are in the first ATS's first list; every ATS's imprint is the root of its
reduced tree; each ATS after the first in a chain covers the previous ATS's timeStamp; each
new chain covers H'(H'(d) ‖ H'(earlier chains)); times never go backwards. Then each token,
oldest first, must be valid at the time of the next token (the last at the as-of moment), and
no algorithm may be weak at the time it was last relied on.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from datetime import datetime
from typing import Protocol

from asn1crypto import cms

from archive.core.errors import EvidenceError, EvidenceFormatError
from archive.evidence.algorithms import WeakAlgorithms, digest, hasher_for
from archive.evidence.hashtree import root_of
from archive.evidence.record import Record, Stamp, hash_tree_renewal_leaf, read_record
from archive.evidence.verdict import (
    CHAIN_BROKEN,
    MALFORMED,
    NOT_COVERED,
    WEAK_ALGORITHM,
    DataObject,
    EvidenceVerdict,
)

__all__ = ["TimestampCheck", "TimestampRejectedError", "validate_evidence"]


class TimestampRejectedError(EvidenceError):
    """A token's signature, TSA path or validity fails; ``code`` is the verdict it leads to."""

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


class TimestampCheck(Protocol):
    """Check one RFC 3161 token as of ``valid_at``; raise :class:`TimestampRejectedError`."""

    def __call__(self, token: cms.ContentInfo, valid_at: datetime) -> None: ...


class _FailedError(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code


def validate_evidence(
    record_der: bytes,
    objects: Sequence[DataObject],
    *,
    as_of: datetime,
    check_timestamp: TimestampCheck,
    weak: WeakAlgorithms,
) -> EvidenceVerdict:
    try:
        record = read_record(record_der)
        stamps = _existing_at(record, as_of)
        _check_hashes(record, objects, stamps)
        _check_algorithms(record, stamps, as_of, weak)
        for i, stamp in enumerate(stamps):
            valid_at = stamps[i + 1].gen_time if i + 1 < len(stamps) else as_of
            check_timestamp(stamp.token, valid_at)
    except EvidenceFormatError as e:
        return EvidenceVerdict(MALFORMED, str(e))
    except (_FailedError, TimestampRejectedError) as e:
        return EvidenceVerdict(e.code, str(e))
    return EvidenceVerdict(None, f"{len(stamps)} timestamp(s) hold", stamps[0].gen_time)


def _existing_at(record: Record, as_of: datetime) -> list[Stamp]:
    """The ATSs in the order they were made, up to ``as_of`` (a record judged as of a past
    date is the record as it stood then: renewals are only ever appended)."""
    flat = [s for chain in record.chains for s in chain]
    for before, after in itertools.pairwise(flat):
        if after.gen_time < before.gen_time:
            raise _FailedError(
                CHAIN_BROKEN,
                f"a timestamp of {after.gen_time} follows one of "
                f"{before.gen_time}: the chain order was changed",
            )
    existing = [s for s in flat if s.gen_time <= as_of]
    if not existing:
        raise _FailedError(NOT_COVERED, f"no timestamp of this record existed at {as_of}")
    return existing


def _check_hashes(record: Record, objects: Sequence[DataObject], stamps: Sequence[Stamp]) -> None:
    if not objects:
        raise _FailedError(NOT_COVERED, "no data object was given to check the record against")
    position = 0
    for j, chain in enumerate(record.chains):
        for k, stamp in enumerate(chain):
            if position == len(stamps):
                return
            position += 1
            hasher_for(stamp.algorithm)
            if stamp.declared_algorithm not in (None, stamp.algorithm):
                raise EvidenceFormatError(
                    f"ATS {j}.{k} declares {stamp.declared_algorithm} in a {stamp.algorithm} chain"
                )
            leaves = _leaves(record, objects, j, k)
            _check_stamp(
                stamp, leaves, f"ATS {j}.{k}", NOT_COVERED if j == k == 0 else CHAIN_BROKEN
            )


def _leaves(record: Record, objects: Sequence[DataObject], j: int, k: int) -> list[bytes]:
    chain = record.chains[j]
    if k > 0:
        return [digest(chain[0].algorithm, chain[k - 1].token_der)]
    algorithm = chain[0].algorithm
    leaves = []
    for n, obj in enumerate(objects):
        d = obj.digest(algorithm)
        if d is None:
            raise _FailedError(
                NOT_COVERED, f"data object {n} has no {algorithm} digest to check chain {j} with"
            )
        leaves.append(d if j == 0 else hash_tree_renewal_leaf(record, j, algorithm, d))
    return leaves


def _check_stamp(stamp: Stamp, leaves: Sequence[bytes], where: str, uncovered: str) -> None:
    if stamp.reduced is None:
        if len(leaves) != 1 or leaves[0] != stamp.imprint:
            raise _FailedError(
                uncovered, f"{where} (no hash tree) does not stamp what it should cover"
            )
        root = leaves[0]
    else:
        first = set(stamp.reduced[0])
        if not all(leaf in first for leaf in leaves):
            raise _FailedError(
                uncovered, f"{where}: its hash tree does not hold what it should cover"
            )
        root = root_of(stamp.algorithm, stamp.reduced)
    if stamp.imprint_algorithm != stamp.algorithm or stamp.imprint != root:
        raise _FailedError(
            CHAIN_BROKEN, f"{where}: the timestamp's imprint is not the root of its tree"
        )


def _check_algorithms(
    record: Record, stamps: Sequence[Stamp], as_of: datetime, weak: WeakAlgorithms
) -> None:
    """A chain's hash is relied on until the next chain's first timestamp (or ``as_of``); a
    token's own digest until the next token (or ``as_of``)."""
    starts = [chain[0].gen_time for chain in record.chains]
    position = 0
    for j, chain in enumerate(record.chains):
        until_chain = starts[j + 1] if j + 1 < len(starts) and starts[j + 1] <= as_of else as_of
        for stamp in chain[: len(stamps) - position]:
            position += 1
            until = stamps[position].gen_time if position < len(stamps) else as_of
            for algorithm, moment in (
                (stamp.algorithm, until_chain),
                (stamp.signer_digest_algorithm, until),
            ):
                if weak.weak_at(algorithm, moment):
                    raise _FailedError(
                        WEAK_ALGORITHM,
                        f"{algorithm} relied on until {moment}, weak since {weak.since[algorithm]}",
                    )
