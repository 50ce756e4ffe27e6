"""Batches by reference, for a run fanned out over machines (a Dask cluster through Prefect).

In the flow's process, :func:`plan_refs` turns the run's batches of encounters into
:class:`BatchRef` values: which encounters (id, data hash, revision) and the slice of discharge
times they lie in, never their data. On a cluster worker, :func:`process_batch` reads those
encounters again from the source (the worker must see the same directory), takes them through
render, sign, seal and store, and returns a :class:`BatchResult` of outcomes (catalog rows,
reasons): the flow's process stays the one writer of the catalog and the evidence stage.

Nothing secret travels: the settings are shipped without the S3 secret key (each worker reads
its own from its environment), and each worker opens the keyring, the signing key and the store
itself from the settings' paths. A worker that cannot read the source, reach the store or open
the keys raises a :class:`~archive.core.errors.WorkerUnavailableError` naming which, before
touching a record.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TypeVar

from archive.core.errors import (
    ArchiveError,
    WorkerKeysError,
    WorkerSourceError,
    WorkerStoreError,
)
from archive.core.settings import Settings, load_settings
from archive.pipeline.classifier import Classifier
from archive.pipeline.worker import RecordOutcome, RecordWorker
from archive.pipeline.worker_keys import keys_unavailable
from archive.seal import open_keys
from archive.sources import (
    CollectedItem,
    EncounterBundle,
    IndexedExport,
    Window,
    collect_source,
    source_kind,
)
from archive.store import open_sites

S = TypeVar("S", bound=Settings)
_TICK = timedelta(microseconds=1)  # a window is half-open: end just after the last discharge


@dataclass(frozen=True, slots=True)
class Member:
    """One encounter of a batch, as the flow saw it: a worker archives exactly this data."""

    encounter_id: str
    data_sha256: str
    revision: int
    extended_retention: tuple[str, datetime] | None = None  # the flow's, from the register


class RunContext:
    """What every batch of a run shares (shipped with each task; no secret in it).

    A plain class, not a dataclass: Prefect walks dataclass and pydantic task arguments looking
    for futures (and prefect-dask mangles the annotations that would stop it), which the
    settings do not survive."""

    __slots__ = (
        "classifier",
        "created_at",
        "known_signers",
        "run_id",
        "settings",
        "source",
        "window",
    )

    def __init__(
        self,
        *,
        settings: Settings,
        classifier: Classifier,
        known_signers: frozenset[str],
        run_id: str,
        created_at: datetime,
        source: Path,
        window: Window | None = None,
    ) -> None:
        self.settings = settings
        self.classifier = classifier
        self.known_signers = known_signers
        self.run_id = run_id
        self.created_at = created_at
        self.source = source
        self.window = window  # the run's: a FHIR export is indexed once for it on each worker

    def __repr__(self) -> str:
        return f"RunContext(run_id={self.run_id!r})"


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchRef:
    index: int
    window: Window  # the discharge times of the members: the worker reads only this slice
    members: tuple[Member, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class BatchResult:
    index: int
    worker: str  # which machine/process did it (an address, never PHI)
    outcomes: tuple[RecordOutcome, ...]
    reread_s: float = 0.0  # rereading the batch's slice of the source on the worker


def collect_window(
    settings: Settings,
    source: Path,
    window: Window,
    *,
    on_selected: Callable[[int], None] | None = None,
) -> Iterator[CollectedItem]:
    """The source's items discharged in ``window``, read as the settings say."""
    return collect_source(
        source,
        window=window,
        setting=settings.archive.source_format,
        on_selected=on_selected,
        facility_certs=settings.archive.facility_certs,
        signed_file_max_bytes=settings.archive.signed_file_max_mib << 20,
        workers=settings.archive.qd130_workers,
    )


def plan_refs(batches: Iterable[list[EncounterBundle]], *, batch_size: int) -> list[BatchRef]:
    """The run's encounters as batch references, sorted by discharge time so that each batch's
    slice of the window is narrow (a worker rereads only that slice of the source)."""
    found = sorted(
        (
            (
                b.discharged_at,
                Member(b.encounter_id, b.sha256, b.revision, b.extended_retention),
            )
            for bs in batches
            for b in bs
        ),
        key=lambda pair: (pair[0], pair[1].encounter_id),
    )
    refs: list[BatchRef] = []
    for start in range(0, len(found), batch_size):
        part = found[start : start + batch_size]
        window = Window(start=part[0][0], end=part[-1][0] + _TICK)
        refs.append(BatchRef(index=len(refs), window=window, members=tuple(m for _, m in part)))
    return refs


def without_secrets(settings: S) -> S:
    """The settings to ship to workers: the S3 secret keys left out (workers have their own)."""
    return settings.model_copy(
        update={
            "s3": settings.s3.model_copy(update={"secret_access_key": None}),
            "replica": settings.replica.model_copy(update={"secret_access_key": None}),
        }
    )


def with_local_secrets(settings: S) -> S:
    """Shipped settings completed with this worker's own S3 secret keys (its environment or
    settings file), where an access key id names one."""
    if not (settings.s3.access_key_id or settings.replica.access_key_id):
        return settings
    local = load_settings()
    update = {}
    for name, section, mine in (
        ("s3", settings.s3, local.s3),
        ("replica", settings.replica, local.replica),
    ):
        if section.access_key_id and mine.secret_access_key is None:
            raise WorkerStoreError(
                f"this worker has no secret for the {name} access key {section.access_key_id}: "
                f"set EMR_ARCHIVE_{name.upper()}__SECRET_ACCESS_KEY in its environment"
            )
        update[name] = section.model_copy(update={"secret_access_key": mine.secret_access_key})
    return settings.model_copy(update=update)


def process_batch(context: RunContext, ref: BatchRef, *, worker: str) -> BatchResult:
    """Archive one batch on this machine; raises :class:`WorkerUnavailableError` (before any
    record is stored) when this machine cannot read the source, reach the store or open the
    keys."""
    begin = time.perf_counter()
    bundles, missing = _reread(context, ref)  # the source first: the cheapest check
    reread_s = time.perf_counter() - begin
    record_worker, lock = _worker_for(context)
    with lock:  # one batch at a time per process: the signer and its session are not shared
        outcomes = record_worker.process(
            bundles, run_id=context.run_id, created_at=context.created_at
        )
    gone = [
        RecordOutcome(m.encounter_id, "failed", reason_code="source.changed", retryable=True)
        for m in missing
    ]
    return BatchResult(
        index=ref.index, worker=worker, outcomes=tuple(outcomes + gone), reread_s=reread_s
    )


def _reread(context: RunContext, ref: BatchRef) -> tuple[list[EncounterBundle], list[Member]]:
    """The members' bundles from the source, with the revision (and extended retention) the
    flow gave them; members the source no longer holds with the same data (changed or removed
    since) are returned apart."""
    source = context.source
    try:
        readable = source.is_dir() and os.access(source, os.R_OK | os.X_OK)
    except OSError:  # a parent directory this worker may not enter
        readable = False
    if not readable:
        raise WorkerSourceError(
            f"this worker cannot read the source directory {source}: mount it at the same path "
            "on every worker (read-only is enough)"
        )
    wanted = {m.encounter_id: m for m in ref.members}
    bundles: list[EncounterBundle] = []
    try:
        for item in _items(context, ref):
            member = wanted.get(getattr(item, "encounter_id", ""))
            if isinstance(item, EncounterBundle) and member and item.sha256 == member.data_sha256:
                kept = member.extended_retention
                bundles.append(
                    dataclasses.replace(item, revision=member.revision, extended_retention=kept)
                )
    except (ArchiveError, OSError) as e:
        raise WorkerSourceError(
            f"this worker cannot read the source {source} ({type(e).__name__}): check that it "
            "is the same export the flow read"
        ) from e
    found = {b.encounter_id for b in bundles}
    return bundles, [m for m in ref.members if m.encounter_id not in found]


def _items(context: RunContext, ref: BatchRef) -> Iterator[CollectedItem]:
    """The batch's slice of the source: from this process's index of the run's FHIR export
    (one scan per worker and run, not one per batch), else read again for its window."""
    settings = context.settings
    kind = source_kind(context.source, settings.archive.source_format)
    if kind != "fhir" or context.window is None:
        return collect_window(settings, context.source, ref.window)
    with _OPENING:
        key = (context.run_id, str(context.source))
        if key not in _EXPORTS:
            _EXPORTS.clear()  # an earlier run's index (its window and files differ)
            _EXPORTS[key] = IndexedExport(context.source, context.window)
        export = _EXPORTS[key]
    return export.items(m.encounter_id for m in ref.members)


_EXPORTS: dict[tuple[str, str], IndexedExport] = {}

# One record worker per process and run: the fonts, signing key, keyring and S3 client are
# loaded by the first batch of a run and reused by the next ones on this machine.
_WORKERS: dict[str, tuple[RecordWorker, threading.Lock]] = {}
_OPENING = threading.Lock()


def _worker_for(context: RunContext) -> tuple[RecordWorker, threading.Lock]:
    with _OPENING:
        if context.run_id not in _WORKERS:
            _WORKERS.clear()  # an earlier run's state (its settings may differ)
            _WORKERS[context.run_id] = (_open_worker(context), threading.Lock())
        return _WORKERS[context.run_id]


def _open_worker(context: RunContext) -> RecordWorker:
    settings = with_local_secrets(context.settings)  # WorkerStoreError when it has none
    try:
        open_sites(settings).ensure_compliant()
    except (ArchiveError, OSError) as e:
        raise WorkerStoreError(
            f"this worker cannot use the store ({type(e).__name__}: {e}): give it the same S3 "
            "endpoint and its credentials (EMR_ARCHIVE_S3__SECRET_ACCESS_KEY)"
        ) from e
    try:
        open_keys(settings)
    except (ArchiveError, OSError) as e:
        raise keys_unavailable(settings, e) from e
    try:
        return RecordWorker.create(
            settings, context.classifier, known_signers=context.known_signers
        )
    except (ArchiveError, OSError) as e:
        raise WorkerKeysError(
            f"this worker cannot open the signing key ({type(e).__name__}: {e}): give it the "
            "same signer settings and token or key file access"
        ) from e
