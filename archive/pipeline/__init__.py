"""Pipeline: a window of days in, archived records, quarantine entries and a catalog manifest out.

``run`` drives one archive run (collect, batches through a worker pool, quarantine, catalog,
report) under a per-catalog run lock; ``worker`` takes one encounter through render, sign, seal
and store in a worker process and returns its catalog row or why it failed.
"""

from archive.pipeline.retention import Classifier, RetentionDecision
from archive.pipeline.run import ArchiveRun, RunOptions, RunSummary, window_for
from archive.pipeline.runlock import RunLock

__all__ = [
    "ArchiveRun",
    "Classifier",
    "RetentionDecision",
    "RunLock",
    "RunOptions",
    "RunSummary",
    "window_for",
]
