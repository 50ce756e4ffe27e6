"""The second site: every write confirmed at both, reads from the primary.

Writes are synchronous (see the README's durability model): :meth:`ReplicatedStore.put_locked`
returns only once the primary *and* the replica hold the object under the same COMPLIANCE
retain-until, so whatever the caller records afterwards (a catalog row, a manifest's HEAD, an
audit chain head) is never ahead of the second copy. A replica that is down fails the write
retryable (:class:`ReplicaError`); the create-once key makes the retry adopt the primary's copy
and finish the replica's.

Version ids are each site's own (S3 assigns them); the catalog names the primary's. The replica's
copy of a key is found by key: keys are created once, so a key has one live version per site.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import TypeVar

from archive.core.errors import ObjectConflictError, ReplicaError, StoreError
from archive.core.settings import Settings
from archive.store.base import (
    COMPLIANCE,
    ObjectHead,
    ObjectStore,
    ObjectVersion,
    PutResult,
    sha256_hex,
)
from archive.store.rehomed_store import Catalogued, RehomedStore, no_catalog
from archive.store.s3 import S3ObjectStore
from archive.store.s3_client import S3Role

T = TypeVar("T")


class ReplicatedStore:
    """An :class:`ObjectStore` writing to two sites; ``primary`` answers the reads."""

    def __init__(self, *, primary: ObjectStore, replica: ObjectStore) -> None:
        self.primary = primary
        self.replica = replica

    @property
    def bucket(self) -> str:
        return self.primary.bucket

    def ensure_compliant(self) -> None:
        self.primary.ensure_compliant()
        self._at_replica("check Object Lock", lambda: self.replica.ensure_compliant())

    def put_locked(self, key: str, data: bytes, *, retain_until: datetime) -> PutResult:
        put = self.primary.put_locked(key, data, retain_until=retain_until)
        self._put_replica(key, data, sha256=put.sha256, retain_until=retain_until)
        return put

    def get(self, key: str, *, version_id: str) -> bytes:
        return self.primary.get(key, version_id=version_id)

    def head(self, key: str, *, version_id: str) -> ObjectHead:
        return self.primary.head(key, version_id=version_id)

    def latest(self, key: str) -> ObjectHead | None:
        """The primary's current version, once the replica holds it too: a writer that finds an
        object (a resumed deposit, a sealed manifest already uploaded) builds on it, so an
        earlier attempt that stopped between the two sites is completed here."""
        head = self.primary.latest(key)
        if head is not None:
            self._complete(head)
        return head

    def list_versions(self, prefix: str = "", *, start_after: str = "") -> Iterator[ObjectVersion]:
        return self.primary.list_versions(prefix, start_after=start_after)

    def extend_retention(self, key: str, *, version_id: str, retain_until: datetime) -> None:
        self.primary.extend_retention(key, version_id=version_id, retain_until=retain_until)
        copy = self._replica_copy(key, self.primary.head(key, version_id=version_id))
        self._at_replica(
            "extend retention",
            lambda: self.replica.extend_retention(
                key, version_id=copy.version_id, retain_until=retain_until
            ),
        )

    def set_legal_hold(self, key: str, *, version_id: str, on: bool) -> None:
        self.primary.set_legal_hold(key, version_id=version_id, on=on)
        copy = self._replica_copy(key, self.primary.head(key, version_id=version_id))
        self._at_replica(
            "set legal hold",
            lambda: self.replica.set_legal_hold(key, version_id=copy.version_id, on=on),
        )

    def delete_version(self, key: str, *, version_id: str) -> None:
        """Delete at the replica first, then at the primary: a failure between the two leaves
        the catalogued version in place, so a retry finds it and finishes (never the reverse,
        which would leave a copy nobody lists)."""
        wanted = self.primary.head(key, version_id=version_id)
        copy = self.replica.latest(key)
        if copy is not None and _same(copy, wanted):
            self.replica.delete_version(key, version_id=copy.version_id)
        self.primary.delete_version(key, version_id=version_id)

    # -- the replica's side ---------------------------------------------------------------------

    def _put_replica(self, key: str, data: bytes, *, sha256: str, retain_until: datetime) -> None:
        try:
            copy = self.replica.put_locked(key, data, retain_until=retain_until)
        except ObjectConflictError as e:
            raise ReplicaError(
                f"the replica holds other bytes under {key}; nothing was overwritten. Compare the "
                "sites (emr-archive verify) before repairing"
            ) from e
        except StoreError as e:
            raise ReplicaError(f"the replica did not store {key} ({type(e).__name__}): {e}") from e
        if copy.sha256 != sha256:
            raise ReplicaError(f"the replica stored other bytes under {key}")

    def _complete(self, head: ObjectHead) -> None:
        copy = self._at_replica("read", lambda: self.replica.latest(head.key))
        if copy is not None:
            if not _same(copy, head):
                raise ReplicaError(f"the replica holds other bytes under {head.key}")
            return
        data = self.primary.get(head.key, version_id=head.version_id)
        if head.sha256 is not None and sha256_hex(data) != head.sha256:
            raise ReplicaError(f"the primary's {head.key} does not match its stored checksum")
        until = head.lock.retain_until
        if head.lock.mode != COMPLIANCE or until is None:
            raise ReplicaError(f"the primary's {head.key} is not under a COMPLIANCE lock")
        self._put_replica(head.key, data, sha256=sha256_hex(data), retain_until=until)
        if head.lock.legal_hold:
            self._at_replica("set legal hold", lambda: self._hold_copy(head.key))

    def _hold_copy(self, key: str) -> None:
        copy = self.replica.latest(key)
        if copy is None:
            raise ReplicaError(f"the replica lost {key} while it was being held")
        self.replica.set_legal_hold(key, version_id=copy.version_id, on=True)

    def _replica_copy(self, key: str, head: ObjectHead) -> ObjectHead:
        copy = self._at_replica("read", lambda: self.replica.latest(key))
        if copy is None or not _same(copy, head):
            raise ReplicaError(
                f"the replica has no copy of {key} with the primary's bytes: run "
                "`emr-archive repair --site replica` first, then retry"
            )
        return copy

    def _at_replica(self, what: str, call: Callable[[], T]) -> T:
        try:
            return call()
        except ReplicaError:
            raise
        except StoreError as e:
            raise ReplicaError(f"the replica could not {what} ({type(e).__name__}): {e}") from e


def _same(copy: ObjectHead, head: ObjectHead) -> bool:
    return copy.sha256 is not None and copy.sha256 == head.sha256 and copy.size == head.size


def open_primary(
    settings: Settings,
    *,
    read_only: bool = False,
    role: S3Role = "admin",
    catalogued: Catalogued = no_catalog,
) -> RehomedStore:
    """The primary as readers see it: a version a primary repair restored is served under its
    catalogued id (checked against ``catalogued``: the catalog's SHA-256s)."""
    inner = S3ObjectStore.from_settings(settings, read_only=read_only, role=role)
    return RehomedStore(inner, catalogued=catalogued)


def open_sites(
    settings: Settings, *, role: S3Role = "admin", catalogued: Catalogued = no_catalog
) -> ObjectStore:
    """The write path's store: both sites when ``[replica] enabled``, else the primary alone."""
    primary = open_primary(settings, role=role, catalogued=catalogued)
    if not settings.replica.enabled:
        return primary
    replica = S3ObjectStore.from_settings(settings, role=role, site="replica")
    return ReplicatedStore(primary=primary, replica=replica)


def storage_sites(settings: Settings) -> tuple[str, ...]:
    """Where the write path stores (and disposition deletes): one line per site, for minutes."""
    sites = [f"primary: bucket {settings.s3.bucket} at {settings.s3_endpoint_url}"]
    if settings.replica.enabled:
        sites.append(
            f"replica: bucket {settings.replica.bucket} at {settings.replica_endpoint_url}"
        )
    return tuple(sites)
