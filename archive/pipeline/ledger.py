"""What a run has done so far: catalog rows to append, failures to list, time by stage, counts.

Fed one :class:`~archive.pipeline.worker.RecordOutcome` at a time, from the run's process pool
or from cluster workers' batch results; the run's process (the one catalog writer) reads it at
the end. A record reported twice (a batch a cluster reran after losing a worker) counts once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

from archive.catalog import CatalogRow
from archive.pipeline.summary import RunSummary, ocr_timeout_note
from archive.pipeline.worker import RecordOutcome


@dataclass
class Ledger:
    summary: RunSummary
    rows: list[CatalogRow] = field(default_factory=list)
    failures: list[dict[str, object]] = field(default_factory=list)
    notes: list[dict[str, object]] = field(default_factory=list)  # archived, with a caveat
    stages: defaultdict[str, float] = field(default_factory=lambda: defaultdict(float))
    _seen: set[tuple[str, str | None]] = field(default_factory=set)

    def record(self, outcome: RecordOutcome) -> None:
        s = self.summary
        if outcome.row is not None:
            stored = (outcome.row.object_key, outcome.row.version_id)
            if stored in self._seen:  # the same stored version reported again: count it once
                return
            self._seen.add(stored)
        for stage, seconds in outcome.timings.items():
            self.stages[stage] += seconds
        if outcome.status == "failed":
            code = (outcome.reason_code or "unknown").split(" ", 1)[0]
            s.failed[code] = s.failed.get(code, 0) + 1
            self.failures.append(
                {
                    "encounter_id": outcome.encounter_id,
                    "reason": outcome.reason_code or "unknown",
                    "retryable": outcome.retryable,
                }
            )
            return
        if outcome.row is not None:
            self.rows.append(outcome.row)
        if outcome.status == "archived":
            s.archived += 1
        else:
            s.adopted += 1
        s.pdf_bytes += outcome.pdf_bytes
        s.sealed_bytes += outcome.sealed_bytes
        if outcome.ocr_timeout_pages:
            s.ocr_timeout_pages += outcome.ocr_timeout_pages
            s.ocr_timeout_records += 1
            self.notes.append(
                {
                    "encounter_id": outcome.encounter_id,
                    "note": ocr_timeout_note(outcome.ocr_timeout_pages),
                }
            )

    def batch_done(self, worker: str) -> None:
        """A cluster worker returned a batch (which machine did how many, for the report)."""
        workers = self.summary.batches_by_worker
        workers[worker] = workers.get(worker, 0) + 1
