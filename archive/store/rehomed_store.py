"""The primary as every reader sees it: catalogued version ids, whatever a repair restored.

:class:`RehomedStore` wraps the primary's store. A version the catalog names and the primary no
longer holds (lost with the site, restored by ``repair --site primary`` under a new version id)
is looked up in the re-homed map (:mod:`archive.store.rehomed`) and served from the restored
version, only when

- the map is whole (every segment locked, in sequence and in chain), and
- the entry's SHA-256 is the catalog's for that catalogued version (``catalogued``: asked only
  for the versions in the map, and only once a version is missing), and
- the restored bytes hash to it (and, for a HEAD, the store's checksum says so).

Otherwise the read fails (:class:`RehomedError`), never falls back to other bytes. Listings name
restored versions by their catalogued ids; retention changes, holds and deletions of a
catalogued version go to the restored one (a deletion is resolved *first*: S3 answers success for
deleting a version id it does not have). Nothing changes while no primary was ever repaired: the
map is then one empty listing, read once per store object. The map is listed (and its segments'
locks and checksums looked at) once per store object, its bytes read once per process
(:func:`archive.store.rehomed.indexed_map`).

A broken map stops only what needs it (verification reports it, :mod:`verification.rehomed`):
the map names record versions alone, so objects outside ``records/`` never consult it, and a
record still at its catalogued version is read, held, extended and deleted as before; a record
that needs the map, or a listing of records (which could not name restored versions), is refused.
The map's segment is held while any record it maps is held: releasing the last releases it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import replace
from datetime import datetime

from archive.core.errors import ObjectNotFoundError, RehomedError
from archive.store.base import ObjectHead, ObjectStore, ObjectVersion, PutResult, sha256_hex
from archive.store.naming import RECORDS_PREFIX
from archive.store.rehomed import RehomedMap, Rehoming, Version, indexed_map

# (key, catalogued version) pairs -> the catalog's SHA-256 of their sealed bytes (absent: unknown)
Catalogued = Callable[[Collection[Version]], Mapping[Version, str]]


def no_catalog(_: Collection[Version]) -> Mapping[Version, str]:
    raise RehomedError(
        "a record restored by a primary repair was asked for, and there is no catalog here to "
        "check its SHA-256 against: read it where the catalog is"
    )


class RehomedStore:
    """An :class:`ObjectStore` that resolves catalogued versions restored by a primary repair."""

    def __init__(self, inner: ObjectStore, *, catalogued: Catalogued = no_catalog) -> None:
        self.inner = inner
        self._catalogued = catalogued
        self._lock = threading.Lock()
        self._map: RehomedMap | None = None
        self._broken: RehomedError | None = None  # the map was refused: not read again
        self._checked: dict[Version, str] = {}  # entries already matched against the catalog

    @property
    def bucket(self) -> str:
        return self.inner.bucket

    def ensure_compliant(self) -> None:
        self.inner.ensure_compliant()

    def put_locked(self, key: str, data: bytes, *, retain_until: datetime) -> PutResult:
        return self.inner.put_locked(key, data, retain_until=retain_until)

    def latest(self, key: str) -> ObjectHead | None:
        head = self.inner.latest(key)
        if head is None or not key.startswith(RECORDS_PREFIX):
            return head
        catalogued = self.rehomed_map().restored.get((key, head.version_id))
        return head if catalogued is None else replace(head, version_id=catalogued)

    def get(self, key: str, *, version_id: str) -> bytes:
        try:
            return self.inner.get(key, version_id=version_id)
        except ObjectNotFoundError:
            entry = self._resolve(key, version_id)
            if entry is None:
                raise
        data = self.inner.get(key, version_id=entry.restored)
        if sha256_hex(data) != entry.sha256:
            raise RehomedError(
                f"{key}: the restored version's bytes are not the catalogued ones; not served"
            )
        return data

    def head(self, key: str, *, version_id: str) -> ObjectHead:
        try:
            return self.inner.head(key, version_id=version_id)
        except ObjectNotFoundError:
            entry = self._resolve(key, version_id)
            if entry is None:
                raise
        head = self.inner.head(key, version_id=entry.restored)
        if head.sha256 != entry.sha256:
            raise RehomedError(
                f"{key}: the restored version's checksum is not the catalogued SHA-256"
            )
        return replace(head, version_id=version_id)

    def list_versions(self, prefix: str = "", *, start_after: str = "") -> Iterator[ObjectVersion]:
        if not _overlaps_records(prefix):
            yield from self.inner.list_versions(prefix, start_after=start_after)
            return
        restored = self.rehomed_map().restored
        for v in self.inner.list_versions(prefix, start_after=start_after):
            catalogued = restored.get((v.key, v.version_id))
            yield v if catalogued is None else replace(v, version_id=catalogued)

    def extend_retention(self, key: str, *, version_id: str, retain_until: datetime) -> None:
        actual = self._actual(key, version_id)
        self.inner.extend_retention(key, version_id=actual, retain_until=retain_until)
        segment = self._segment(key, version_id, actual)
        if segment is not None:  # the map must outlive what it maps
            head = self.inner.latest(segment)
            until = head.lock.retain_until if head is not None else None
            if head is not None and until is not None and until < retain_until:
                self.inner.extend_retention(
                    segment, version_id=head.version_id, retain_until=retain_until
                )

    def set_legal_hold(self, key: str, *, version_id: str, on: bool) -> None:
        actual = self._actual(key, version_id)
        self.inner.set_legal_hold(key, version_id=actual, on=on)
        segment = self._segment(key, version_id, actual)
        if segment is None:
            return
        head = self.inner.latest(segment)
        if head is None or head.lock.legal_hold == on:
            return
        # Released only with the last held record it maps: each release is made before this
        # look, so of two releases at once the later sees the other's.
        if on or not self._holds_another(segment, (key, version_id)):
            self.inner.set_legal_hold(segment, version_id=head.version_id, on=on)

    def delete_version(self, key: str, *, version_id: str) -> None:
        self.inner.delete_version(key, version_id=self._actual(key, version_id))

    # -- resolution -----------------------------------------------------------------------------

    def rehomed_map(self, *, reload: bool = False) -> RehomedMap:
        """The verified map; :class:`RehomedError` when it is refused (remembered: a segment
        under COMPLIANCE does not heal, and each record that needs it would read it again)."""
        with self._lock:
            if self._broken is not None and not reload:
                raise self._broken
            if self._map is None or reload:
                try:
                    self._map = indexed_map(self.inner)
                except RehomedError as e:
                    self._broken = e
                    raise
                self._broken = None
            return self._map

    def _actual(self, key: str, version_id: str) -> str:
        """The version to act on for catalogued ``version_id``: its restored one when the map
        names it (checked against the catalog), else itself. With the map refused, a version the
        primary still holds is itself; any other is refused."""
        if not key.startswith(RECORDS_PREFIX):
            return version_id
        try:
            rmap = self.rehomed_map()
        except RehomedError as broken:
            try:
                self.inner.head(key, version_id=version_id)
            except ObjectNotFoundError:
                raise broken from None  # it needed the map
            return version_id
        entry = rmap.get(key, version_id)
        if entry is None:
            return version_id
        return self._checked_entry(entry).restored

    def _segment(self, key: str, version_id: str, actual: str) -> str | None:
        if actual == version_id:
            return None
        return self.rehomed_map().segment_of.get((key, version_id))

    def _holds_another(self, segment: str, released: Version) -> bool:
        """Whether a record the segment maps, other than ``released``, is under legal hold (its
        restored version's hold: the one holds are set on). One HEAD per entry, until one is."""
        rmap = self.rehomed_map()
        for pair, seg in rmap.segment_of.items():
            if seg != segment or pair == released:
                continue
            entry = rmap.entries[pair]
            try:
                if self.inner.head(entry.key, version_id=entry.restored).lock.legal_hold:
                    return True
            except ObjectNotFoundError:
                continue  # destroyed after its retention: it holds nothing
        return False

    def _resolve(self, key: str, version_id: str) -> Rehoming | None:
        entry = self.rehomed_map().get(key, version_id)
        if entry is None:  # the map may have grown since it was read (a long-lived reader)
            entry = self.rehomed_map(reload=True).get(key, version_id)
        return None if entry is None else self._checked_entry(entry)

    def _checked_entry(self, entry: Rehoming) -> Rehoming:
        pair = (entry.key, entry.catalogued)
        with self._lock:
            if pair not in self._checked:
                assert self._map is not None  # read before any entry is found
                pairs = [p for p in self._map.entries if p not in self._checked]
                known = self._catalogued(pairs)
                self._checked.update({p: known.get(p, "") for p in pairs})  # "": not catalogued
        if self._checked.get(pair) != entry.sha256:
            raise RehomedError(
                f"{entry.key}: the re-homed map's SHA-256 for catalogued version "
                f"{entry.catalogued} is not the catalog's; the restored version is not served"
            )
        return entry


def _overlaps_records(prefix: str) -> bool:
    """Whether a listing under ``prefix`` may hold record versions (the map names no other)."""
    return prefix.startswith(RECORDS_PREFIX) or RECORDS_PREFIX.startswith(prefix)
