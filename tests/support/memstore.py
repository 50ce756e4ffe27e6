"""In-memory twin of the object store, for pure unit tests only.

It mimics the Object Lock rules the archive relies on (create-once, COMPLIANCE retention can only
grow, locked versions cannot be deleted) so unit tests exercise the same contracts as the real
SeaweedFS-backed tests; integration tests never use it.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime

from archive.core.errors import LockRefusedError, ObjectConflictError, ObjectNotFoundError
from archive.store import (
    COMPLIANCE,
    ObjectHead,
    ObjectLock,
    ObjectVersion,
    PutResult,
    sha256_hex,
)

LIST_PAGE = 1000  # S3's MaxKeys default and ceiling


@dataclass
class _Version:
    version_id: str
    data: bytes
    lock: ObjectLock
    created: datetime


@dataclass
class MemoryStore:
    bucket: str = "memory"
    _objects: dict[str, list[_Version]] = field(default_factory=dict)
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    list_page: int = LIST_PAGE  # versions per listed page; tests shrink it to count pages
    list_pages: int = 0  # ListObjectVersions pages S3 would have served

    def ensure_compliant(self) -> None:
        return None

    def put_locked(self, key: str, data: bytes, *, retain_until: datetime) -> PutResult:
        digest = sha256_hex(data)
        current = self._latest(key)
        if current is not None:
            if sha256_hex(current.data) != digest:
                raise ObjectConflictError(f"{key} already holds different bytes")
            return PutResult(key, current.version_id, digest, len(data), created=False)
        version = _Version(
            version_id=f"v{next(self._ids):08d}",
            data=bytes(data),
            lock=ObjectLock(COMPLIANCE, retain_until, legal_hold=False),
            created=datetime.now(UTC),
        )
        self._objects.setdefault(key, []).append(version)
        return PutResult(key, version.version_id, digest, len(data), created=True)

    def create(self, key: str, data: bytes) -> str | None:
        if self._latest(key) is not None:
            return None
        version = _Version(
            version_id=f"v{next(self._ids):08d}",
            data=bytes(data),
            lock=ObjectLock(None, None, legal_hold=False),
            created=datetime.now(UTC),
        )
        self._objects.setdefault(key, []).append(version)
        return version.version_id

    def get(self, key: str, *, version_id: str) -> bytes:
        return self._version(key, version_id).data

    def head(self, key: str, *, version_id: str) -> ObjectHead:
        v = self._version(key, version_id)
        return ObjectHead(key, v.version_id, len(v.data), sha256_hex(v.data), v.lock)

    def latest(self, key: str) -> ObjectHead | None:
        v = self._latest(key)
        if v is None:
            return None
        return ObjectHead(key, v.version_id, len(v.data), sha256_hex(v.data), v.lock)

    def list_versions(self, prefix: str = "", *, start_after: str = "") -> Iterator[ObjectVersion]:
        found = [
            ObjectVersion(key, v.version_id, len(v.data), i == len(versions) - 1, False, v.created)
            for key, versions in sorted(self._objects.items())
            if key.startswith(prefix) and key > start_after
            for i, v in enumerate(versions)
        ]
        # What S3 would bill and wait for: one ListObjectVersions page per list_page versions.
        self.list_pages += max(1, -(-len(found) // self.list_page))
        yield from found

    def extend_retention(self, key: str, *, version_id: str, retain_until: datetime) -> None:
        v = self._version(key, version_id)
        if v.lock.retain_until is not None and retain_until < v.lock.retain_until:
            raise LockRefusedError("a COMPLIANCE retention cannot be shortened")
        v.lock = ObjectLock(COMPLIANCE, retain_until, v.lock.legal_hold)

    def set_legal_hold(self, key: str, *, version_id: str, on: bool) -> None:
        v = self._version(key, version_id)
        v.lock = ObjectLock(v.lock.mode, v.lock.retain_until, on)

    def delete_version(self, key: str, *, version_id: str) -> None:
        v = self._version(key, version_id)
        if v.lock.legal_hold or (
            v.lock.retain_until is not None and v.lock.retain_until > datetime.now(UTC)
        ):
            raise LockRefusedError(f"{key} version {version_id} is locked")
        self._objects[key].remove(v)

    # Test helper: what a bit flip below the S3 API looks like.
    def corrupt(self, key: str, *, version_id: str, data: bytes) -> None:
        self._version(key, version_id).data = data

    def _latest(self, key: str) -> _Version | None:
        versions = self._objects.get(key)
        return versions[-1] if versions else None

    def _version(self, key: str, version_id: str) -> _Version:
        for v in self._objects.get(key, []):
            if v.version_id == version_id:
                return v
        raise ObjectNotFoundError(f"{key} has no version {version_id}")
