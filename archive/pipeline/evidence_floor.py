"""Lock floors: how long the proof that continues a token must be kept, past its trees' catalog.

A timestamp renewal locks its ATS object until the longest retain-until its trees' members had
when they were archived (the tree index). A retention upgrade lengthens a record's lock later:
it extends every part of the record's current evidence, but the *next* renewal's object does
not exist yet, and the tree index (locked, never rewritten) still has the old date. So the
upgrade also leaves a floor on the record's newest token: a small locked marker at
``evidence/v1/renewals/floor/<H(token)>`` whose own retain-until *is* the floor (never
shortened: an Object Lock date only grows). A renewal reads the floor of each token it renews
(one HEAD per token, i.e. per tree of trees, never per record), locks the new ATS object at
least as long, and passes the floor on to its own token, so every later renewal keeps it.

The marker holds the token's SHA-256 only (sealed like every renewal object): nothing of the
record, and keys hold digests only, never PHI.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Final

from archive.core.errors import EvidenceFormatError
from archive.evidence import read_record
from archive.pipeline.evidence_current import CurrentEvidence
from archive.pipeline.evidence_renewal_state import RENEWALS, token_sha256
from archive.store import ObjectStore, SealedStore

FLOORS: Final = RENEWALS + "floor/"


def floor_key(token_sha256: str) -> str:
    return FLOORS + token_sha256


def read_floor(store: ObjectStore | SealedStore, token_sha256: str) -> datetime | None:
    """The floor of the token (None: no upgrade asked for one): one HEAD."""
    head = store.latest(floor_key(token_sha256))
    return None if head is None else head.lock.retain_until


def raise_floor(
    store: SealedStore, token_sha256: str, until: datetime, *, extend: ObjectStore | None = None
) -> bool:
    """Make the token's floor at least ``until`` (True: created or lengthened). ``extend``: the
    store that lengthens locks (a retention register's plain, possibly two-site, store); the
    sealed store's own by default. Idempotent: a rerun finds the marker and leaves it."""
    key = floor_key(token_sha256)
    head = store.latest(key)
    if head is None:
        put = store.put_locked(key, token_sha256.encode(), retain_until=until)
        if put.created:
            return True
        head = store.latest(key)  # another writer created it between our look and our put
        if head is None:
            return False  # pragma: no cover - a locked object cannot vanish
    return ensure_locked(extend or store, key, head.version_id, head.lock.retain_until, until)


def ensure_locked(
    store: ObjectStore | SealedStore,
    key: str,
    version_id: str,
    current: datetime | None,
    until: datetime,
) -> bool:
    """Lengthen one version's lock to ``until`` unless ``current`` already reaches it."""
    if current is not None and current >= until:
        return False
    store.extend_retention(key, version_id=version_id, retain_until=until)
    return True


def newest_token(current: CurrentEvidence) -> str | None:
    """SHA-256 of the last token of a record's current proof (the one its next renewal renews);
    None when the record does not parse (verification reports it ``evidence.malformed``)."""
    try:
        record = read_record(current.der)
    except EvidenceFormatError:
        return None
    return token_sha256(record.chains[-1][-1].token_der)


def latest_of(dates: Iterable[datetime | None]) -> datetime | None:
    found = [d for d in dates if d is not None]
    return max(found) if found else None
