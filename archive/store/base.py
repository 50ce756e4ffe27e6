"""The object-store edge: what the archive needs from S3-compatible WORM storage.

Two adapters implement :class:`ObjectStore`: :mod:`archive.store.s3` (boto3; AWS S3, SeaweedFS,
MinIO, Ceph RGW) and ``tests.support.memstore`` (in memory, for pure unit tests only). Callers
depend on this protocol, never on boto3.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol, runtime_checkable

COMPLIANCE: Final = "COMPLIANCE"


@dataclass(frozen=True, slots=True)
class PutResult:
    """Where a create-once write landed."""

    key: str
    version_id: str
    sha256: str
    size: int
    created: bool  # False: an identical object already existed (a retried or resumed write)


@dataclass(frozen=True, slots=True)
class ObjectLock:
    mode: str | None
    retain_until: datetime | None
    legal_hold: bool


@dataclass(frozen=True, slots=True)
class ObjectHead:
    key: str
    version_id: str
    size: int
    sha256: str | None  # hex; None when the store kept no SHA-256 checksum
    lock: ObjectLock


@dataclass(frozen=True, slots=True)
class ObjectVersion:
    key: str
    version_id: str
    size: int
    is_latest: bool
    is_delete_marker: bool
    last_modified: datetime


@dataclass(frozen=True, slots=True)
class ObjectRead:
    """One GET: the bytes, their SHA-256 as read (hashed while they streamed in), and what the
    store said about the version in the same response."""

    data: bytes
    sha256: str  # hex, of ``data``: computed by us, never the store's word
    head: ObjectHead | None  # None: the response lacked the checksum, lock mode or hold status


class ObjectStore(Protocol):
    """Create-once, locked object storage."""

    @property
    def bucket(self) -> str: ...

    def ensure_compliant(self) -> None:
        """Raise BucketNotCompliantError unless the bucket has Object Lock and versioning."""

    def put_locked(self, key: str, data: bytes, *, retain_until: datetime) -> PutResult:
        """Create ``key`` once under a COMPLIANCE lock until ``retain_until``.

        If the key already holds exactly these bytes (a retry or a resumed run), return that
        version with ``created=False``; if it holds other bytes, raise ObjectConflictError.
        """

    def get(self, key: str, *, version_id: str) -> bytes: ...

    def head(self, key: str, *, version_id: str) -> ObjectHead: ...

    def latest(self, key: str) -> ObjectHead | None:
        """The current version of ``key``, or None when there is none."""

    def list_versions(self, prefix: str = "", *, start_after: str = "") -> Iterator[ObjectVersion]:
        """Every version under ``prefix``, by key; with ``start_after``, only those of keys after
        it in byte order (S3's ``KeyMarker``: the listing starts there, pages before are not
        read)."""

    def extend_retention(self, key: str, *, version_id: str, retain_until: datetime) -> None: ...

    def set_legal_hold(self, key: str, *, version_id: str, on: bool) -> None: ...

    def delete_version(self, key: str, *, version_id: str) -> None:
        """Permanently delete one version; the store refuses while it is locked or held."""


@runtime_checkable
class ClaimStore(Protocol):
    """What coordination between machines needs (the run leases of :mod:`archive.pipeline`):
    one atomic compare-and-swap, the conditional create. ``If-Match`` on an existing key is not
    used: SeaweedFS 4.48 let two of eight concurrent ``If-Match`` PUTs win (18 of 30 trials),
    while ``If-None-Match: *`` let exactly one win in 30 of 30, locked and versioned or not."""

    def create(self, key: str, data: bytes) -> str | None:
        """Create ``key``, unlocked, only if it has no current version: the new version id, or
        None when it exists (another writer's create came first)."""

    def get(self, key: str, *, version_id: str) -> bytes: ...

    def list_versions(self, prefix: str = "") -> Iterator[ObjectVersion]: ...

    def delete_version(self, key: str, *, version_id: str) -> None: ...


@runtime_checkable
class MetaReader(Protocol):
    """A store whose GET answers the version's checksum, lock and hold with the bytes (S3 with
    ``ChecksumMode=ENABLED``): one request instead of a HEAD and a GET. Readers fall back to
    :meth:`ObjectStore.head` when :attr:`ObjectRead.head` is None."""

    def read(self, key: str, *, version_id: str) -> ObjectRead: ...


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
