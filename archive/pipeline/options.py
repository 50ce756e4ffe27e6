"""What a run is asked to do: the window of local days, the source, batch size, workers, run id.

Decided once, before the run starts, from the settings and the caller's arguments, and then
fixed: the run id names the catalog manifest, the report and the quarantine index, and the start
time is also the documents' creation date, so a rerun of the same options renders the same bytes.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

from archive.core.errors import ArchiveError, WindowError
from archive.core.settings import Settings
from archive.core.timezones import zone
from archive.sources import Window

# The longest backfill one command takes. Hospitals keep electronic records for 10 to 30 years
# (TT 33/2025's longest classes); a longer span is a typed year (0216 for 2016), and a backfill
# that long is better split into runs an operator can follow.
MAX_BACKFILL_YEARS = 30
MAX_BACKFILL_DAYS = MAX_BACKFILL_YEARS * 366


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
        raise WindowError("the last day of the window is before the first (--until < --since)")
    today = now.astimezone(zone(tz)).date()
    if first > today:
        raise WindowError(f"--since {first} is in the future (today is {today} in {tz})")
    return Window(start=Window.for_day(first, tz).start, end=Window.for_day(last, tz).end)


def backfill_days(tz: str, *, since: date, until: date, now: datetime) -> list[date]:
    """The local days ``since`` to ``until`` (both inclusive), each archived as a window of its
    own. Every one must be over: a backfill marks a day done and never returns to it, so a day
    still going on would lose the encounters discharged after its run (the nightly run takes
    yesterday and today)."""
    if until < since:
        raise WindowError(f"--until {until} is before --since {since}")
    today = now.astimezone(zone(tz)).date()
    if until >= today:
        raise WindowError(
            f"--until {until} is not over yet (today is {today} in {tz}): a backfill covers "
            f"finished days, up to {today - timedelta(days=1)}; the nightly run takes the rest"
        )
    count = (until - since).days + 1
    if count > MAX_BACKFILL_DAYS:
        raise WindowError(
            f"--since {since} --until {until} spans {count:,} days: a backfill covers at most "
            f"{MAX_BACKFILL_YEARS} years ({MAX_BACKFILL_DAYS:,} days); check the years, or "
            "split it into several backfills"
        )
    return [since + timedelta(days=i) for i in range(count)]
