"""Prefect flow ``backfill-archive``: years of records, one local day at a time, resumable.

``emr-archive archive --since 2016-01-01 --until 2025-12-31`` runs this flow. Each day is one
archive run over that day's window, exactly as a nightly run over it would be (the same tasks:
:func:`flows.nightly.archive_window`): its batches go to the process pool, or to the Dask
cluster's workers when ``[cluster] scheduler_address`` is set, and this flow's process stays the
one catalog writer, appending one manifest per day. One per day because the day is the unit of
resume: a day is marked done in the ledger (:mod:`archive.pipeline.backfill_ledger`) only once
its manifest is appended, so a kill costs at most the day in progress, whose stored objects the
rerun adopts; and the archive ends up as ten years of nightly runs would have left it (a
manifest, an evidence-record tree, a report and an audit event per day), never with one
manifest so large that a crash before it loses weeks of appends.

Days run one after the other under the catalog's run lock, each taking and releasing it as a
nightly run does: a nightly run that starts while a day is in progress is refused (its look-back
catches up the next night), and a day that finds a nightly run in progress waits for it (up to
``lock_wait_s``). Two backfills of the same source into the same archive are refused by a lock
on the ledger. A day that raises stops the backfill (the cause is shared: the store, the keys,
the TSA); a day whose records failed is marked failed, the backfill goes on, and a rerun retries
the day.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact
from prefect.client.schemas.objects import State

from archive.core.errors import ArchiveError, RunInProgressError
from archive.core.settings import Settings, load_settings
from archive.pipeline import RunLock, RunOptions, RunSummary, admit_source
from archive.pipeline.backfill_ledger import DayLedger, DayMark, DayStatus
from archive.pipeline.backfill_summary import BackfillSummary, day_counts, day_reason
from archive.pipeline.options import backfill_days
from archive.sources import Window
from flows import nightly
from flows.outcome import ended

# The CLI sets this to print a line per day as it finishes; Prefect never sees it.
DAY_DONE: Callable[[date, DayMark], None] | None = None
LOCK_POLL_S = 2.0


@flow(name="backfill-archive", log_prints=False)
def backfill_archive(
    since: date,
    until: date,
    source: str | None = None,
    batch_size: int | None = None,
    redo: bool = False,
    lock_wait_s: float = 3600.0,
    facility: str | None = None,
) -> dict[str, Any] | State:
    """Archive the local days ``since`` to ``until`` (inclusive, all over), each as a run of its
    own; days an earlier backfill finished are skipped (all of them run again with ``redo``).
    With ``facility`` (MA_CSKCB) each day's run is that facility's, as its nightly run is: only
    its encounters, under its lock and lease, beside the other facilities' runs and backfills,
    with a day ledger of its own (a day done for one facility is not done for another).
    Ends Failed when a day's records failed (the summary travels with the state)."""
    settings = load_settings()
    now = datetime.now(UTC)
    days = backfill_days(settings.archive.timezone, since=since, until=until, now=now)
    chosen = Path(source) if source else settings.archive.source_dir
    if chosen is None:
        raise ArchiveError("no source: pass --source DIR or set EMR_ARCHIVE_ARCHIVE__SOURCE_DIR")
    chosen = admit_source(settings, chosen, run_id=None, now=now)
    ledger = DayLedger.for_source(settings, chosen, facility=facility)
    hold = RunLock.acquire(ledger.directory, run_id=f"backfill {since}..{until}", now=now)
    try:
        todo = ledger.pending(days, redo=redo)
        summary = BackfillSummary(since, until, days=len(days), skipped=len(days) - len(todo))
        for day in todo:
            mark = _run_day(settings, ledger, day, chosen, batch_size, lock_wait_s, facility)
            ledger.mark(mark, at=datetime.now(UTC))
            summary.add(day, dict(mark.counts), mark.reason)
            if DAY_DONE is not None:
                DAY_DONE(day, mark)
    finally:
        hold.release()
    create_markdown_artifact(
        key="backfill-archive",
        markdown=summary.to_markdown(),
        description="per-day totals of a backfill (no PHI)",
    )
    return ended(summary.to_dict(), failure=summary.failure_message)


def _run_day(
    settings: Settings,
    ledger: DayLedger,
    day: date,
    source: Path,
    batch_size: int | None,
    lock_wait_s: float,
    facility: str | None,
) -> DayMark:
    """One day's run, waiting for the catalog's run lock if another run holds it. A day that
    raises is marked failed before the error stops the backfill."""
    options = RunOptions.create(
        settings,
        window=Window.for_day(day, settings.archive.timezone),
        source=source,
        now=datetime.now(UTC),
        batch_size=batch_size,
        facility=facility,
    )
    try:
        summary = _under_lock(settings, options, lock_wait_s)
    except RunInProgressError:
        raise  # nothing ran: the day stays unmarked
    except Exception as e:
        failed = DayMark(day, "failed", options.run_id, {}, reason=type(e).__name__)
        ledger.mark(failed, at=datetime.now(UTC))
        raise
    status: DayStatus = "failed" if summary.failed_total else "done"
    return DayMark(day, status, options.run_id, day_counts(summary), reason=day_reason(summary))


def _under_lock(settings: Settings, options: RunOptions, lock_wait_s: float) -> RunSummary:
    deadline = time.monotonic() + lock_wait_s
    while True:
        try:
            return nightly.archive_window(settings, options, progress=nightly.PROGRESS)
        except RunInProgressError:
            if time.monotonic() >= deadline:
                raise
            get_run_logger().info(
                "%s: another archive run holds the catalog; waiting for it", options.window.start
            )
            time.sleep(LOCK_POLL_S)
