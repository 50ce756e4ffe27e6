"""A record's evidence record as it stands today: the locked initial record with every renewal
appended. Verification, export and anyone handing the proof to an inspector read it here.

The initial record (written by the nightly run) is never rewritten; each timestamp renewal is a
separate locked ATS object keyed by the SHA-256 of the token it renews, each hash-tree renewal
a per-document object keyed by the record and the token its chain ended in
(:mod:`archive.pipeline.evidence_renewal_state`). Reading follows them: the record's last token
→ its new chain or its renewal → that one's token → … and appends each with
:func:`archive.evidence.renew_hash_tree` or :func:`archive.evidence.renew_timestamp`. What
comes out is a plain RFC 4998 record that EU DSS and Bouncy Castle validate on their own, and
the list of the objects it was built from with their locks (each must be locked as long as the
record it proves). Each step costs one HEAD per kind of renewal, one GET per part found.

Nothing is judged here: a renewal that does not belong (a reduced tree that does not hold the
previous token's hash, a swapped object) is appended as found and the validator reports the
chain broken. Parts that do not open or parse raise (:class:`SealError`,
:class:`EvidenceFormatError`): the caller reports the evidence malformed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from archive.core.errors import EvidenceFormatError
from archive.evidence import read_record, renew_hash_tree, renew_timestamp
from archive.pipeline.evidence_renewal_state import ats_key, chain_key, decode_ats, decode_chain_ats
from archive.store import COMPLIANCE, ObjectHead, ObjectLock, SealedStore, evidence_key

__all__ = ["MAX_RENEWALS", "CurrentEvidence", "EvidencePart", "current_evidence", "evidence_at"]

# Monthly renewals for a thousand years would be 12,000; a longer walk is a loop someone built.
MAX_RENEWALS = 20_000


@dataclass(frozen=True, slots=True)
class EvidencePart:
    """One locked object the current evidence record is built from."""

    key: str
    version_id: str
    lock: ObjectLock


@dataclass(frozen=True, slots=True)
class CurrentEvidence:
    der: bytes  # the complete RFC 4998 EvidenceRecord (DER)
    parts: tuple[EvidencePart, ...]  # the initial record first, then each renewal in order

    @property
    def renewals(self) -> int:
        return len(self.parts) - 1

    def locked_until(self, retain_until: datetime) -> EvidencePart | None:
        """The first part *not* COMPLIANCE-locked until ``retain_until`` (None: all are)."""
        for part in self.parts:
            until = part.lock.retain_until
            if part.lock.mode != COMPLIANCE or until is None or until < retain_until:
                return part
        return None


# A token's timestamp renewal as read: its head and bytes (decoded per record: never shared
# parsed objects), or None when the token has none.
Renewal = tuple[ObjectHead, bytes] | None


def current_evidence(
    store: SealedStore,
    *,
    object_key: str,
    version_id: str,
    renewals: dict[str, Renewal] | None = None,
) -> CurrentEvidence | None:
    """The evidence record of one stored version (None: it has none yet)."""
    key = evidence_key(object_key=object_key, version_id=version_id)
    return evidence_at(store, key, renewals=renewals)


def evidence_at(
    store: SealedStore, key: str, *, renewals: dict[str, Renewal] | None = None
) -> CurrentEvidence | None:
    """The evidence record whose initial record is at ``key`` (a record's or a catalog
    manifest's), with its renewals appended.

    ``renewals``: the timestamp renewals already read, by their key, which names the token they
    renew (its SHA-256): every record of a tree shares them, so a verification run reads each
    once per process instead of one HEAD (and GET) per record. What a key holds is the same for
    every record that asks; a record's own hash-tree renewal is still looked up per record."""
    head = store.latest(key)
    if head is None:
        return None
    der = store.get(key, version_id=head.version_id)
    parts = [EvidencePart(key, head.version_id, head.lock)]
    try:
        record = read_record(der)
    except EvidenceFormatError:
        return CurrentEvidence(der, tuple(parts))  # the validator says why: evidence.malformed
    for _ in range(MAX_RENEWALS):
        last = record.chains[-1][-1].token_der
        # A new chain first: once a document was re-hashed after this token, that chain is its
        # proof, whatever timestamp renewal the old chain's tree got later.
        chain = chain_key(key, last)
        found = store.latest(chain)
        if found is not None:
            algorithm, tree, token = decode_chain_ats(store.get(chain, version_id=found.version_id))
            record = renew_hash_tree(record, algorithm, tree, token)
            parts.append(EvidencePart(chain, found.version_id, found.lock))
            continue
        renewal = ats_key(last)
        read = _renewal(store, renewal) if renewals is None else renewals.get(renewal, _MISSING)
        if read is _MISSING:
            read = renewals[renewal] = _renewal(store, renewal)  # type: ignore[index]
        if read is None:
            return CurrentEvidence(record.dump(), tuple(parts))
        found, der_ats = read
        reduced, token = decode_ats(der_ats)
        record = renew_timestamp(record, reduced, token)
        parts.append(EvidencePart(renewal, found.version_id, found.lock))
    raise EvidenceFormatError(f"the renewals of {key} run on past {MAX_RENEWALS}: a loop")


_MISSING: Final[Any] = object()


def _renewal(store: SealedStore, key: str) -> Renewal:
    found = store.latest(key)
    if found is None:
        return None
    return found, store.get(key, version_id=found.version_id)
