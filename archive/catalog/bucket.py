"""The catalog's locked copies in the bucket: the authority the local directory is checked against.

Each manifest is stored create-once under a COMPLIANCE lock as ``catalog/sealed/v1/manifests/
<seq>.parquet``, through a :class:`archive.store.SealedStore` so the bucket holds only envelopes.
Uploading is idempotent (``put_locked`` accepts equal bytes and refuses different ones), which is
what lets a crashed append be finished by the next one, and turns a diverged local catalog into a
:class:`ChainBrokenError` instead of a second version. Downloading verifies the whole chain.

The create-once key is also how writers on several machines agree on the order: manifest ``n`` is
claimed by the one conditional create (``If-None-Match: *``) that succeeds; a writer that loses
downloads what it lacks (:func:`download_after`) and claims ``n + 1`` (:mod:`.manifests`).
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from archive.catalog.chain import ManifestInfo, check_sequence, link_manifest
from archive.catalog.codec import decode_table
from archive.catalog.local import LOCAL, write_file
from archive.catalog.naming import (
    BUCKET_PREFIX,
    LEGACY_BUCKET_PREFIX,
    REBUILD_HINT,
    manifest_key,
    parse_manifest_name,
)
from archive.core.errors import (
    CatalogError,
    ChainBrokenError,
    ManifestCorruptError,
    ObjectConflictError,
    SealError,
)
from archive.store import ObjectStore, PutResult, sha256_hex

if TYPE_CHECKING:
    from archive.core.settings import Settings


def manifest_lock(settings: Settings, now: datetime) -> datetime:
    """How long the bucket copies of catalog manifests, audit and register segments written at
    ``now`` stay locked, by the settings."""
    return manifest_retain_until(now, years=settings.catalog.manifest_retain_years)


def manifest_retain_until(now: datetime, *, years: int) -> datetime:
    """``now`` plus ``years`` calendar years (29 February rounds up to 1 March): how long the
    bucket copies of manifests stay locked (``CatalogSettings.manifest_retain_years``)."""
    try:
        return now.replace(year=now.year + years)
    except ValueError:
        return now.replace(year=now.year + years, month=3, day=1)


def bucket_versions(store: ObjectStore, *, after: int = 0) -> dict[int, list[str]]:
    """Version ids of each manifest copy in the bucket, by sequence number (one listing); with
    ``after``, of those numbered above it only, listed from its key on: keys are zero-padded
    sequence numbers, so key order is sequence order and the pages before are never read."""
    found: dict[int, list[str]] = {}
    start = manifest_key(after) if after else ""
    for version in store.list_versions(BUCKET_PREFIX, start_after=start):
        seq = parse_manifest_name(version.key.removeprefix(BUCKET_PREFIX))
        if seq is not None and seq > after and not version.is_delete_marker:
            found.setdefault(seq, []).append(version.version_id)
    return found  # other keys under the prefix cannot be removed from a locked bucket: ignored


def versions_to_sync(
    store: ObjectStore, newest: int, *, whole: bool = False
) -> tuple[int, dict[int, list[str]]]:
    """The bucket's manifest copies a cache whose newest is ``newest`` (0: empty) syncs with,
    and the first sequence number they start at. A warm cache lists from its newest's key on
    (a page, not one per 1,000 manifests): once the bucket holds that manifest it holds every
    older one (claims go bucket first; earlier releases uploaded oldest first), and the sync
    re-uploads it, which proves it equal and, through the chain, its predecessors. An empty
    cache, one whose newest the bucket lacks, and ``whole`` list every copy."""
    if newest and not whole:
        versions = bucket_versions(store, after=newest - 1)
        if newest in versions:
            return newest, versions
    return 1, bucket_versions(store)


def download_chain(store: ObjectStore, target: Path) -> ManifestInfo | None:
    """Download and verify every manifest copy into ``target``; return the newest."""
    versions = bucket_versions(store)
    if not versions and any(True for _ in store.list_versions(LEGACY_BUCKET_PREFIX)):
        raise CatalogError(
            f"the bucket holds only plaintext manifest copies of an earlier release "
            f"({LEGACY_BUCKET_PREFIX}), none sealed yet: run `emr-archive catalog verify` where "
            "the catalog is, which uploads them sealed, then rebuild"
        )
    newest, data = None, b""
    for seq in check_sequence(versions, where=BUCKET_PREFIX):
        data = _fetch(store, manifest_key(seq), versions[seq])
        newest = link_manifest(newest, seq, data, label=manifest_key(seq))
        write_file(target / newest.name, data)
    if newest is not None:  # it has no successor: at least every page must pass its checksum
        decode_table(data, name=newest.key)
    return newest


def download_after(
    store: ObjectStore,
    versions: dict[int, list[str]],
    prev: ManifestInfo | None,
    target: Path,
    *,
    first: int = 1,
) -> list[ManifestInfo]:
    """Download, verify and write into ``target`` the bucket's manifests after ``prev`` (the
    local cache's newest, which they must chain to): what other writers appended since.
    ``versions`` holds the bucket's manifests from ``first`` on (all of them by default)."""
    found: list[tuple[ManifestInfo, bytes]] = []
    after = prev.seq if prev else 0
    for seq in check_sequence(versions, where=BUCKET_PREFIX, start=first)[after - first + 1 :]:
        data = _fetch(store, manifest_key(seq), versions[seq])
        prev = link_manifest(prev, seq, data, label=manifest_key(seq))
        found.append((prev, data))
    if found:  # the newest has no successor to vouch for it: every page must pass its checksum
        decode_table(found[-1][1], name=found[-1][0].key)
    for info, data in found:  # written once all are verified, oldest first, as appends do
        write_file(target / info.name, data)
    return [info for info, _ in found]


def _fetch(store: ObjectStore, key: str, version_ids: list[str]) -> bytes:
    blobs = set()
    for version_id in version_ids:
        try:
            data = store.get(key, version_id=version_id)
        except SealError as e:
            raise ManifestCorruptError(
                f"bucket copy {key} (version {version_id}) does not open under this keyring "
                f"({type(e).__name__}): it is damaged or was not written by this archive; "
                "restore it from a replica or backup, or check the keyring"
            ) from e
        recorded = store.head(key, version_id=version_id).sha256  # None through a SealedStore
        if recorded is not None and recorded != sha256_hex(data):
            raise ManifestCorruptError(
                f"bucket copy {key} does not match the SHA-256 the store recorded for it: "
                "the stored object is damaged; restore it from a replica or backup"
            )
        blobs.add(data)
    if len(blobs) != 1:
        raise ChainBrokenError(
            f"bucket key {key} holds {len(blobs)} different versions where the catalog writes "
            "one: find out which process wrote the extra version before rebuilding"
        )
    return blobs.pop()


def upload(store: ObjectStore, info: ManifestInfo, data: bytes, until: datetime) -> PutResult:
    """Lock ``data`` as manifest ``info`` in the bucket, or adopt the equal copy already there."""
    try:
        return store.put_locked(info.key, data, retain_until=until)
    except ObjectConflictError as e:
        raise ChainBrokenError(
            f"{LOCAL}{info.name} differs from its locked bucket copy {info.key}, which is the "
            f"authority: the local catalog diverged; {REBUILD_HINT}, then investigate"
        ) from e
