"""The nightly window: the look-back days up to yesterday, in local days."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from archive.core.errors import ArchiveError
from archive.pipeline import window_for
from archive.sources import Window

HCM = "Asia/Ho_Chi_Minh"


def test_the_default_window_is_the_look_back_days_up_to_yesterday() -> None:
    one_am = datetime(2026, 3, 1, 1, 0, tzinfo=ZoneInfo(HCM))  # the nightly run's start
    window = window_for(HCM, since=None, until=None, now=one_am, lookback_days=7)
    assert window.start == datetime(2026, 2, 22, tzinfo=ZoneInfo(HCM))
    assert window.end == datetime(2026, 3, 1, tzinfo=ZoneInfo(HCM))  # today is not included
    assert window_for(HCM, since=None, until=None, now=one_am) == Window.previous_day(one_am, HCM)


def test_the_window_is_local_even_when_now_is_utc() -> None:
    # 18:30 UTC on 28 Feb is 01:30 on 1 March in Ho Chi Minh City: yesterday is 28 Feb.
    utc = datetime(2026, 2, 28, 18, 30, tzinfo=ZoneInfo("UTC"))
    window = Window.previous_days(utc, HCM, days=2)
    assert (window.start.date(), window.end.date()) == (date(2026, 2, 27), date(2026, 3, 1))


def test_explicit_days_win_over_the_look_back() -> None:
    now = datetime(2026, 3, 1, 1, tzinfo=ZoneInfo(HCM))
    window = window_for(HCM, since=date(2026, 1, 5), until=None, now=now, lookback_days=7)
    assert window == Window.for_day(date(2026, 1, 5), HCM)
    with pytest.raises(ArchiveError):
        window_for(HCM, since=date(2026, 1, 5), until=date(2026, 1, 4), now=now)
    with pytest.raises(ValueError, match="at least one day"):
        Window.previous_days(now, HCM, days=0)
