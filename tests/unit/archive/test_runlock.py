"""One archive run at a time: a second is refused at once, naming the first; a released or
dead holder frees the lock."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from datetime import UTC, datetime
from pathlib import Path

import pytest

from archive.core.errors import RunInProgressError
from archive.pipeline import RunLock

NOW = datetime(2026, 11, 23, 1, tzinfo=UTC)


def test_a_second_run_is_refused_while_the_first_holds_the_lock(tmp_path: Path) -> None:
    first = RunLock.acquire(tmp_path, run_id="20261123T010000Z-aaaaaa", now=NOW)
    with pytest.raises(RunInProgressError, match="20261123T010000Z-aaaaaa"):
        RunLock.acquire(tmp_path, run_id="20261123T010500Z-bbbbbb", now=NOW)
    first.release()
    RunLock.acquire(tmp_path, run_id="20261123T010500Z-bbbbbb", now=NOW).release()


def test_a_killed_holder_leaves_no_lock_behind(tmp_path: Path) -> None:
    holder = textwrap.dedent(f"""
        import os, sys
        from datetime import UTC, datetime
        from pathlib import Path
        from archive.pipeline.runlock import RunLock
        RunLock.acquire(Path({str(tmp_path)!r}), run_id="held", now=datetime.now(UTC))
        print("locked", flush=True)
        os._exit(9)  # dies holding it, no clean-up
    """)
    done = subprocess.run(
        [sys.executable, "-c", holder], capture_output=True, text=True, timeout=60, check=False
    )
    assert "locked" in done.stdout, done.stderr
    RunLock.acquire(tmp_path, run_id="next", now=NOW).release()
