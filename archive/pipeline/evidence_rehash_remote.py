"""Hash-tree renewal's per-document work on another machine (a Dask worker, through Prefect).

Re-hashing reads, opens and hashes every catalogued PDF: that is what a cluster shares out. The
flow's process ships a :class:`RehashContext` (the settings without the S3 secret keys) and
:class:`DocumentRef` values (evidence key, catalogued SHA-256, retain-until, where the sealed
record lies); the worker opens the store (its own S3 secret) and the key-encryption keys once per
run and process, computes each document's leaf with the very function this machine uses
(:func:`archive.pipeline.evidence_rehash.new_leaf`: the catalogued SHA-256 checked first) and
returns leaves or reason codes. The TSA call, the batch, every chain object and the done marker
stay with the flow's process: one writer.

A worker that cannot reach the store or open the keys raises a named
:class:`~archive.core.errors.WorkerUnavailableError` before reading a document; its documents are
counted under that reason and left for the next run, never given a leaf.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime

from archive.core.errors import ArchiveError, WorkerStoreError
from archive.core.settings import Settings
from archive.pipeline.batch import with_local_secrets, without_secrets
from archive.pipeline.evidence_rehash import Document, Leaf, Stored, new_leaf
from archive.pipeline.worker_keys import keys_unavailable
from archive.seal import KeyProvider, ObjectIdentity, open_keys, unseal
from archive.store import EVIDENCE_PREFIX, S3ObjectStore, SealedStore


class RehashContext:
    """What every batch of a hash-tree renewal shares; no secret in it. A plain class: Prefect
    walks dataclass task arguments, which the settings do not survive (as ``RunContext``)."""

    __slots__ = ("algorithm", "io_threads", "run_id", "settings")

    def __init__(
        self, *, run_id: str, settings: Settings, algorithm: str, io_threads: int = 8
    ) -> None:
        self.run_id = run_id
        self.settings = without_secrets(settings)
        self.algorithm = algorithm
        self.io_threads = io_threads

    def __repr__(self) -> str:
        return f"RehashContext(run_id={self.run_id!r})"


@dataclass(frozen=True, slots=True)
class DocumentRef:
    """A document as a worker receives it: everything of :class:`Document` but the reader."""

    key: str
    sha256: str
    retain_until: datetime
    stored: Stored

    @classmethod
    def of(cls, document: Document) -> DocumentRef:
        if document.stored is None:
            raise ArchiveError(f"{document.key} is a local file: it is re-hashed by the flow")
        return cls(document.key, document.sha256, document.retain_until, document.stored)


@dataclass(frozen=True, slots=True, kw_only=True)
class RehashedBatch:
    index: int
    worker: str  # which machine/process did it (an address, never PHI)
    leaves: tuple[Leaf, ...]  # in the order of the refs


def rehash_remote_batch(
    context: RehashContext, refs: list[DocumentRef], *, index: int, worker: str
) -> RehashedBatch:
    """The leaves of ``refs`` computed on this machine; raises :class:`WorkerUnavailableError`
    (before any document is read) when it cannot reach the store or open the keys."""
    opened = _opened(context)
    with ThreadPoolExecutor(context.io_threads, thread_name_prefix="rehash") as pool:
        leaves = pool.map(
            lambda r: new_leaf(opened.store, opened.document(r), context.algorithm), refs
        )
        return RehashedBatch(index=index, worker=worker, leaves=tuple(leaves))


@dataclass(frozen=True)
class _Opened:
    settings: Settings
    store: SealedStore
    keys: KeyProvider

    def document(self, ref: DocumentRef) -> Document:
        return Document(ref.key, ref.sha256, ref.retain_until, self._reader(ref.stored), ref.stored)

    def _reader(self, stored: Stored) -> Callable[[], bytes]:
        identity = ObjectIdentity(stored.bucket, stored.object_key, stored.encounter_id)
        raw = self.store.inner
        return lambda: unseal(
            raw.get(stored.object_key, version_id=stored.version_id),
            identity=identity,
            keys=self.keys,
            settings=self.settings.seal,
        )


# One opened store and keyring per process and run, reused by the run's next batches here.
_OPENED: dict[str, _Opened] = {}
_OPENING = threading.Lock()


def _opened(context: RehashContext) -> _Opened:
    with _OPENING:
        if context.run_id not in _OPENED:
            _OPENED.clear()  # an earlier run's (its settings may differ)
            _OPENED[context.run_id] = _open(context)
        return _OPENED[context.run_id]


def _open(context: RehashContext) -> _Opened:
    settings = with_local_secrets(context.settings)  # WorkerStoreError when it has none
    try:
        store = S3ObjectStore.from_settings(settings)
        # Listing the evidence is what this job reads first, and what a wrong secret fails.
        next(iter(store.list_versions(EVIDENCE_PREFIX)), None)
    except (ArchiveError, OSError) as e:
        raise WorkerStoreError(
            f"this worker cannot read the store ({type(e).__name__}: {e}): give it the same S3 "
            "endpoint and its credentials (EMR_ARCHIVE_S3__SECRET_ACCESS_KEY)"
        ) from e
    try:
        keys = open_keys(settings)
    except (ArchiveError, OSError) as e:
        raise keys_unavailable(settings, e) from e
    return _Opened(settings, SealedStore.for_settings(settings, store, keys=keys), keys)
