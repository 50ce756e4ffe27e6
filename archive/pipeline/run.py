"""One archive run: collect a window of finished encounters and archive them exactly once.

The library behind the ``nightly-archive`` flow (which only sequences these steps) and the
benchmark. The run is idempotent by construction, not by orchestration:

- encounters already in the catalog are skipped (counted as "already archived");
- an object stored by an interrupted run but never catalogued is adopted, not written again
  (create-once keys + :func:`archive.store.adopt`);
- the catalog gets one manifest per run, and only when the run archived something new.

If the process dies at any line, the next run over the same window ends with every valid
encounter archived once and the catalog matching the bucket. Bad input becomes a sealed quarantine
entry with a reason; a record that fails (TSA down, store error) is reported and left for the next
run. Nothing is dropped silently.
"""

from __future__ import annotations

import dataclasses
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor

from archive.audit import AuditLog
from archive.catalog import Catalog, manifest_lock
from archive.catalog.lookup import EncounterLookup
from archive.core.errors import ArchiveError
from archive.core.pool import split, worker_pool
from archive.core.settings import Settings
from archive.pipeline.admission import admit_source
from archive.pipeline.batch import BatchRef, BatchResult, RunContext, plan_refs, without_secrets
from archive.pipeline.classifier import Classifier
from archive.pipeline.collection import Collection
from archive.pipeline.evidence_stage import Step, Timestamper
from archive.pipeline.evidence_wiring import manifest_members, open_stage, record_members
from archive.pipeline.ledger import Ledger
from archive.pipeline.options import RunOptions
from archive.pipeline.process import init_worker, work
from archive.pipeline.runlock import RunLock
from archive.pipeline.summary import RunSummary, run_event, write_report
from archive.pipeline.worker import RecordOutcome
from archive.seal import ArchiveKeys, open_keys
from archive.sign import DocumentSigner, SignerConfig
from archive.sources import EncounterBundle
from archive.store import ObjectStore, SealedStore, open_sites

Progress = Callable[[int, int], None]  # (encounters done or skipped, encounters selected)


class ArchiveRun:
    """Start with :meth:`start`; then :meth:`batches` → :meth:`archive_batch` for each →
    :meth:`store_quarantine` → :meth:`finish`. Always :meth:`close` (or use ``with``)."""

    def __init__(
        self,
        *,
        settings: Settings,
        options: RunOptions,
        store: ObjectStore,
        keys: ArchiveKeys,
        catalog: Catalog,
        classifier: Classifier,
        started: float | None = None,
        lock: RunLock | None = None,
    ) -> None:
        self._lock = lock
        self.settings = settings
        self.options = options
        self._store = store
        self._keys = keys
        self._catalog = catalog
        self._classifier = classifier
        # What is archived already, without holding every id: a side index names the manifests
        # to read (archive.catalog.lookup), the values come from them.
        self._known = EncounterLookup.open(catalog)
        self._signers = frozenset(catalog.signer_fingerprints())
        self._pool: Executor | None = None
        self._started = started if started is not None else time.perf_counter()
        self.summary = RunSummary(
            options.run_id, options.window.start.isoformat(), options.window.end.isoformat()
        )
        self._ledger = Ledger(self.summary)
        self._stages = self._ledger.stages
        self.progress: Progress | None = None
        self._collection = Collection(
            settings=settings,
            options=options,
            known=self._known,
            classifier=classifier,
            summary=self.summary,
            stages=self._stages,
            on_progress=self._report_progress,
        )
        # The evidence stage's TSA and crash hooks (tests and the bench replace them).
        self.evidence_timestamper: Timestamper | None = None
        self.evidence_step: Step | None = None

    @classmethod
    def start(
        cls, settings: Settings, options: RunOptions, *, classifier: Classifier
    ) -> ArchiveRun:
        """Check everything a run needs before touching a record; fail early and clearly.
        ``classifier`` gives each record its retention class and lock date."""
        started = time.perf_counter()
        source = admit_source(
            settings, options.source, run_id=options.run_id, now=options.started_at
        )
        options = dataclasses.replace(options, source=source)
        if not options.source.is_dir():
            raise ArchiveError(
                f"source {options.source} is not a directory (a FHIR export or QĐ 130 XML files)"
            )
        keys = open_keys(settings)  # first: the run lease is sealed under them
        lock = RunLock.for_run(
            settings, options.run_id, options.started_at, options.facility, keys=keys
        )
        try:
            store = open_sites(settings)  # both sites when a replica is configured
            store.ensure_compliant()
            catalog = Catalog.open(settings.catalog_dir, create=True)
            meta = SealedStore.for_settings(settings, store, keys=keys)  # sealed manifests
            catalog.sync(meta, retain_until=manifest_lock(settings, options.started_at))
            # Refuses an expired, not-yet-valid, revoked or untrusted certificate up front.
            DocumentSigner.create(SignerConfig.from_settings(settings))
        except BaseException:
            lock.release()
            raise
        return cls(
            settings=settings,
            options=options,
            store=store,
            keys=keys,
            catalog=catalog,
            classifier=classifier,
            started=started,
            lock=lock,
        )

    def __enter__(self) -> ArchiveRun:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- steps ----------------------------------------------------------------------------------

    def batches(self) -> Iterator[list[EncounterBundle]]:
        """Stream the window's encounters in batches, skipping what the catalog has with the
        same data; changed data comes back as an amendment (:mod:`.collection`)."""
        return self._collection.batches()

    def archive_batch(self, batch: Sequence[EncounterBundle]) -> dict[str, int]:
        """Render, sign, seal and store one batch on every core; returns counts only."""
        chunks = split(list(batch), self.options.workers * 2)
        pool = self._executor()
        args = (self.options.run_id, self.options.started_at)
        results = pool.map(work, chunks, [args] * len(chunks))
        return self._count([outcome for outcomes in results for outcome in outcomes])

    # -- the same batches on a cluster: references out, outcomes back --------------------------

    def plan_refs(self) -> list[BatchRef]:
        """Every batch as a reference for a cluster worker (collects the source, as
        :meth:`batches` does: quarantine entries stay here, for :meth:`store_quarantine`)."""
        if self.options.manifest is not None:  # workers reread exports, not scan manifests
            raise ArchiveError("paper intake runs on this machine's pool, not on a cluster")
        return plan_refs(self.batches(), batch_size=self.options.batch_size)

    def context(self) -> RunContext:
        """What cluster workers need besides a batch: settings without secrets, the policy."""
        return RunContext(
            settings=without_secrets(self.settings),
            classifier=self._classifier,
            known_signers=self._signers,
            run_id=self.options.run_id,
            created_at=self.options.started_at,
            source=self.options.source,
            window=self.options.window,
        )

    def absorb(self, result: BatchResult) -> dict[str, int]:
        """A cluster worker's outcomes for one batch, recorded as the pool's are."""
        self._ledger.batch_done(result.worker)
        self._stages["reread"] += result.reread_s  # summed over workers, like render and sign
        return self._count(result.outcomes)

    def batch_failed(self, ref: BatchRef, reason: str) -> dict[str, int]:
        """A batch no worker could do: every member failed under ``reason`` (retried by the
        next run); whatever it stored is adopted then, never catalogued half now."""
        code = reason if " " in reason else f"{reason} (batch {ref.index})"
        failed = [
            RecordOutcome(m.encounter_id, "failed", reason_code=code, retryable=True)
            for m in ref.members
        ]
        return self._count(failed)

    def _count(self, outcomes: Sequence[RecordOutcome]) -> dict[str, int]:
        counts: Counter[str] = Counter()
        for outcome in outcomes:
            self._ledger.record(outcome)
            counts[outcome.status] += 1
        self._report_progress()
        return dict(counts)

    def _report_progress(self) -> None:
        s = self.summary
        if self.progress is not None:
            done = s.archived + s.adopted + s.failed_total + s.already_archived
            done += s.other_facility + self._collection.held_back
            self.progress(done, self._collection.selected)

    def store_quarantine(self) -> int:
        """Seal and store every quarantine entry (content-addressed: reruns add nothing)."""
        return self._collection.store_quarantine(self._store, self._keys)

    def finish(self) -> RunSummary:
        """Catalog what this run archived (one manifest), give it and every earlier run's
        pending documents their evidence records, and write the run report."""
        begin = time.perf_counter()
        evidence = open_stage(
            self.settings,
            self._store,
            self._keys,
            timestamper=self.evidence_timestamper,
            on_step=self.evidence_step,
        )
        # Pending before the catalog names the records: none is ever catalogued unpromised.
        evidence.hold(self.options.run_id, record_members(self._ledger.rows))
        if self._lock is not None:
            self._lock.check()  # a run that lost its lease stops before it catalogues
        if self._ledger.rows:
            result = self._catalog.append(
                self._ledger.rows,
                run_id=self.options.run_id,
                now=self.options.started_at,
                store=SealedStore.for_settings(self.settings, self._store, keys=self._keys),
                retain_until=manifest_lock(self.settings, self.options.started_at),
            )
            self.summary.manifest = result.manifest.name
        self._stages["catalog"] += time.perf_counter() - begin
        begin = time.perf_counter()
        done = evidence.complete_safely(
            self.options.run_id,
            now=self.options.started_at,
            extra=manifest_members(self._catalog, self.settings),
            held=len(self._ledger.rows),
        )
        s = self.summary
        s.evidence_written += done.written
        s.evidence_pending = done.pending
        s.evidence_timestamps += done.timestamps
        for code, n in done.failures().items():
            s.failed[code] = s.failed.get(code, 0) + n
        self._stages["evidence"] += time.perf_counter() - begin
        self.summary.duration_s = time.perf_counter() - self._started
        self.summary.stage_seconds = {k: round(v, 3) for k, v in self._stages.items()}
        write_report(
            self.settings.data_dir / "runs",
            self.summary,
            self._ledger.failures,
            self._ledger.notes,
        )
        log = AuditLog.for_settings(self.settings, self._store)
        log.append(run_event(self.summary, recorded=self.options.started_at))
        log.flush()
        return self.summary

    def close(self) -> None:
        self._known.close()
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- helpers --------------------------------------------------------------------------------

    def _executor(self) -> Executor:
        if self._pool is None:
            self._pool = worker_pool(
                self.options.workers,
                initializer=init_worker,
                # The catalog's signers: a record an interrupted run stored before a key
                # rotation is read back with the policy verification uses.
                initargs=(self.settings, self._classifier, self._signers),
            )
        return self._pool
