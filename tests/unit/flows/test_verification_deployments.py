"""The verification deployments: weekly sample on Sunday 02:00 and monthly full, local time."""

from __future__ import annotations

from flows.verify import MONTHLY_FULL_CRON, WEEKLY_SAMPLE_CRON, verification_deployments
from infra.settings import load_app_settings as load_settings


def test_weekly_sample_and_monthly_full_in_the_archive_timezone() -> None:
    served = {d.name: d for d in verification_deployments(load_settings())}
    assert set(served) == {"weekly-sample", "monthly-full"}
    weekly = served["weekly-sample"].schedules[0].schedule
    monthly = served["monthly-full"].schedules[0].schedule
    assert (weekly.cron, weekly.timezone) == ("0 2 * * 0", "Asia/Ho_Chi_Minh")
    assert (monthly.cron, monthly.timezone) == (MONTHLY_FULL_CRON, "Asia/Ho_Chi_Minh")
    assert WEEKLY_SAMPLE_CRON == "0 2 * * 0"
    assert served["weekly-sample"].parameters == {"mode": "sample"}
    assert served["monthly-full"].parameters == {"mode": "full"}
