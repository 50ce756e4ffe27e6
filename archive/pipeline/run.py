"""One archive run: collect a window of finished encounters and archive them exactly once.

The library behind the ``nightly-archive`` flow (which only sequences these steps) and the
benchmark. The run is idempotent by construction, not by orchestration:

- encounters already in the catalog are skipped (counted as "already archived");
- an object stored by an interrupted run but never catalogued is adopted, not written again
  (create-once keys + :func:`archive.deposit.adopt`);
- the catalog gets one manifest per run, and only when the run archived something new.

If the process dies at any line, the next run over the same window ends with every valid
encounter archived once and the catalog matching the bucket. Bad input becomes a sealed quarantine
entry with a reason; a record that fails (TSA down, store error) is reported and left for the next
run. Nothing is dropped silently.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import secrets
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Executor
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from archive.audit import AuditEvent, AuditLog
from archive.catalog import Catalog, CatalogRow, manifest_lock
from archive.core.atomic import write_private
from archive.core.errors import ArchiveError
from archive.core.pool import split, worker_pool
from archive.core.settings import Settings
from archive.pipeline.retention import Classifier
from archive.pipeline.runlock import RunLock
from archive.pipeline.worker import RecordOutcome, RecordWorker
from archive.seal import LocalKeyring, ObjectIdentity
from archive.sign import DocumentSigner, SignerConfig
from archive.sources import EncounterBundle, QuarantineEntry, QuarantineScope, Window, collect
from archive.store import S3ObjectStore, SealedStore, deposit, quarantine_key

Progress = Callable[[int, int], None]  # (encounters done or skipped, encounters selected)


@dataclass(frozen=True, slots=True)
class RunOptions:
    window: Window
    source: Path
    batch_size: int
    workers: int
    run_id: str
    started_at: datetime  # also the documents' creation date, so a rerun renders the same bytes

    @classmethod
    def create(
        cls,
        settings: Settings,
        *,
        window: Window,
        source: Path | None,
        now: datetime,
        batch_size: int | None = None,
        run_id: str | None = None,
    ) -> RunOptions:
        chosen = source or settings.archive.source_dir
        if chosen is None:
            raise ArchiveError(
                "no source: pass --source DIR or set EMR_ARCHIVE_ARCHIVE__SOURCE_DIR"
            )
        workers = settings.archive.workers or os.cpu_count() or 1
        return cls(
            window=window,
            source=chosen,
            batch_size=batch_size or settings.archive.batch_size,
            workers=workers,
            run_id=run_id or f"{now:%Y%m%dT%H%M%SZ}-{secrets.token_hex(3)}",
            started_at=now,
        )


@dataclass
class RunSummary:
    """What happened, in counts and bytes; no PHI (no ids, names or codes)."""

    run_id: str
    window_start: str
    window_end: str
    collected: int = 0
    archived: int = 0
    adopted: int = 0
    already_archived: int = 0
    quarantined: dict[str, int] = field(default_factory=dict)  # every entry found, by reason
    quarantine_new: int = 0  # of those, entries no earlier run had stored
    amended: int = 0  # archived before with other data: sent again as a new version
    failed: dict[str, int] = field(default_factory=dict)
    pdf_bytes: int = 0
    sealed_bytes: int = 0
    duration_s: float = 0.0
    stage_seconds: dict[str, float] = field(default_factory=dict)
    manifest: str | None = None

    @property
    def failed_total(self) -> int:
        return sum(self.failed.values())

    @property
    def quarantined_total(self) -> int:
        return sum(self.quarantined.values())

    @property
    def throughput(self) -> float:
        done = self.archived + self.adopted
        return done / self.duration_s if self.duration_s else 0.0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            failed_total=self.failed_total,
            quarantined_total=self.quarantined_total,
            throughput_per_s=round(self.throughput, 2),
        )
        return data

    def to_markdown(self) -> str:
        lines = [
            f"# Nightly archive run `{self.run_id}`",
            "",
            f"Window: {self.window_start} → {self.window_end}",
            "",
            "| outcome | records |",
            "|---|---:|",
            f"| archived (new) | {self.archived} |",
            f"| adopted (stored by an interrupted run) | {self.adopted} |",
            f"| already archived (skipped) | {self.already_archived} |",
            f"| amended since archived (new version) | {self.amended} |",
            f"| quarantined (still unresolved) | {self.quarantined_total} |",
            f"| of which new in this run | {self.quarantine_new} |",
            f"| failed (left for the next run) | {self.failed_total} |",
            "",
            f"Bytes: {self.pdf_bytes:,} signed PDF, {self.sealed_bytes:,} sealed. "
            f"Duration {self.duration_s:.1f} s, {self.throughput:.1f} records/s.",
        ]
        for title, counts in (
            ("Quarantine reasons", self.quarantined),
            ("Failure reasons", self.failed),
        ):
            if counts:
                lines += ["", f"## {title}", "", "| reason | count |", "|---|---:|"]
                lines += [f"| {reason} | {n} |" for reason, n in sorted(counts.items())]
        if self.stage_seconds:
            lines += [
                "",
                "## Time by stage (seconds, summed over workers)",
                "",
                "| stage | s |",
                "|---|---:|",
            ]
            lines += [f"| {k} | {v:.2f} |" for k, v in sorted(self.stage_seconds.items())]
        return "\n".join(lines) + "\n"


class ArchiveRun:
    """Start with :meth:`start`; then :meth:`batches` → :meth:`archive_batch` for each →
    :meth:`store_quarantine` → :meth:`finish`. Always :meth:`close` (or use ``with``)."""

    def __init__(
        self,
        *,
        settings: Settings,
        options: RunOptions,
        store: S3ObjectStore,
        keys: LocalKeyring,
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
        self._known = catalog.encounter_ids()
        self._rows: list[CatalogRow] = []
        self._quarantine: list[QuarantineEntry] = []
        self._pool: Executor | None = None
        self._started = started if started is not None else time.perf_counter()
        self.summary = RunSummary(
            options.run_id, options.window.start.isoformat(), options.window.end.isoformat()
        )
        self._stages: dict[str, float] = defaultdict(float)
        self.progress: Progress | None = None
        self._selected_count = 0
        self._held_back = 0  # encounters quarantined as a whole
        self._failures: list[dict[str, object]] = []

    @classmethod
    def start(
        cls, settings: Settings, options: RunOptions, *, classifier: Classifier
    ) -> ArchiveRun:
        """Check everything a run needs before touching a record; fail early and clearly.
        ``classifier`` gives each record its retention class and lock date."""
        started = time.perf_counter()
        if not options.source.is_dir():
            raise ArchiveError(f"source {options.source} is not a directory of NDJSON files")
        lock = RunLock.acquire(settings.catalog_dir, run_id=options.run_id, now=options.started_at)
        try:
            store = S3ObjectStore.from_settings(settings)
            store.ensure_compliant()
            keys = LocalKeyring.open(settings.keyring_dir)
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
        """Stream the window's encounters in batches, skipping what the catalog already has
        with the same data; an encounter whose data changed since it was archived comes back
        as an amendment (a new version beside the old)."""
        fresh: list[EncounterBundle] = []
        known: list[EncounterBundle] = []  # catalogued encounters: compared by the batch
        items = collect(self.options.source, window=self.options.window, on_selected=self._selected)
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
            self.summary.collected += 1
            (known if item.encounter_id in self._known else fresh).append(item)
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

    def _amendments(self, known: list[EncounterBundle]) -> list[EncounterBundle]:
        """Of encounters the catalog holds, those whose data differs from their newest archived
        version, each as the next revision; the rest are counted as already archived."""
        versions = self._catalog.data_versions({b.encounter_id for b in known})
        changed = []
        for bundle in known:
            archived = versions.get(bundle.encounter_id, [])
            if archived and archived[-1] == bundle.sha256:
                self.summary.already_archived += 1
                continue
            changed.append(dataclasses.replace(bundle, revision=len(archived) + 1))
            self.summary.amended += bool(archived)
        return changed

    def archive_batch(self, batch: Sequence[EncounterBundle]) -> dict[str, int]:
        """Render, sign, seal and store one batch on every core; returns counts only."""
        chunks = split(list(batch), self.options.workers * 2)
        pool = self._executor()
        args = (self.options.run_id, self.options.started_at)
        results = pool.map(_work, chunks, [args] * len(chunks))
        counts: Counter[str] = Counter()
        for outcomes in results:
            for outcome in outcomes:
                self._record(outcome)
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
            self.progress(done, self._selected_count)

    def store_quarantine(self) -> int:
        """Seal and store every quarantine entry (content-addressed: reruns add nothing)."""
        begin = time.perf_counter()
        index = self._quarantine_index_path()
        index.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lines = []
        until = self.options.started_at + _days(self.settings.archive.quarantine_retain_days)
        for entry in self._quarantine:
            token = self._keys.record_token(
                "\0".join(
                    (
                        "quarantine",
                        entry.reason.value,
                        entry.source_file,
                        str(entry.line_number),
                        entry.raw_sha256,
                    )
                )
            )
            identity = ObjectIdentity(self._store.bucket, quarantine_key(token=token), token)
            reason = entry.reason.value
            self.summary.quarantined[reason] = self.summary.quarantined.get(reason, 0) + 1
            stored: dict[str, str | None] = {"object_key": identity.key, "version_id": None}
            try:
                receipt = deposit(
                    _quarantine_document(entry),
                    identity=identity,
                    retain_until=until,
                    store=self._store,
                    keys=self._keys,
                    settings=self.settings.seal,
                )
                stored["version_id"] = receipt.version_id
                self.summary.quarantine_new += receipt.created
            except ArchiveError as e:
                # Reported, never fatal: the run's archived records must still be catalogued.
                code = "quarantine.store_error"
                self.summary.failed[code] = self.summary.failed.get(code, 0) + 1
                stored["error"] = type(e).__name__
            lines.append(json.dumps({**entry.metadata(), **stored}, sort_keys=True))
        write_private(index, "".join(line + "\n" for line in lines))
        self._stages["quarantine"] += time.perf_counter() - begin
        return len(lines)

    def finish(self) -> RunSummary:
        """Catalog what this run archived (one manifest) and write the run report."""
        begin = time.perf_counter()
        if self._rows:
            result = self._catalog.append(
                self._rows,
                run_id=self.options.run_id,
                now=self.options.started_at,
                store=SealedStore.for_settings(self.settings, self._store, keys=self._keys),
                retain_until=manifest_lock(self.settings, self.options.started_at),
            )
            self.summary.manifest = result.manifest.name
        self._stages["catalog"] += time.perf_counter() - begin
        self.summary.duration_s = time.perf_counter() - self._started
        self.summary.stage_seconds = {k: round(v, 3) for k, v in self._stages.items()}
        report = self.settings.data_dir / "runs" / f"{self.options.run_id}.json"
        report.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        write_private(report, json.dumps(self.summary.to_dict(), indent=2, sort_keys=True))
        if self._failures:
            # Which records to look at and rerun: local and private like the catalog (the
            # summary, Prefect and the logs only ever see counts).
            lines = "".join(json.dumps(f, sort_keys=True) + "\n" for f in self._failures)
            write_private(report.with_name(f"{self.options.run_id}.failures.jsonl"), lines)
        self._audit()
        return self.summary

    def _audit(self) -> None:
        """One audit event per run: counts only (the catalog manifest names the records)."""
        s = self.summary
        entities = (("run", s.run_id),) + ((("manifest", s.manifest),) if s.manifest else ())
        log = AuditLog.for_settings(self.settings, self._store)
        counts = {
            "archived": s.archived,
            "adopted": s.adopted,
            "failed": s.failed_total,
            "quarantined": s.quarantined_total,
        }
        log.append(
            AuditEvent(
                actor="nightly-archive",
                role="system",
                action="archive.pipeline.run",
                recorded=self.options.started_at,
                outcome="failure" if s.failed_total else "success",
                entities=entities,
                detail={**counts, "window_start": s.window_start},
            )
        )
        log.flush()

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- helpers --------------------------------------------------------------------------------

    def _record(self, outcome: RecordOutcome) -> None:
        s = self.summary
        for stage, seconds in outcome.timings.items():
            self._stages[stage] += seconds
        if outcome.status == "failed":
            code = (outcome.reason_code or "unknown").split(" ", 1)[0]
            s.failed[code] = s.failed.get(code, 0) + 1
            self._failures.append(
                {
                    "encounter_id": outcome.encounter_id,
                    "reason": outcome.reason_code or "unknown",
                    "retryable": outcome.retryable,
                }
            )
            return
        if outcome.row is not None:
            self._rows.append(outcome.row)
        if outcome.status == "archived":
            s.archived += 1
        else:
            s.adopted += 1
        s.pdf_bytes += outcome.pdf_bytes
        s.sealed_bytes += outcome.sealed_bytes

    def _executor(self) -> Executor:
        if self._pool is None:
            self._pool = worker_pool(
                self.options.workers,
                initializer=_init_worker,
                initargs=(self.settings, self._classifier),
            )
        return self._pool

    def _quarantine_index_path(self) -> Path:
        return self.settings.data_dir / "quarantine" / f"{self.options.run_id}.jsonl"


def window_for(
    tz: str, *, since: date | None, until: date | None, now: datetime, lookback_days: int = 1
) -> Window:
    """Local days ``since`` to ``until``, both inclusive; when neither is given, the
    ``lookback_days`` days up to yesterday (what the nightly run collects: what earlier runs
    archived is skipped, so a missed night or a record that failed is caught up)."""
    if since is None and until is None:
        return Window.previous_days(now, tz, days=lookback_days)
    first = since if since is not None else until
    last = until if until is not None else since
    if first is None or last is None:  # unreachable: one of them is set
        raise ArchiveError("a window needs a first and a last day")
    if last < first:
        raise ArchiveError("the last day of the window is before the first (--until < --since)")
    return Window(start=Window.for_day(first, tz).start, end=Window.for_day(last, tz).end)


# --- worker processes -------------------------------------------------------------------------

_WORKER: RecordWorker | None = None


def _init_worker(settings: Settings, classifier: Classifier) -> None:
    global _WORKER  # one worker state per process, built once
    _WORKER = RecordWorker.create(settings, classifier)


def _work(chunk: list[EncounterBundle], args: tuple[str, datetime]) -> list[RecordOutcome]:
    if _WORKER is None:
        raise ArchiveError("worker process was not initialised")
    run_id, created_at = args
    return _WORKER.process(chunk, run_id=run_id, created_at=created_at)


def _quarantine_document(entry: QuarantineEntry) -> bytes:
    """Exactly what the object's key derives from, so a re-export that shifts *other* lines
    (which ``detail`` and the digests may mention) still finds the same document stored; the
    rest of the entry is in the local quarantine index."""
    body = {
        "reason": entry.reason.value,
        "source_file": entry.source_file,
        "line_number": entry.line_number,
        "raw_sha256": entry.raw_sha256,
        "raw_line_base64": base64.b64encode(entry.raw_line).decode(),
    }
    return json.dumps(body, sort_keys=True).encode()


def _days(n: int) -> timedelta:
    return timedelta(days=n)
