"""Prefect flow ``nightly-archive``: a table of contents over :class:`archive.pipeline.ArchiveRun`.

One flow run per night; one task per batch of encounters (a task costs 20-80 ms here, so never
one per record); CPU work fans out to a process pool inside the run, or, with
``[cluster] scheduler_address`` set, to the workers of a Dask cluster (:mod:`flows.cluster`).
Only I/O tasks retry; the archive itself makes reruns safe (catalog skip, create-once keys,
adoption). Tasks take and return no PHI through Prefect: parameters are dates, a path and
numbers; results are counts; nothing is persisted or cached.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE
from prefect.client.schemas.objects import State
from prefect.utilities.annotations import quote

from archive.core.settings import Settings, load_settings
from archive.pipeline import ArchiveRun, RunOptions, RunSummary, options_for_days
from archive.sources import EncounterBundle
from flows.cluster import archive_on_cluster, ensure_cluster
from flows.outcome import ended
from retention import PolicyClassifier

# The CLI sets this to draw a progress bar; Prefect never sees it.
PROGRESS: Callable[[int, int], None] | None = None

_NO_STATE: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="start-run", **_NO_STATE)
def start_run(settings: Settings, options: RunOptions) -> ArchiveRun:
    return ArchiveRun.start(settings, options, classifier=PolicyClassifier.from_settings(settings))


def _opaque(value: Any) -> Any:
    # Prefect walks task arguments looking for futures; our settings model has a `keys` field
    # that makes it look like a mapping. quote() hands it over untouched.
    return quote(value)


@task(name="archive-batch", **_NO_STATE)
def archive_batch(run: ArchiveRun, batch: list[EncounterBundle]) -> dict[str, int]:
    return run.archive_batch(batch)


@task(name="store-quarantine", retries=3, retry_delay_seconds=[2, 10, 30], **_NO_STATE)
def store_quarantine(run: ArchiveRun) -> int:
    return run.store_quarantine()


@task(name="record-catalog", retries=3, retry_delay_seconds=[2, 10, 30], **_NO_STATE)
def record_catalog(run: ArchiveRun) -> RunSummary:
    return run.finish()


@task(name="publish-report", **_NO_STATE)
def publish_report(summary: RunSummary) -> None:
    create_markdown_artifact(
        key="nightly-archive",
        markdown=summary.to_markdown(),
        description="archived / quarantined / failed counts (no PHI)",
    )


@flow(name="nightly-archive", log_prints=False)
def nightly_archive(
    since: date | None = None,
    until: date | None = None,
    source: str | None = None,
    batch_size: int | None = None,
    facility: str | None = None,
) -> dict[str, Any] | State:
    """Archive the encounters discharged from ``since`` to ``until`` (local days, inclusive;
    default: the ``archive.lookback_days`` days up to yesterday, skipping what is archived);
    with ``facility`` (MA_CSKCB), only that facility's, beside other facilities' runs.
    Ends Failed when records failed (the summary travels with the state)."""
    settings = load_settings()
    options = options_for_days(
        settings,
        since=since,
        until=until,
        source=Path(source) if source else None,
        now=datetime.now(UTC),
        batch_size=batch_size,
        facility=facility,
    )
    if settings.cluster.scheduler_address:  # refused before any work when nobody would do it
        ensure_cluster(
            settings.cluster.scheduler_address, timeout_s=settings.cluster.connect_timeout_s
        )
    summary = archive_window(settings, options, progress=PROGRESS)
    publish_report(summary)
    return ended(summary.to_dict(), failure=summary.failure_message)


def archive_window(
    settings: Settings, options: RunOptions, *, progress: Callable[[int, int], None] | None = None
) -> RunSummary:
    """One run over ``options``' window, as tasks of the calling flow: the nightly run's one
    window, or one day of a backfill (:mod:`flows.backfill`)."""
    run = start_run(_opaque(settings), options)
    try:
        run.progress = progress
        if settings.cluster.scheduler_address:  # several machines: batches go to Dask workers
            archive_on_cluster(run, settings.cluster.scheduler_address)
        else:  # one machine: a process pool inside each batch task
            for batch in run.batches():
                archive_batch(run, batch)
        store_quarantine(run)
        summary: RunSummary = record_catalog(run)
    finally:
        run.close()
    return summary
