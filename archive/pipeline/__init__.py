"""Pipeline: a window of days in, archived records, quarantine entries and a catalog manifest out.

``options`` fixes what a run is asked to do (window, source, run id); ``admission`` refuses (and
audits) a source outside the configured roots before anything else; ``run`` drives it (collect,
batches through a worker pool, quarantine, catalog, report) under a per-catalog run lock;
``worker`` takes one encounter through render, sign, seal and store in a worker process and
returns its catalog row or why it failed; ``quarantine`` stores what the collector held back;
``summary`` is what the run tells Prefect, the CLI, the report and the audit log (counts only).
"""

from archive.pipeline.admission import admit_source, source_roots
from archive.pipeline.classifier import Classifier, RetentionDecision
from archive.pipeline.options import RunOptions, options_for_days, window_for
from archive.pipeline.run import ArchiveRun
from archive.pipeline.runlock import RunLock
from archive.pipeline.summary import RunSummary

__all__ = [
    "ArchiveRun",
    "Classifier",
    "RetentionDecision",
    "RunLock",
    "RunOptions",
    "RunSummary",
    "admit_source",
    "options_for_days",
    "source_roots",
    "window_for",
]
