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
from datetime import datetime, timedelta
from pathlib import Path

from archive.audit import AuditLog
from archive.catalog import Catalog, manifest_lock
from archive.catalog.lookup import EncounterLookup
from archive.core.atomic import write_private
from archive.core.errors import ArchiveError
from archive.core.pool import split, worker_pool
from archive.core.settings import Settings
from archive.intake import collect_scans
from archive.pipeline.admission import admit_source
from archive.pipeline.amendments import ended_before_archiving, sort_known
from archive.pipeline.batch import (
    BatchRef,
    BatchResult,
    RunContext,
    collect_window,
    plan_refs,
    without_secrets,
)
from archive.pipeline.classifier import Classifier
from archive.pipeline.evidence_stage import Step, Timestamper
from archive.pipeline.evidence_wiring import (
    manifest_members,
    open_stage,
    record_members,
)
from archive.pipeline.ledger import Ledger
from archive.pipeline.options import RunOptions
from archive.pipeline.process import init_worker, work
from archive.pipeline.quarantine import store_entries
from archive.pipeline.runlock import RunLock
from archive.pipeline.summary import RunSummary, run_event, write_report
from archive.pipeline.worker import RecordOutcome
from archive.seal import ArchiveKeys, open_keys
from archive.sign import DocumentSigner, SignerConfig
from archive.sources import (
    CollectedItem,
    EncounterBundle,
    QuarantineEntry,
    QuarantineScope,
)
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
        self._quarantine: list[QuarantineEntry] = []
        self._pool: Executor | None = None
        self._started = started if started is not None else time.perf_counter()
        self.summary = RunSummary(
            options.run_id, options.window.start.isoformat(), options.window.end.isoformat()
        )
        self._ledger = Ledger(self.summary)
        self._stages = self._ledger.stages
        self.progress: Progress | None = None
        self._selected_count = 0
        self._held_back = 0  # encounters quarantined as a whole
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
        same data; changed data comes back as an amendment (a new version beside the old)."""
        fresh: list[EncounterBundle] = []
        known: list[EncounterBundle] = []  # catalogued encounters: compared by the batch
        items = self._collect()
        while True:
            begin = time.perf_counter()
            item = next(items, None)
            self._stages["collect"] += time.perf_counter() - begin
            if item is None:
                break
            if isinstance(item, QuarantineEntry):
                self._quarantine.append(item)
                self._held_back += item.scope == QuarantineScope.ENCOUNTER
                continue
            if self.options.facility not in (None, item.facility_code):
                self.summary.other_facility += 1
                continue
            self.summary.collected += 1
            if item.encounter_id in self._known:
                known.append(item)
            elif past := ended_before_archiving(item, self._classifier, self.options.started_at):
                self._quarantine.append(past)  # past its period: no lock date left to give it
                self._held_back += 1
            else:
                fresh.append(item)
            if len(known) >= self.options.batch_size:
                fresh += self._amendments(known)
                known = []
            while len(fresh) >= self.options.batch_size:
                yield fresh[: self.options.batch_size]
                fresh = fresh[self.options.batch_size :]
        fresh += self._amendments(known)
        for start in range(0, len(fresh), self.options.batch_size):
            yield fresh[start : start + self.options.batch_size]
        self._report_progress()

    def _collect(self) -> Iterator[CollectedItem]:
        if self.options.manifest is not None:  # paper intake: a scan directory and its manifest
            return collect_scans(
                self.options.source,
                self.options.manifest,
                tz=self.options.window.tz,
                ocr=self.options.ocr,
                limits=self.settings.intake,
                retention=self._retention,
                now=self.options.started_at,
                catalogued=self._known,  # archived ones are compared, not judged on retention
            )
        return collect_window(
            self.settings, self.options.source, self.options.window, on_selected=self._selected
        )

    def _retention(self, bundle: EncounterBundle) -> tuple[str, datetime]:
        decision = self._classifier.decide(bundle)
        return decision.class_id, decision.retain_until

    def _amendments(self, known: list[EncounterBundle]) -> list[EncounterBundle]:
        """Of encounters the catalog holds, those whose data differs from their newest archived
        version, each as the next revision; the rest are counted as already archived, or
        quarantined when their retention period has ended (:mod:`.amendments`)."""
        versions = self._known.data_versions({b.encounter_id for b in known})
        label = self.options.manifest.name if self.options.manifest else "amendment"
        found = sort_known(known, versions, self._classifier, self.options.started_at, label)
        self.summary.already_archived += found.unchanged
        self.summary.amended += found.amended
        self._quarantine += found.ended  # a change past its period: a disposition matter
        self._held_back += len(found.ended)
        return found.changed

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

    def _selected(self, count: int) -> None:
        self._selected_count = count
        self._report_progress()

    def _report_progress(self) -> None:
        s = self.summary
        if self.progress is not None:
            done = s.archived + s.adopted + s.failed_total + s.already_archived + self._held_back
            done += s.other_facility
            self.progress(done, self._selected_count)

    def store_quarantine(self) -> int:
        """Seal and store every quarantine entry (content-addressed: reruns add nothing)."""
        begin = time.perf_counter()
        index = self._quarantine_index_path()
        index.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        until = self.options.started_at + timedelta(
            days=self.settings.archive.quarantine_retain_days
        )
        stored = store_entries(
            self._quarantine,
            store=self._store,
            keys=self._keys,
            seal=self.settings.seal,
            retain_until=until,
        )
        s = self.summary
        for reason, n in stored.reasons.items():
            s.quarantined[reason] = s.quarantined.get(reason, 0) + n
        s.quarantine_new += stored.new
        if stored.errors:
            # Reported, never fatal: the run's archived records must still be catalogued.
            code = "quarantine.store_error"
            s.failed[code] = s.failed.get(code, 0) + stored.errors
        write_private(index, "".join(line + "\n" for line in stored.index_lines))
        self._stages["quarantine"] += time.perf_counter() - begin
        return len(stored.index_lines)

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

    def _quarantine_index_path(self) -> Path:
        return self.settings.data_dir / "quarantine" / f"{self.options.run_id}.jsonl"
