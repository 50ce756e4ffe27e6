"""The worker processes' side of the run's pool: one :class:`RecordWorker` per process.

Module state, because a spawned process pool's initializer can only leave its work where the task
function finds it; both functions are looked up by name in each process, so they live at module
level. ``workers == 1`` runs them in the calling process (:func:`archive.core.pool.worker_pool`).
"""

from __future__ import annotations

from datetime import datetime

from archive.core.errors import ArchiveError
from archive.core.settings import Settings
from archive.pipeline.classifier import Classifier
from archive.pipeline.worker import RecordOutcome, RecordWorker
from archive.sources import EncounterBundle

_WORKER: RecordWorker | None = None


def init_worker(settings: Settings, classifier: Classifier, known_signers: frozenset[str]) -> None:
    global _WORKER  # one worker state per process, built once
    _WORKER = RecordWorker.create(settings, classifier, known_signers=known_signers)


def work(chunk: list[EncounterBundle], args: tuple[str, datetime]) -> list[RecordOutcome]:
    if _WORKER is None:
        raise ArchiveError("worker process was not initialised")
    run_id, created_at = args
    return _WORKER.process(chunk, run_id=run_id, created_at=created_at)
