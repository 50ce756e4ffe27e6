"""What a run is asked to do: the window of local days, the source, batch size, workers, run id.

Decided once, before the run starts, from the settings and the caller's arguments, and then
fixed: the run id names the catalog manifest, the report and the quarantine index, and the start
time is also the documents' creation date, so a rerun of the same options renders the same bytes.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from archive.core.errors import ArchiveError
from archive.core.settings import Settings
from archive.sources import Window


@dataclass(frozen=True, slots=True)
class RunOptions:
    window: Window
    source: Path
    batch_size: int
    workers: int
    run_id: str
    started_at: datetime  # also the documents' creation date, so a rerun renders the same bytes
    # Paper intake (``emr-archive intake scans``): ``source`` is a scan directory and this its
    # CSV manifest; the window is then not used to select (paper records are years old).
    manifest: Path | None = None
    ocr: bool = True  # paper intake only: off converts to PDF/A without a text layer
    # One facility's run (MA_CSKCB): only its encounters, under its own run lock and lease;
    # None: the whole export, under the ``all`` lease.
    facility: str | None = None

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
        facility: str | None = None,
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
            facility=facility,
        )


def options_for_days(
    settings: Settings,
    *,
    since: date | None,
    until: date | None,
    source: Path | None,
    now: datetime,
    batch_size: int | None = None,
    facility: str | None = None,
) -> RunOptions:
    """The options of a run over local days ``since`` to ``until`` (default: the configured
    look-back up to yesterday), in the hospital's time zone."""
    window = window_for(
        settings.archive.timezone,
        since=since,
        until=until,
        now=now,
        lookback_days=settings.archive.lookback_days,
    )
    return RunOptions.create(
        settings, window=window, source=source, now=now, batch_size=batch_size, facility=facility
    )


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
