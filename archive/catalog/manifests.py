"""The catalog: one hash-chained Parquet manifest per archive run, with locked copies in the bucket.

:class:`Catalog` answers what the archive holds and appends one run's rows at a time. The rows
and their Parquet encoding are :mod:`.schema` and :mod:`.codec`; the chain rules :mod:`.chain`;
the local directory and its crash safety :mod:`.local`; the bucket copies, which are the
authority, :mod:`.bucket`. The local directory is a fast cache of the bucket copies that
:meth:`Catalog.rebuild` recreates byte for byte.

The chain (:mod:`.chain`) vouches for every byte of every manifest; every append (and
:meth:`Catalog.sync`) re-uploads the newest manifest, which the store accepts only if the bytes
equal the locked copy, and downloads (verified) the manifests the bucket holds beyond it, listing
the bucket from the newest's key on (``sync(whole=True)``, as ``catalog verify`` runs it, lists
every copy and so also finds one gone from the middle).

Several writers, on several machines, each with its own local directory, append to one chain:
manifest ``n`` is claimed by creating its bucket key with a conditional create (``If-None-Match:
*``, atomic on AWS S3 and on our SeaweedFS, where ``If-Match`` on an existing key is not: two of
eight concurrent ``If-Match`` PUTs both won in 18 of 30 trials on 4.48), and only then written
locally. A writer whose claim is refused pulls the winner's manifest, links its own rows to it as
``n + 1`` and claims again; a writer killed after its claim left its rows in the bucket, where the
next append (its retry included, by run id) finds them. No head object is needed: locked keys
cannot be overwritten or removed, so the highest contiguous key is the head.

Residual risk: deleting the newest manifest *and* rewriting HEAD (or rolling HEAD back one manifest
and altering the newest) leaves a locally self-consistent chain; the next append or sync restores
it from the bucket (or refuses a diverged copy).

Queries read the manifests as one ``pyarrow.dataset``. Files are hashed when the catalog is opened
and read again by queries; a change in between is only caught by the page checksums. Manifests
written before a column was added read as holding the value their rows meant (``source_kind``
"fhir"), except in a scan filter, which sees them as null. A ``Catalog`` is not thread-safe;
appends from several processes sharing one directory are serialised by ``.lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import shutil
import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

import pyarrow.compute as pc
import pyarrow.dataset as ds

from archive.catalog.bucket import download_after, download_chain, upload, versions_to_sync
from archive.catalog.chain import ManifestInfo, link_manifest
from archive.catalog.codec import PARQUET_ERRORS, ManifestHeader, decode_table, encode_manifest
from archive.catalog.local import (
    LOCAL,
    LOCK_FILE,
    MANIFESTS_DIR,
    LocalState,
    fingerprint_of,
    load,
    mkdir,
    read_file,
    remove_temp_files,
    wrap_os,
    write_file,
    write_head,
)
from archive.catalog.naming import (
    CATALOG_FORMAT_VERSION,
    GENESIS_SHA256,
    REBUILD_HINT,
    manifest_name,
)
from archive.catalog.schema import SCHEMA, CatalogRow, rows_to_table, upgrade, validate_run_id
from archive.core.atomic import fsync_dir
from archive.core.errors import CatalogError, ManifestCorruptError, ObjectConflictError
from archive.store import ObjectStore, PutResult, sha256_hex

# Each lost claim means another writer appended a manifest meanwhile: only a storm of concurrent
# appends (or a bug) loses this many in a row.
_MAX_CLAIMS: Final = 20
WRITER_WAIT_S = 300.0  # how long an append waits for another process's on the same directory
_SCAN_FORMAT: Final = ds.ParquetFileFormat(
    default_fragment_scan_options=ds.ParquetFragmentScanOptions(page_checksum_verification=True)
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendResult:
    """The manifest a run appended (or had already appended) and its bucket copy."""

    manifest: ManifestInfo
    upload: PutResult
    created: bool  # False: this run's identical manifest already existed (a retried append)


class Catalog:
    """The verified catalog in one directory. Build with :meth:`open` or :meth:`rebuild`."""

    def __init__(self, *, directory: Path, state: LocalState) -> None:
        self._dir = directory
        self._state = state

    @classmethod
    def open(cls, directory: Path, *, create: bool = False) -> Catalog:
        """Load and verify every manifest under ``directory``; an empty catalog is valid."""
        if create:
            mkdir(directory / MANIFESTS_DIR)
        elif not directory.is_dir():
            raise CatalogError(
                f"catalog directory {directory} does not exist: check EMR_ARCHIVE_CATALOG__"
                "CATALOG_DIR, open with create=True for a new catalog, or use Catalog.rebuild"
            )
        return cls(directory=directory, state=load(directory))

    @classmethod
    def rebuild(cls, directory: Path, store: ObjectStore) -> Catalog:
        """Recreate the catalog in a new or empty ``directory`` from the bucket copies.

        It is built in a hidden sibling directory and renamed into place once complete, so a
        crash or a broken chain leaves nothing half-built under ``directory``."""
        if directory.exists() and any(wrap_os(directory.iterdir)):
            raise CatalogError(
                f"{directory} is not empty: rebuild into a new or empty directory, compare, "
                "then swap the directories"
            )
        staging = directory.with_name(f".{directory.name}.rebuild-{os.getpid()}")
        mkdir(staging / MANIFESTS_DIR)
        try:
            newest = download_chain(store, staging / MANIFESTS_DIR)
            if newest is not None:
                write_head(staging, newest)
            wrap_os(functools.partial(os.replace, staging, directory))
            fsync_dir(directory.parent)
        finally:
            shutil.rmtree(staging, ignore_errors=True)  # gone already after a successful rename
        return cls.open(directory)

    @property
    def directory(self) -> Path:
        return self._dir

    @property
    def manifests(self) -> tuple[ManifestInfo, ...]:
        return self._state.manifests

    @property
    def head_pending(self) -> bool:
        """True when a crash left the newest manifest written but HEAD not yet updated."""
        return self._state.head_pending

    @property
    def latest_manifest_sha256(self) -> str:
        """sha256 of the newest manifest's bytes; 64 zeros for an empty catalog."""
        return self.manifests[-1].sha256 if self.manifests else GENESIS_SHA256

    # --- queries ---------------------------------------------------------------------------------

    def rows(self) -> Any:
        """Every row of every manifest, oldest first, as a ``pyarrow.Table`` with SCHEMA."""
        return self._scan()

    def find(self, *, encounter_id: str) -> Any:
        """The rows of one encounter (more than one once a record is renewed), oldest first."""
        return self._scan(filter=pc.field("encounter_id") == encounter_id)

    def find_episode(self, episode_key: str) -> Any:
        """The rows whose source named this episode (QĐ 130 ``MA_LK``), oldest first."""
        return self._scan(filter=pc.field("episode_key") == episode_key)

    def contains(self, encounter_id: str) -> bool:
        """One scan per call: for many look-ups take :meth:`encounter_ids` once."""
        hits = self._scan(columns=["encounter_id"], filter=pc.field("encounter_id") == encounter_id)
        return bool(hits.num_rows)

    def signer_fingerprints(self) -> set[str]:
        """SHA-256 of every certificate that signed a catalogued record: the hospital's keys,
        which validation accepts as signers (``archive.sign.TrustPolicy``)."""
        # A handful of values over millions of rows: deduplicated a batch at a time, so that no
        # Python string per row is ever made (archive.catalog.reader reads the same way).
        found: set[str] = set()
        for batch in self._batches(columns=["signer_cert_sha256"]):
            found.update(pc.unique(batch.column(0)).to_pylist())
        return found

    def encounter_ids(self) -> set[str]:
        return set(self._scan(columns=["encounter_id"]).column(0).to_pylist())

    def data_versions(self, encounter_ids: Collection[str]) -> dict[str, list[str]]:
        """The ``data_sha256`` of every catalogued row of each of ``encounter_ids``, oldest
        signature first (one scan for the lot: an archive run asks once per batch of encounters
        it already knows)."""
        if not encounter_ids:
            return {}
        table = self._scan(
            columns=["encounter_id", "signed_at", "data_sha256"],
            filter=pc.field("encounter_id").isin(list(encounter_ids)),
        )
        rows = sorted(
            zip(*(table.column(i).to_pylist() for i in range(3)), strict=True),
            key=lambda r: (r[0], r[1]),
        )
        found: dict[str, list[str]] = {}
        for eid, _, sha in rows:
            found.setdefault(eid, []).append(sha)
        return found

    def _batches(self, **options: Any) -> Iterator[Any]:
        paths = [str(self._dir / MANIFESTS_DIR / m.name) for m in self.manifests]
        try:
            yield from ds.dataset(paths, schema=SCHEMA, format=_SCAN_FORMAT).to_batches(**options)
        except PARQUET_ERRORS as e:
            raise ManifestCorruptError(
                f"a manifest in {self._dir} became unreadable after it was verified "
                f"({type(e).__name__}): open the catalog again to find it, or {REBUILD_HINT}"
            ) from e

    def _scan(self, **options: Any) -> Any:
        paths = [str(self._dir / MANIFESTS_DIR / m.name) for m in self.manifests]
        try:
            table = ds.dataset(paths, schema=SCHEMA, format=_SCAN_FORMAT).to_table(**options)
            return upgrade(table)  # older manifests lack the newer columns: their nulls filled
        except PARQUET_ERRORS as e:
            raise ManifestCorruptError(
                f"a manifest in {self._dir} became unreadable after it was verified "
                f"({type(e).__name__}): open the catalog again to find it, or {REBUILD_HINT}"
            ) from e

    # --- writing ---------------------------------------------------------------------------------

    def append(
        self,
        rows: Iterable[CatalogRow],
        *,
        run_id: str,
        now: datetime,
        store: ObjectStore,
        retain_until: datetime,
    ) -> AppendResult:
        """Write run ``run_id``'s manifest locally, then lock a copy in ``store`` until
        ``retain_until``. Retrying with the same run id and rows returns the existing manifest."""
        table = _batch_table(rows, run_id=validate_run_id(run_id))
        _require_aware(now=now, retain_until=retain_until)
        with self._writer_lock():
            for _ in range(_MAX_CLAIMS):
                self._sync_locked(store, retain_until)  # the bucket's newest manifest first
                done = next((m for m in self.manifests if m.run_id == run_id), None)
                if done is not None:  # a retry, or our claim landed before a crash
                    return self._retried(done, table, store, retain_until)
                self._reject_catalogued(table)
                claimed = self._claim_next(table, run_id, now, store, retain_until)
                if claimed is not None:
                    return claimed
            raise CatalogError(
                f"other writers claimed the next manifest {_MAX_CLAIMS} times in a row while "
                f"run {run_id} tried to append; nothing of this run was catalogued: retry"
            )

    def _claim_next(
        self, table: Any, run_id: str, now: datetime, store: ObjectStore, retain_until: datetime
    ) -> AppendResult | None:
        """Claim the next sequence number by creating its bucket key, then cache it locally;
        None when another writer's manifest got that key first (the caller pulls and rebases)."""
        header = ManifestHeader(
            format_version=CATALOG_FORMAT_VERSION,
            seq=len(self.manifests) + 1,
            run_id=run_id,
            created_at=now,
            row_count=table.num_rows,
            prev_sha256=self.latest_manifest_sha256,
        )
        data = encode_manifest(table, header)
        prev = self.manifests[-1] if self.manifests else None
        info = link_manifest(prev, header.seq, data, label=LOCAL + manifest_name(header.seq))
        try:  # the bucket first: it is the truth, the local files only cache it
            uploaded = store.put_locked(info.key, data, retain_until=retain_until)
        except ObjectConflictError:
            return None
        write_file(self._dir / MANIFESTS_DIR / info.name, data)
        write_head(self._dir, info)
        self._advance((*self.manifests, info))
        return AppendResult(manifest=info, upload=uploaded, created=True)

    def sync(
        self, store: ObjectStore, *, retain_until: datetime, whole: bool = False
    ) -> tuple[PutResult, ...]:
        """Upload the manifests the bucket lacks, check the newest against its bucket copy,
        download what other writers appended since and finish an interrupted HEAD update.
        Returns the uploads that created an object. ``whole`` lists every bucket copy, not
        only those from the newest local manifest on, so that a gap among them is found
        (``catalog verify``)."""
        _require_aware(retain_until=retain_until)
        with self._writer_lock():
            return self._sync_locked(store, retain_until, whole=whole)

    def _sync_locked(
        self, store: ObjectStore, retain_until: datetime, *, whole: bool = False
    ) -> tuple[PutResult, ...]:
        prev = self.manifests[-1] if self.manifests else None
        first, in_bucket = versions_to_sync(store, prev.seq if prev else 0, whole=whole)
        uploads = []
        for info in self.manifests[first - 1 :]:
            if info.seq not in in_bucket or info is prev:
                result = upload(store, info, self._read(info), retain_until)
                uploads += [result] if result.created else []
        target = self._dir / MANIFESTS_DIR
        pulled = download_after(store, in_bucket, prev, target, first=first)
        if pulled or self.head_pending:  # uploaded (or matched the bucket) first, then confirmed
            newest = (*self.manifests, *pulled)
            write_head(self._dir, newest[-1])
            self._advance(newest)
        return tuple(uploads)

    def _retried(
        self, done: ManifestInfo, table: Any, store: ObjectStore, retain_until: datetime
    ) -> AppendResult:
        data = self._read(done)
        if not decode_table(data, name=LOCAL + done.name).equals(table):
            raise CatalogError(
                f"run {done.run_id} already wrote manifest {done.name} with different rows; "
                "each run writes one manifest: start a new run with a new run id"
            )
        self._sync_locked(store, retain_until)
        uploaded = upload(store, done, data, retain_until)
        return AppendResult(manifest=done, upload=uploaded, created=False)

    def _reject_catalogued(self, table: Any) -> None:
        # Only the catalogued rows with this batch's keys, streamed from projected columns: the
        # whole catalog's (key, version) pairs as Python tuples were ~1.5 GiB at ten million rows.
        keys = pc.field("object_key").isin(pc.unique(table["object_key"]))
        seen: set[tuple[str, str]] = set()
        for batch in self._batches(columns=["object_key", "version_id"], filter=keys):
            seen.update(_object_versions(batch))
        for i, pair in enumerate(_object_versions(table)):
            if pair in seen:
                raise CatalogError(
                    f"row {i} names an object version that is already catalogued (or repeated in "
                    "this batch): skip encounters already archived (Catalog.contains)"
                )
            seen.add(pair)

    def _advance(self, manifests: tuple[ManifestInfo, ...]) -> None:
        """Adopt our own write (HEAD names the newest manifest) without hashing everything again."""
        fingerprint = fingerprint_of(self._dir)
        self._state = LocalState(manifests=manifests, head_pending=False, fingerprint=fingerprint)

    def _read(self, info: ManifestInfo) -> bytes:
        data = read_file(self._dir / MANIFESTS_DIR / info.name)
        if sha256_hex(data) != info.sha256:
            raise ManifestCorruptError(
                f"{LOCAL}{info.name} changed after the catalog was opened; open the catalog "
                f"again to check it, or {REBUILD_HINT}"
            )
        return data

    @contextlib.contextmanager
    def _writer_lock(self) -> Iterator[None]:
        mkdir(self._dir / MANIFESTS_DIR)
        with open(self._dir / LOCK_FILE, "a+b") as lock:
            # Facilities' runs on one machine share the directory: an append takes seconds, so
            # wait for the other's (bounded: a hung holder must not hang every run).
            deadline = time.monotonic() + WRITER_WAIT_S
            while True:
                try:
                    fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError as e:
                    if time.monotonic() >= deadline:
                        raise CatalogError(
                            f"another process has been appending to the catalog in {self._dir} "
                            f"for over {WRITER_WAIT_S:.0f} s; check it is not hung, then retry"
                        ) from e
                    time.sleep(0.05)
            if fingerprint_of(self._dir) != self._state.fingerprint:
                self._state = load(self._dir)
            remove_temp_files(self._dir)
            yield


# --- pure helpers --------------------------------------------------------------------------------


def _batch_table(rows: Iterable[CatalogRow], *, run_id: str) -> Any:
    batch = list(rows)
    for i, row in enumerate(batch):
        if row.run_id != run_id:
            raise CatalogError(f"row {i} carries another run_id than the manifest's run {run_id}")
    return rows_to_table(batch)


def _object_versions(table: Any) -> list[tuple[str, str]]:
    return list(zip(table["object_key"].to_pylist(), table["version_id"].to_pylist(), strict=True))


def _require_aware(**moments: datetime) -> None:
    for name, moment in moments.items():
        if moment.tzinfo is None:
            raise CatalogError(f"{name} must be a timezone-aware datetime (use UTC)")
