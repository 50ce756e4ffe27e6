"""Evidence: RFC 4998 evidence records, built over a run's documents and judged as of a date.

In: the digests of the documents a run archived (leaves), one RFC 3161 token on the root of
their hash tree; out: one DER ``EvidenceRecord`` per document (:class:`HashTree`,
:func:`new_record`), later renewed by appending a timestamp (:func:`renew_timestamp`) or a
chain in a stronger hash (:func:`renew_hash_tree`). Judging (:func:`validate_evidence`) takes a
record, the document (bytes or digests), the as-of moment, a weak-algorithm table and a token
check (:class:`TsaTrust`), and gives an :class:`EvidenceVerdict` with a records officer's code.
Pure: no I/O, no clock; the nightly run and the renewal job wire it to the TSA and the store.
"""

from archive.evidence.algorithms import SUPPORTED, WeakAlgorithms
from archive.evidence.hashtree import HashTree, ReducedTree, root_of
from archive.evidence.record import (
    Record,
    Stamp,
    hash_tree_renewal_leaf,
    new_record,
    new_record_ders,
    read_record,
    renew_hash_tree,
    renew_timestamp,
    timestamp_renewal_leaf,
)
from archive.evidence.timestamps import TsaTrust, with_validation_data
from archive.evidence.validate import TimestampCheck, TimestampRejectedError, validate_evidence
from archive.evidence.verdict import (
    CHAIN_BROKEN,
    EXPIRED,
    MALFORMED,
    NOT_COVERED,
    WEAK_ALGORITHM,
    DataObject,
    EvidenceVerdict,
)

__all__ = [
    "CHAIN_BROKEN",
    "EXPIRED",
    "MALFORMED",
    "NOT_COVERED",
    "SUPPORTED",
    "WEAK_ALGORITHM",
    "DataObject",
    "EvidenceVerdict",
    "HashTree",
    "Record",
    "ReducedTree",
    "Stamp",
    "TimestampCheck",
    "TimestampRejectedError",
    "TsaTrust",
    "WeakAlgorithms",
    "hash_tree_renewal_leaf",
    "new_record",
    "new_record_ders",
    "read_record",
    "renew_hash_tree",
    "renew_timestamp",
    "root_of",
    "timestamp_renewal_leaf",
    "validate_evidence",
    "with_validation_data",
]
