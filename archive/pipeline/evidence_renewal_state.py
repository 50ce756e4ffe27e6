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

import hashlib
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from asn1crypto import algos, cms

from archive.core.errors import ArchiveError, EvidenceFormatError
from archive.evidence import ReducedTree, asn1
from archive.pipeline.evidence_state import read_stamp, stamp_fields
from archive.store import EVIDENCE_PREFIX, SealedStore

RENEWALS: Final = EVIDENCE_PREFIX + "renewals/"
BATCHES: Final = RENEWALS + "batches/"
ATS: Final = RENEWALS + "ats/"
RENEWED: Final = RENEWALS + "done/"
HASH_BATCHES: Final = RENEWALS + "hash/"  # hash-tree renewals: the batch, as above
HASH_DONE: Final = RENEWALS + "hash-done/"
CHAINS: Final = RENEWALS + "chains/"  # one new chain's first ATS per document


def token_sha256(token_der: bytes) -> str:
    return hashlib.sha256(token_der).hexdigest()


def ats_key(token_der: bytes) -> str:
    """Where the ATS renewing the token ``token_der`` is (if it was renewed)."""
    return f"{ATS}{token_sha256(token_der)}.ats"


def chain_key(evidence_key: str, token_der: bytes) -> str:
    """Where the new chain (hash-tree renewal) of the record at ``evidence_key`` is, started
    after its chain ending in ``token_der``: per document, since its leaf covers the document."""
    record = evidence_key[len(EVIDENCE_PREFIX) :].removesuffix(".ers")
    return f"{CHAINS}{record}/{token_sha256(token_der)}.ats"


def encode_chain_ats(algorithm: str, reduced: ReducedTree, token: cms.ContentInfo) -> bytes:
    """The first ATS of a new chain, as :func:`archive.evidence.renew_hash_tree` appends it."""
    ats = asn1.ArchiveTimeStamp(
        {
            "digest_algorithm": algos.DigestAlgorithm({"algorithm": algorithm}),
            "time_stamp": token,
            "reduced_hashtree": [list(p) for p in reduced],
        }
    )
    der: bytes = ats.dump()
    return der


def decode_chain_ats(der: bytes) -> tuple[str, ReducedTree, cms.ContentInfo]:
    """:func:`encode_chain_ats` read back, strictly (as :func:`decode_ats`)."""
    try:
        ats = asn1.ArchiveTimeStamp.load(der, strict=True)
        algorithm = ats["digest_algorithm"]["algorithm"].native
        reduced = tuple(tuple(p) for p in ats["reduced_hashtree"].native or ())
        token = ats["time_stamp"]
        again = encode_chain_ats(algorithm, reduced, token)
    except (ValueError, TypeError, KeyError, AttributeError) as e:
        raise EvidenceFormatError(f"a renewal object is not an ArchiveTimeStamp: {e}") from e
    if not reduced or again != der:
        raise EvidenceFormatError("a renewal object holds what no renewal of this archive writes")
    return algorithm, reduced, token


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

    @property
    def key(self) -> str:
        """Its ATS object's key."""
        return f"{ATS}{self.token_sha256}.ats"

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
            **stamp_fields(self.algorithm, self.root, self.gen_time, self.token),
            "renewed": [r.to_json() for r in self.renewed],
        }
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> RenewalBatch:
        d = json.loads(data)
        return cls(
            batch_id=d["batch_id"],
            renewed=tuple(Renewed.from_json(r) for r in d["renewed"]),
            **read_stamp(d),
        )

    @property
    def longest(self) -> datetime:
        return max(r.retain_until for r in self.renewed)


@dataclass(frozen=True, slots=True)
class Rehashed:
    """One document a hash-tree renewal covers: its evidence key, the token its current
    record ended in (the new chain's object is keyed by it) and its leaf."""

    key: str
    after_token_sha256: str
    leaf: str
    retain_until: datetime

    @property
    def chain_key(self) -> str:
        """Its new chain's object key (as :func:`chain_key`)."""
        record = self.key[len(EVIDENCE_PREFIX) :].removesuffix(".ers")
        return f"{CHAINS}{record}/{self.after_token_sha256}.ats"


@dataclass(frozen=True, slots=True)
class HashBatch:
    batch_id: str
    algorithm: str
    root: str
    gen_time: datetime
    token: bytes
    entries: tuple[Rehashed, ...]

    def encode(self) -> bytes:
        data = {
            "batch_id": self.batch_id,
            **stamp_fields(self.algorithm, self.root, self.gen_time, self.token),
            "entries": [
                [e.key, e.after_token_sha256, e.leaf, e.retain_until.isoformat()]
                for e in self.entries
            ],
        }
        return json.dumps(data, sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes) -> HashBatch:
        d = json.loads(data)
        return cls(
            batch_id=d["batch_id"],
            entries=tuple(
                Rehashed(k, t, leaf, datetime.fromisoformat(u)) for k, t, leaf, u in d["entries"]
            ),
            **read_stamp(d),
        )


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
        return self._store.put_locked(renewed.key, der, retain_until=renewed.retain_until).created

    def mark_done(self, batch: RenewalBatch) -> None:
        self._store.put_locked(
            RENEWED + batch.batch_id, batch.batch_id.encode(), retain_until=batch.longest
        )

    def hash_batch_ids(self) -> set[str]:
        return self._names(HASH_BATCHES, ".json")

    def hash_done_ids(self) -> set[str]:
        return self._names(HASH_DONE, "")

    def load_hash_batch(self, batch_id: str) -> HashBatch:
        return HashBatch.decode(self._read(HASH_BATCHES + batch_id + ".json"))

    def save_hash_batch(self, batch: HashBatch) -> None:
        until = max(e.retain_until for e in batch.entries)
        self._store.put_locked(
            HASH_BATCHES + batch.batch_id + ".json", batch.encode(), retain_until=until
        )

    def put_chain(self, entry: Rehashed, der: bytes) -> bool:
        # almost always a new key: the conditional create finds a resumed batch's object
        key, until = entry.chain_key, entry.retain_until
        put = self._store.put_locked(key, der, retain_until=until, expect_new=True)
        return put.created

    def mark_hash_done(self, batch: HashBatch) -> None:
        until = max(e.retain_until for e in batch.entries)
        self._store.put_locked(
            HASH_DONE + batch.batch_id, batch.batch_id.encode(), retain_until=until
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
