"""A digitisation batch: the archive run fed by the paper intake, shared by
``emr-archive intake scans`` and the demo.

The same :class:`archive.pipeline.ArchiveRun` as the nightly one (run lock, worker pool, sign,
seal, lock, catalog, quarantine, report, audit event), run directly rather than as a Prefect flow:
a digitisation campaign is started by hand, batch by batch, not on a schedule. A rerun over the
same directory and manifest adopts what an interrupted run stored and skips what the catalog
holds.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from archive.pipeline import ArchiveRun, RunOptions, RunSummary, window_for
from infra.settings import AppSettings as Settings
from retention import PolicyClassifier


def run_intake(
    settings: Settings,
    scan_dir: Path,
    manifest: Path,
    *,
    ocr: bool = True,
    batch_size: int | None = None,
) -> RunSummary:
    now = datetime.now(UTC)
    window = window_for(settings.archive.timezone, since=None, until=None, now=now)
    options = RunOptions.create(
        settings, window=window, source=scan_dir, now=now, batch_size=batch_size
    )
    options = dataclasses.replace(options, manifest=manifest.resolve(), ocr=ocr)
    classifier = PolicyClassifier.from_settings(settings)
    with ArchiveRun.start(settings, options, classifier=classifier) as run:
        for batch in run.batches():
            run.archive_batch(batch)
        run.store_quarantine()
        return run.finish()
