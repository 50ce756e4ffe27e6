"""One archive run at a time per catalog.

Two runs over the same days (the schedule, and someone rerunning by hand) would render, sign
and store the same encounters side by side; the create-once store keeps one copy, but the
catalog refuses the second run's manifest as a whole, leaving its other records to be adopted
later. A run therefore holds an exclusive lock on ``<catalog_dir>/.run.lock`` from its start
to its end; a second run is refused at once, before any work, naming the one in progress.
The kernel drops the lock when the process dies, so a crash never leaves the archive locked.
"""

from __future__ import annotations

import fcntl
import json
import os
from datetime import datetime
from pathlib import Path
from typing import IO

from archive.core.errors import RunInProgressError

LOCK_NAME = ".run.lock"


class RunLock:
    def __init__(self, handle: IO[str]) -> None:
        self._handle: IO[str] | None = handle

    @classmethod
    def acquire(cls, directory: Path, *, run_id: str, now: datetime) -> RunLock:
        directory.mkdir(parents=True, exist_ok=True, mode=0o700)
        handle = open(directory / LOCK_NAME, "a+", encoding="utf-8")  # noqa: SIM115 - held
        try:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _holder(handle)
            handle.close()
            raise RunInProgressError(
                f"another archive run is in progress ({holder}): this one stopped before doing "
                "anything; the next run picks up whatever that one leaves"
            ) from None
        handle.seek(0)
        handle.truncate()
        json.dump({"run_id": run_id, "pid": os.getpid(), "started": now.isoformat()}, handle)
        handle.flush()
        return cls(handle)

    def release(self) -> None:
        if self._handle is not None:
            self._handle.close()  # closing drops the flock
            self._handle = None


def _holder(handle: IO[str]) -> str:
    handle.seek(0)
    try:
        info = json.loads(handle.read() or "{}")
    except ValueError:
        return "run unknown"
    run, pid, since = (info.get(k, "?") for k in ("run_id", "pid", "started"))
    return f"run {run}, pid {pid}, since {since}"
