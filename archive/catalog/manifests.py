"""The catalog: one hash-chained Parquet manifest per archive run, with locked copies in the bucket.

On disk (``Settings.catalog_dir``)::

    <catalog_dir>/
        HEAD                          seq and sha256 of the newest manifest (JSON, one line)
        .lock                         flock held by the one process appending
        manifests/0000000001.parquet  one manifest per run (rows + chain metadata)
        manifests/0000000002.parquet
        manifests/.<name>.<pid>.tmp   an interrupted write: ignored by readers, removed by writers

In the bucket each manifest is stored create-once under a COMPLIANCE lock as
``catalog/sealed/v1/manifests/0000000001.parquet`` (keys carry sequence numbers only, never PHI).
Manifests name encounters, pseudonyms and classes, so callers pass a
:class:`archive.sealed_store.SealedStore`: the bucket holds only envelopes, and this module reads
and compares plaintext through it. The locked bucket copies are the authority; the local
directory is a fast cache of them that :meth:`Catalog.rebuild` recreates byte for byte.

The chain. Manifest ``n`` records in its Parquet metadata the sha256 of manifest ``n-1``'s file
bytes (64 zeros for the first), its own sequence number and its row count; ``HEAD`` records the
sha256 of the newest manifest. So every byte of every manifest is vouched for by a later record:

- one altered byte: the manifest no longer parses (ManifestCorruptError), or the next manifest's
  recorded hash (ChainBrokenError) or, for the newest, HEAD's (ManifestCorruptError) differs.
  Data pages also carry Parquet CRC32 checksums, verified whenever rows are read.
- removed, renamed, reordered or duplicated manifests: names must run 1..N without a gap and each
  file must record the sequence number its name says; HEAD must name the newest (ChainBrokenError).
- every append (and :meth:`Catalog.sync`) re-uploads the newest manifest, which the store accepts
  only if the bytes equal the locked copy, and refuses to go on if the bucket holds manifests the
  local catalog lacks.

Residual risk: deleting the newest manifest *and* rewriting HEAD (or rolling HEAD back one manifest
and altering the newest) leaves a locally self-consistent chain; only the bucket reveals it, at the
next append or sync. A newest manifest that never reached the bucket has no copy to compare with.

Crashes. Every file is written as a temp file in the same directory, fsynced, renamed with
``os.replace``, and the directory fsynced: the manifest first, then HEAD, then the upload. Killed
before the manifest rename: the previous catalog is intact. Between the manifest and HEAD renames:
the new manifest is *pending* (:attr:`Catalog.head_pending`) - accepted because it chains to HEAD's
manifest and all its pages pass their checksums - and the next append or sync finishes HEAD. Before
the upload: the next append or sync uploads what the bucket lacks (``put_locked`` is idempotent).

Queries read the manifests as one ``pyarrow.dataset``. Files are hashed when the catalog is opened
and read again by queries; a change in between is only caught by the page checksums. A ``Catalog``
is not thread-safe; appends from several processes are serialised by ``.lock``.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import os
import shutil
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final, TypeVar

import pyarrow.compute as pc
import pyarrow.dataset as ds

from archive.catalog.schema import (
    BUCKET_PREFIX,
    CATALOG_FORMAT_VERSION,
    GENESIS_SHA256,
    LEGACY_BUCKET_PREFIX,
    PARQUET_ERRORS,
    REBUILD_HINT,
    SCHEMA,
    CatalogRow,
    HeadRecord,
    ManifestHeader,
    ManifestInfo,
    check_head,
    check_sequence,
    decode_table,
    encode_manifest,
    link_manifest,
    manifest_key,
    manifest_name,
    manifest_retain_until,
    parse_manifest_name,
    rows_to_table,
    validate_run_id,
)
from archive.core.errors import (
    CatalogError,
    ChainBrokenError,
    ManifestCorruptError,
    ObjectConflictError,
    SealError,
)
from archive.store import ObjectStore, PutResult, sha256_hex

__all__ = [
    "BUCKET_PREFIX",
    "HEAD_FILE",
    "MANIFESTS_DIR",
    "SCHEMA",
    "AppendResult",
    "Catalog",
    "CatalogRow",
    "ManifestInfo",
    "manifest_key",
    "manifest_name",
    "manifest_retain_until",
]

MANIFESTS_DIR: Final = "manifests"
HEAD_FILE: Final = "HEAD"
_LOCK_FILE = ".lock"
_LOCAL = MANIFESTS_DIR + "/"
_T = TypeVar("_T")
_SCAN_FORMAT = ds.ParquetFileFormat(
    default_fragment_scan_options=ds.ParquetFragmentScanOptions(page_checksum_verification=True)
)


@dataclass(frozen=True, slots=True, kw_only=True)
class AppendResult:
    manifest: ManifestInfo
    upload: PutResult
    created: bool  # False: this run's identical manifest already existed (a retried append)


@dataclass(frozen=True, slots=True, kw_only=True)
class _State:
    manifests: tuple[ManifestInfo, ...]
    head_pending: bool
    fingerprint: tuple[object, ...]  # to notice another process's append since we loaded


class Catalog:
    """The verified catalog in one directory. Build with :meth:`open` or :meth:`rebuild`."""

    def __init__(self, *, directory: Path, state: _State) -> None:
        self._dir = directory
        self._state = state

    @classmethod
    def open(cls, directory: Path, *, create: bool = False) -> Catalog:
        """Load and verify every manifest under ``directory``; an empty catalog is valid."""
        if create:
            _mkdir(directory / MANIFESTS_DIR)
        elif not directory.is_dir():
            raise CatalogError(
                f"catalog directory {directory} does not exist: check EMR_ARCHIVE_CATALOG__"
                "CATALOG_DIR, open with create=True for a new catalog, or use Catalog.rebuild"
            )
        return cls(directory=directory, state=_load(directory))

    @classmethod
    def rebuild(cls, directory: Path, store: ObjectStore) -> Catalog:
        """Recreate the catalog in a new or empty ``directory`` from the bucket copies.

        It is built in a hidden sibling directory and renamed into place once complete, so a
        crash or a broken chain leaves nothing half-built under ``directory``."""
        if directory.exists() and any(_wrap_os(directory.iterdir)):
            raise CatalogError(
                f"{directory} is not empty: rebuild into a new or empty directory, compare, "
                "then swap the directories"
            )
        staging = directory.with_name(f".{directory.name}.rebuild-{os.getpid()}")
        _mkdir(staging / MANIFESTS_DIR)
        try:
            newest = _download_chain(store, staging / MANIFESTS_DIR)
            if newest is not None:
                _write_head(staging, newest)
            _wrap_os(functools.partial(os.replace, staging, directory))
            _fsync_dir(directory.parent)
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

    def contains(self, encounter_id: str) -> bool:
        """One scan per call: for many look-ups take :meth:`encounter_ids` once."""
        hits = self._scan(columns=["encounter_id"], filter=pc.field("encounter_id") == encounter_id)
        return bool(hits.num_rows)

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

    def _scan(self, **options: Any) -> Any:
        paths = [str(self._dir / MANIFESTS_DIR / m.name) for m in self.manifests]
        try:
            return ds.dataset(paths, schema=SCHEMA, format=_SCAN_FORMAT).to_table(**options)
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
            done = next((m for m in self.manifests if m.run_id == run_id), None)
            if done is not None:
                return self._retried(done, table, store, retain_until)
            self._reject_catalogued(table)
            self._sync_locked(store, retain_until)
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
            info = link_manifest(prev, header.seq, data, label=_LOCAL + manifest_name(header.seq))
            _write_atomic(self._dir / MANIFESTS_DIR / info.name, data)
            _write_head(self._dir, info)
            self._advance((*self.manifests, info))
            upload = _upload(store, info, data, retain_until)
            return AppendResult(manifest=info, upload=upload, created=True)

    def sync(self, store: ObjectStore, *, retain_until: datetime) -> tuple[PutResult, ...]:
        """Upload the manifests the bucket lacks, check the newest against its bucket copy and
        finish an interrupted HEAD update. Returns the uploads that created an object."""
        _require_aware(retain_until=retain_until)
        with self._writer_lock():
            return self._sync_locked(store, retain_until)

    def _sync_locked(self, store: ObjectStore, retain_until: datetime) -> tuple[PutResult, ...]:
        in_bucket = _bucket_versions(store)
        ahead = sorted(seq for seq in in_bucket if seq > len(self.manifests))
        if ahead:
            raise CatalogError(
                f"the bucket holds {manifest_key(ahead[0])} (and {len(ahead) - 1} more) that the "
                f"local catalog in {self._dir} lacks: it is stale or was cut short; {REBUILD_HINT}"
            )
        uploads = []
        for info in self.manifests:
            if info.seq not in in_bucket or info is self.manifests[-1]:
                result = _upload(store, info, self._read(info), retain_until)
                uploads += [result] if result.created else []
        if self.head_pending:  # uploaded (or matched the bucket) first, then confirmed
            _write_head(self._dir, self.manifests[-1])
            self._advance(self.manifests)
        return tuple(uploads)

    def _retried(
        self, done: ManifestInfo, table: Any, store: ObjectStore, retain_until: datetime
    ) -> AppendResult:
        data = self._read(done)
        if not decode_table(data, name=_LOCAL + done.name).equals(table):
            raise CatalogError(
                f"run {done.run_id} already wrote manifest {done.name} with different rows; "
                "each run writes one manifest: start a new run with a new run id"
            )
        self._sync_locked(store, retain_until)
        upload = _upload(store, done, data, retain_until)
        return AppendResult(manifest=done, upload=upload, created=False)

    def _reject_catalogued(self, table: Any) -> None:
        seen = set(_object_versions(self._scan(columns=["object_key", "version_id"])))
        for i, pair in enumerate(_object_versions(table)):
            if pair in seen:
                raise CatalogError(
                    f"row {i} names an object version that is already catalogued (or repeated in "
                    "this batch): skip encounters already archived (Catalog.contains)"
                )
            seen.add(pair)

    def _advance(self, manifests: tuple[ManifestInfo, ...]) -> None:
        """Adopt our own write (HEAD names the newest manifest) without hashing everything again."""
        fingerprint = _fingerprint(self._dir)
        self._state = _State(manifests=manifests, head_pending=False, fingerprint=fingerprint)

    def _read(self, info: ManifestInfo) -> bytes:
        data = _read_file(self._dir / MANIFESTS_DIR / info.name)
        if sha256_hex(data) != info.sha256:
            raise ManifestCorruptError(
                f"{_LOCAL}{info.name} changed after the catalog was opened; open the catalog "
                f"again to check it, or {REBUILD_HINT}"
            )
        return data

    @contextlib.contextmanager
    def _writer_lock(self) -> Iterator[None]:
        _mkdir(self._dir / MANIFESTS_DIR)
        with open(self._dir / _LOCK_FILE, "a+b") as lock:
            try:
                fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError as e:
                raise CatalogError(
                    f"another process is appending to the catalog in {self._dir}; "
                    "wait for it to finish and retry"
                ) from e
            if _fingerprint(self._dir) != self._state.fingerprint:
                self._state = _load(self._dir)
            _remove_temp_files(self._dir)
            yield


# --- the directory -------------------------------------------------------------------------------


def _load(directory: Path) -> _State:
    """Read and verify every manifest and HEAD (the whole chain)."""
    # Fingerprint first (a change during the load makes the next writer reload), and HEAD before
    # the listing: a writer renames the manifest before HEAD, so a concurrent append looks pending.
    fingerprint = _fingerprint(directory)
    head_path = directory / HEAD_FILE
    head_bytes = _read_file(head_path) if head_path.exists() else None
    head = HeadRecord.decode(head_bytes, label=str(head_path)) if head_bytes is not None else None
    manifests: list[ManifestInfo] = []
    data = b""
    for seq in check_sequence(_list_seqs(directory / MANIFESTS_DIR), where=_LOCAL):
        data = _read_file(directory / MANIFESTS_DIR / manifest_name(seq))
        prev = manifests[-1] if manifests else None
        manifests.append(link_manifest(prev, seq, data, label=_LOCAL + manifest_name(seq)))
    pending = check_head(head, manifests, where=_LOCAL)
    if pending:  # nothing vouches for its bytes yet: at least every page must pass its checksum
        decode_table(data, name=_LOCAL + manifests[-1].name)
    return _State(manifests=tuple(manifests), head_pending=pending, fingerprint=fingerprint)


def _list_seqs(manifests_dir: Path) -> list[int]:
    if not manifests_dir.is_dir():
        return []
    seqs = []
    for entry in _wrap_os(lambda: sorted(os.listdir(manifests_dir))):
        if entry.startswith("."):
            continue  # temp files of interrupted writes
        seq = parse_manifest_name(entry)
        if seq is None:
            raise CatalogError(
                f"unexpected file {manifests_dir / entry} in the catalog: manifests are named "
                "NNNNNNNNNN.parquet; move it out of the directory"
            )
        seqs.append(seq)
    return seqs


def _fingerprint(directory: Path) -> tuple[object, ...]:
    seqs = tuple(_list_seqs(directory / MANIFESTS_DIR))
    head = directory / HEAD_FILE
    newest = None
    if seqs:
        s = _wrap_os(lambda: os.stat(directory / MANIFESTS_DIR / manifest_name(seqs[-1])))
        newest = (s.st_ino, s.st_size, s.st_mtime_ns)
    return seqs, _read_file(head) if head.exists() else None, newest


def _write_head(directory: Path, newest: ManifestInfo) -> None:
    _write_atomic(directory / HEAD_FILE, HeadRecord(seq=newest.seq, sha256=newest.sha256).encode())


def _write_atomic(path: Path, data: bytes) -> None:
    """Temp file in the same directory, fsync, rename over ``path``, fsync the directory."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o640)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _fsync_dir(path.parent)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise CatalogError(
            f"could not write {path} ({e.strerror or type(e).__name__}): check free space and "
            "permissions, then retry; the previous catalog is intact"
        ) from e


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_temp_files(directory: Path) -> None:
    for folder in (directory, directory / MANIFESTS_DIR):
        for tmp in folder.glob(".*.tmp"):
            _wrap_os(functools.partial(tmp.unlink, missing_ok=True))


def _mkdir(path: Path) -> None:
    _wrap_os(functools.partial(path.mkdir, parents=True, exist_ok=True))


def _read_file(path: Path) -> bytes:
    return _wrap_os(path.read_bytes)


def _wrap_os(action: Callable[[], _T]) -> _T:
    try:
        return action()
    except OSError as e:
        raise CatalogError(
            f"catalog file access failed ({e.strerror or type(e).__name__}: {e.filename}); "
            "check that the catalog directory exists and is readable and writable"
        ) from e


# --- the bucket ----------------------------------------------------------------------------------


def _bucket_versions(store: ObjectStore) -> dict[int, list[str]]:
    """Version ids of each manifest copy in the bucket, by sequence number (one listing)."""
    found: dict[int, list[str]] = {}
    for version in store.list_versions(BUCKET_PREFIX):
        seq = parse_manifest_name(version.key.removeprefix(BUCKET_PREFIX))
        if seq is not None and not version.is_delete_marker:
            found.setdefault(seq, []).append(version.version_id)
    return found  # other keys under the prefix cannot be removed from a locked bucket: ignored


def _download_chain(store: ObjectStore, target: Path) -> ManifestInfo | None:
    """Download and verify every manifest copy into ``target``; return the newest."""
    versions = _bucket_versions(store)
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
        _write_atomic(target / newest.name, data)
    if newest is not None:  # it has no successor: at least every page must pass its checksum
        decode_table(data, name=newest.key)
    return newest


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


def _upload(store: ObjectStore, info: ManifestInfo, data: bytes, until: datetime) -> PutResult:
    try:
        return store.put_locked(info.key, data, retain_until=until)
    except ObjectConflictError as e:
        raise ChainBrokenError(
            f"{_LOCAL}{info.name} differs from its locked bucket copy {info.key}, which is the "
            f"authority: the local catalog diverged; {REBUILD_HINT}, then investigate"
        ) from e


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
