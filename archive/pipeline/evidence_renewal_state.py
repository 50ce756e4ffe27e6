"""What a timestamp renewal writes (RFC 4998 §5.2), all sealed and COMPLIANCE-locked, never
rewritten:

``evidence/v1/renewals/batches/<batch>.json``  one renewal: its one RFC 3161 token over a hash
                                  tree whose leaves are H(DER of each renewed token), and which
                                  token each leaf renews; saved *before* any ATS object, so a crash
                                  after it reuses the token instead of asking the TSA again
``evidence/v1/renewals/ats/<H(token)>.ats``  the ArchiveTimeStamp that renews the token whose
                                  SHA-256 names it: its reduced tree proves the leaf, its token is
                                  the batch's. Every evidence record whose last timestamp is that
                                  token gets it appended (:mod:`~archive.pipeline.evidence_current`)
``evidence/v1/renewals/done/<batch>``  every ATS object of the batch is stored

Keyed by the renewed token, not by record or tree: all records of a nightly tree share their
token, so the first renewal writes one object per tree, and from then on every tree renewed
together shares the batch's token, so the next renewal writes one object for all of them.
Keys hold digests and dates only, never PHI.
"""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from asn1crypto import cms

from archive.core.errors import ArchiveError, EvidenceFormatError
from archive.evidence import ReducedTree, asn1
from archive.store import EVIDENCE_PREFIX, SealedStore

RENEWALS: Final = EVIDENCE_PREFIX + "renewals/"
BATCHES: Final = RENEWALS + "batches/"
ATS: Final = RENEWALS + "ats/"
RENEWED: Final = RENEWALS + "done/"


def token_sha256(token_der: bytes) -> str:
    return hashlib.sha256(token_der).hexdigest()


def ats_key(token_der: bytes) -> str:
    """Where the ATS renewing the token ``token_der`` is (if it was renewed)."""
    return f"{ATS}{token_sha256(token_der)}.ats"


def encode_ats(reduced: ReducedTree, token: cms.ContentInfo) -> bytes:
    """The ArchiveTimeStamp of a timestamp renewal, as :func:`archive.evidence.renew_timestamp`
    appends it (no digestAlgorithm: an ATS after the first of a chain uses the chain's)."""
    ats = asn1.ArchiveTimeStamp(
        {"time_stamp": token, "reduced_hashtree": [list(p) for p in reduced]}
    )
    der: bytes = ats.dump()
    return der


def decode_ats(der: bytes) -> tuple[ReducedTree, cms.ContentInfo]:
    """The reduced tree and token of an ATS object; anything but what :func:`encode_ats` writes
    (extra fields, trailing bytes, bad DER) is :class:`EvidenceFormatError`."""
    try:
        ats = asn1.ArchiveTimeStamp.load(der, strict=True)
        reduced = tuple(tuple(p) for p in ats["reduced_hashtree"].native or ())
        token = ats["time_stamp"]
        again = encode_ats(reduced, token)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise EvidenceFormatError(f"a renewal object is not an ArchiveTimeStamp: {e}") from e
    if not reduced or again != der:
        raise EvidenceFormatError("a renewal object holds what no renewal of this archive writes")
    return reduced, token


@dataclass(frozen=True, slots=True)
class Renewed:
    """One token a batch renews: the trees whose newest token it was, how many records they
    hold and how long the longest of them is locked (the ATS object's lock)."""

    token_sha256: str
    leaf: str  # hex: H(token DER) in the batch's algorithm
    retain_until: datetime
    trees: tuple[str, ...]
    records: int

    def to_json(self) -> dict[str, Any]:
        return {
            "token_sha256": self.token_sha256,
            "leaf": self.leaf,
            "retain_until": self.retain_until.isoformat(),
            "trees": list(self.trees),
            "records": self.records,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Renewed:
        return cls(
            d["token_sha256"],
            d["leaf"],
            datetime.fromisoformat(d["retain_until"]),
            tuple(d["trees"]),
            int(d["records"]),
        )


@dataclass(frozen=True, slots=True)
class RenewalBatch:
    batch_id: str
    algorithm: str
    root: str
    gen_time: datetime
    token: bytes  # DER ContentInfo
    renewed: tuple[Renewed, ...]

    def encode(self) -> bytes:
        data = {
            "batch_id": self.batch_id,
            "algorithm": self.algorithm,
            "root": self.root,
            "gen_time": self.gen_time.isoformat(),
            "token": base64.b64encode(self.token).decode(),
            "renewed": [r.to_json() for r in self.renewed],
        }
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> RenewalBatch:
        d = json.loads(data)
        return cls(
            d["batch_id"],
            d["algorithm"],
            d["root"],
            datetime.fromisoformat(d["gen_time"]),
            base64.b64decode(d["token"]),
            tuple(Renewed.from_json(r) for r in d["renewed"]),
        )

    @property
    def longest(self) -> datetime:
        return max(r.retain_until for r in self.renewed)


class RenewalState:
    """Batches, their ATS objects and done markers in the bucket (the only copy: a renewal has
    nothing to keep while the store is down, unlike a nightly run's pending documents)."""

    def __init__(self, store: SealedStore) -> None:
        self._store = store

    def batch_ids(self) -> set[str]:
        return self._names(BATCHES, ".json")

    def done_ids(self) -> set[str]:
        return self._names(RENEWED, "")

    def load_batch(self, batch_id: str) -> RenewalBatch:
        return RenewalBatch.decode(self._read(BATCHES + batch_id + ".json"))

    def save_batch(self, batch: RenewalBatch) -> None:
        key = BATCHES + batch.batch_id + ".json"
        self._store.put_locked(key, batch.encode(), retain_until=batch.longest)

    def put_ats(self, renewed: Renewed, der: bytes) -> bool:
        """True when created; False when the same ATS was already there (a resumed batch)."""
        key = f"{ATS}{renewed.token_sha256}.ats"
        return self._store.put_locked(key, der, retain_until=renewed.retain_until).created

    def mark_done(self, batch: RenewalBatch) -> None:
        self._store.put_locked(
            RENEWED + batch.batch_id, batch.batch_id.encode(), retain_until=batch.longest
        )

    def _names(self, prefix: str, suffix: str) -> set[str]:
        names = set()
        for version in self._store.list_versions(prefix):
            name = version.key[len(prefix) :]
            if not version.is_delete_marker and name.endswith(suffix):
                names.add(name[: len(name) - len(suffix)] if suffix else name)
        return names

    def _read(self, key: str) -> bytes:
        head = self._store.latest(key)
        if head is None:
            raise ArchiveError(f"evidence renewal state {key} is not in the bucket")
        return self._store.get(key, version_id=head.version_id)


def fresh_batch_id(now: datetime, taken: Sequence[str] | set[str]) -> str:
    base, candidate, n = f"{now:%Y%m%dT%H%M%SZ}", f"{now:%Y%m%dT%H%M%SZ}", 0
    while candidate in taken:
        n += 1
        candidate = f"{base}.{n}"
    return candidate
