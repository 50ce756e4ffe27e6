"""A backfill's days: split from --since/--until (finished local days only, a bounded span) and
the ledger that makes it resumable (done days skipped; failed, torn or missing marks run again)."""

from __future__ import annotations

import itertools
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from archive.core.errors import WindowError
from archive.core.settings import Settings
from archive.pipeline import window_for
from archive.pipeline.backfill_ledger import DayLedger, DayMark
from archive.pipeline.backfill_summary import BackfillSummary
from archive.pipeline.options import MAX_BACKFILL_DAYS, backfill_days

HCM = "Asia/Ho_Chi_Minh"
# 18:30 UTC on 31 Dec 2025 is 01:30 on 1 Jan 2026 in Ho Chi Minh City: yesterday is 31 Dec.
NOW = datetime(2025, 12, 31, 18, 30, tzinfo=UTC)
AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_ten_years_split_into_every_local_day_leap_days_included() -> None:
    days = backfill_days(HCM, since=date(2016, 1, 1), until=date(2025, 12, 31), now=NOW)
    assert len(days) == 3653  # 2016, 2020 and 2024 have 29 February
    assert days[0] == date(2016, 1, 1)
    assert days[-1] == date(2025, 12, 31)
    assert date(2024, 2, 29) in days
    assert all(b - a == timedelta(days=1) for a, b in itertools.pairwise(days))


def test_a_day_not_over_yet_is_refused_in_the_hospitals_time_zone() -> None:
    # In UTC it is still 31 Dec; in Ho Chi Minh City 31 Dec is over and 1 Jan is today.
    with pytest.raises(WindowError, match=r"not over yet .*up to 2025-12-31"):
        backfill_days(HCM, since=date(2025, 12, 30), until=date(2026, 1, 1), now=NOW)
    assert backfill_days(HCM, since=date(2025, 12, 30), until=date(2025, 12, 31), now=NOW)


def test_reversed_or_overlong_spans_and_future_days_are_refused_clearly() -> None:
    with pytest.raises(WindowError, match="before --since"):
        backfill_days(HCM, since=date(2020, 1, 2), until=date(2020, 1, 1), now=NOW)
    with pytest.raises(WindowError, match=r"spans 734,\d+ days: .* at most 30 years"):
        backfill_days(HCM, since=date(16, 1, 1), until=date(2025, 12, 31), now=NOW)
    last = date(2025, 12, 31)
    longest = backfill_days(
        HCM, since=last - timedelta(days=MAX_BACKFILL_DAYS - 1), until=last, now=NOW
    )
    assert len(longest) == MAX_BACKFILL_DAYS
    with pytest.raises(WindowError, match="in the future"):
        window_for(HCM, since=date(2026, 1, 2), until=None, now=NOW)
    # A one-day run over today stays allowed (the nightly window semantics, not a backfill).
    assert window_for(HCM, since=date(2026, 1, 1), until=None, now=NOW).start == datetime(
        2026, 1, 1, tzinfo=ZoneInfo(HCM)
    )


def _mark(day: date, status: str = "done") -> DayMark:
    counts = {"archived": 3, "failed": 0 if status == "done" else 1, "seconds": 1.5}
    return DayMark(day, status, f"run-{day}", counts)  # type: ignore[arg-type]


def test_done_days_are_skipped_failed_ones_run_again_the_last_mark_wins(tmp_path: Path) -> None:
    ledger = DayLedger(tmp_path)
    days = [date(2016, 1, d) for d in range(1, 6)]
    assert ledger.pending(days) == days
    ledger.mark(_mark(days[0]), at=AT)
    ledger.mark(_mark(days[1], "failed"), at=AT)
    ledger.mark(_mark(days[2]), at=AT)
    ledger.mark(_mark(days[2], "failed"), at=AT)  # redone later and failed: runs again
    ledger.mark(_mark(days[1]), at=AT)  # the failed day retried and done
    assert ledger.pending(days) == [days[2], days[3], days[4]]
    assert ledger.pending(days, redo=True) == days
    assert DayLedger(tmp_path).marks()[days[1]].counts["archived"] == 3  # read back from disk
    assert oct(ledger.path.stat().st_mode & 0o777) == "0o600"


def test_a_torn_last_line_never_reads_as_done_and_the_next_mark_still_counts(
    tmp_path: Path,
) -> None:
    ledger = DayLedger(tmp_path)
    days = [date(2016, 1, 1), date(2016, 1, 2)]
    ledger.mark(_mark(days[0]), at=AT)
    full = ledger.path.read_bytes()
    ledger.mark(_mark(days[1]), at=AT)
    # kill -9 in the middle of writing day 2's line: only part of it reached the disk.
    ledger.path.write_bytes(ledger.path.read_bytes()[: len(full) + 40])
    assert ledger.pending(days) == [days[1]]
    ledger.mark(_mark(days[1]), at=AT)  # the rerun's mark, appended after the torn line
    assert ledger.pending(days) == []


def test_the_ledger_is_per_source_and_per_archive_and_names_no_path(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    a, b = tmp_path / "export-Nguyen-Van-A", tmp_path / "export-b"
    one = DayLedger.for_source(settings, a)
    one.mark(_mark(date(2016, 1, 1)), at=AT)
    assert DayLedger.for_source(settings, a).pending([date(2016, 1, 1)]) == []
    assert DayLedger.for_source(settings, b).pending([date(2016, 1, 1)]) == [date(2016, 1, 1)]
    other_bucket = settings.model_copy(
        update={"s3": settings.s3.model_copy(update={"bucket": "another-archive"})}
    )
    assert DayLedger.for_source(other_bucket, a).pending([date(2016, 1, 1)]) == [date(2016, 1, 1)]
    assert "Nguyen" not in str(one.path) + one.path.read_text()


def test_a_facility_backfill_has_its_own_ledger_and_the_whole_export_keeps_its(
    tmp_path: Path,
) -> None:
    settings = Settings(data_dir=tmp_path / "data")
    export, day = tmp_path / "export", date(2016, 1, 1)
    whole = DayLedger.for_source(settings, export)
    DayLedger.for_source(settings, export, facility="79001").mark(_mark(day), at=AT)
    assert DayLedger.for_source(settings, export, facility="79001").pending([day]) == []
    # A day done for one facility is still to do for another and for the whole export.
    assert DayLedger.for_source(settings, export, facility="79002").pending([day]) == [day]
    assert whole.pending([day]) == [day]
    assert whole.directory == DayLedger.for_source(settings, export, facility=None).directory


def test_totals_add_up_the_days_and_name_the_failed_ones() -> None:
    summary = BackfillSummary(date(2016, 1, 1), date(2016, 1, 4), days=4, skipped=1)
    summary.add(date(2016, 1, 2), {"archived": 5, "quarantined": 1, "seconds": 2.0}, None)
    summary.add(date(2016, 1, 3), {"archived": 2, "failed": 3, "seconds": 4.0}, "tsa.down: 3")
    data = summary.to_dict()
    assert (data["ran"], data["archived"], data["failed"], data["quarantined"]) == (2, 7, 3, 1)
    assert data["seconds_per_day"] == 3.0
    assert data["failed_days"] == {"2016-01-03": "tsa.down: 3"}
    assert summary.failure_message is not None
    assert "2016-01-03" in summary.failure_message
    assert "| archived | 7 |" in summary.to_markdown()
