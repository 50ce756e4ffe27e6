"""Governance commands wait for an archive run up to a bound, reported, then are refused with a
retry exit code; the lock they take is the run's own (a run started meanwhile is refused)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.core.errors import RunInProgressError
from archive.pipeline.runlock import RunLock
from retention.errors import RunsInProgressError
from retention.exclusion import exclude_runs

NOW = datetime(2026, 3, 1, tzinfo=UTC)


def _acquire(directory: Path, run_id: str) -> RunLock:
    return RunLock.acquire(directory, run_id=run_id, now=NOW)


def test_a_run_in_progress_refuses_the_command_at_once_without_wait(tmp_path: Path) -> None:
    run = _acquire(tmp_path, "nightly-1")
    try:
        with pytest.raises(RunsInProgressError) as caught:
            exclude_runs(lambda: _acquire(tmp_path, "apply"), action="retention apply")
        assert caught.value.exit_code == 75
        assert "nightly-1" in str(caught.value)  # names the run to wait for
        assert "Retry after the run has ended" in str(caught.value)
    finally:
        run.release()


def test_the_command_waits_reported_and_goes_on_once_the_run_ends(tmp_path: Path) -> None:
    run = _acquire(tmp_path, "nightly-1")
    clock, lines = [0.0], list[str]()

    def sleep(seconds: float) -> None:
        clock[0] += seconds
        if clock[0] >= 60:
            run.release()  # the run ends during the second wait

    lock = exclude_runs(
        lambda: _acquire(tmp_path, "apply"),
        action="retention apply",
        wait=timedelta(minutes=5),
        report=lines.append,
        sleep=sleep,
        clock=lambda: clock[0],
    )
    try:
        assert len(lines) == 2
        assert "waiting (up to 300 s more)" in lines[0]
        with pytest.raises(RunInProgressError):  # and now a run is the one refused
            _acquire(tmp_path, "nightly-2")
    finally:
        lock.release()


def test_the_wait_is_bounded(tmp_path: Path) -> None:
    run = _acquire(tmp_path, "nightly-1")
    clock = [0.0]

    def sleep(seconds: float) -> None:
        clock[0] += seconds

    try:
        with pytest.raises(RunsInProgressError):
            exclude_runs(
                lambda: _acquire(tmp_path, "apply"),
                action="hold add",
                wait=timedelta(minutes=2),
                sleep=sleep,
                clock=lambda: clock[0],
            )
        assert clock[0] == 120
    finally:
        run.release()
