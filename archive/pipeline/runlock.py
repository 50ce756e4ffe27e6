"""One archive run at a time per facility: on this machine by a lock file, across machines by a
lease in the bucket (:mod:`.lease`).

Two runs over the same facility and days (the schedule, and someone rerunning by hand, here or on
another machine) would render, sign and store the same encounters side by side; the create-once
store keeps one copy, but the catalog refuses the second run's manifest as a whole, leaving its
other records to be adopted later. A run therefore holds an exclusive lock on
``<catalog_dir>/.run.<facility>.lock`` (``.run.lock`` for a run over the whole export) and the
facility's bucket lease from its start to its end; a second run is refused at once, before any
work, naming the one in progress. Runs for different facilities hold different locks and leases
and go on side by side (their catalog appends interleave in the one chain). The kernel drops the
file lock when the process dies; the lease expires, but a run killed on this machine left its
run id in the lock file, so the next run here takes that lease over at once.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO

from archive.core.errors import RunInProgressError
from archive.core.settings import Settings
from archive.pipeline.lease import ALL_FACILITIES, LeaseKeeper, RunLease, check_facility
from archive.seal import KeyProvider
from archive.store import ClaimStore, S3ObjectStore, SealedStore

LOCK_NAME = ".run.lock"


def lock_name(facility: str) -> str:
    return LOCK_NAME if facility == ALL_FACILITIES else f".run.{check_facility(facility)}.lock"


class RunLock:
    def __init__(self, handle: IO[str], keeper: LeaseKeeper | None = None) -> None:
        self._handle: IO[str] | None = handle
        self._keeper = keeper

    @classmethod
    def acquire(
        cls,
        directory: Path,
        *,
        run_id: str,
        now: datetime,
        facility: str = ALL_FACILITIES,
        store: ClaimStore | None = None,
        ttl: timedelta = timedelta(minutes=10),
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> RunLock:
        """The local lock, then (with a ``store``) the bucket lease, timed by ``clock`` (the
        real one: ``now`` may be a run's pinned start)."""
        handle, previous = _lock_file(directory, lock_name(facility), run_id=run_id, now=now)
        if store is None:
            return cls(handle)
        try:
            lease = RunLease.acquire(
                store, facility=facility, run_id=run_id, now=clock(), ttl=ttl, dead_run=previous
            )
        except BaseException:
            handle.close()
            raise
        return cls(handle, LeaseKeeper(lease, ttl=ttl, clock=clock))

    @classmethod
    def for_run(
        cls,
        settings: Settings,
        run_id: str,
        now: datetime,
        facility: str | None,
        *,
        keys: KeyProvider,
    ) -> RunLock:
        """An archive run's lock: local, and its facility's lease at the primary site, sealed
        under ``keys`` like all the archive's metadata."""
        lease_store = SealedStore(
            S3ObjectStore.from_settings(settings), keys=keys, settings=settings.seal
        )
        return cls.acquire(
            settings.catalog_dir,
            run_id=run_id,
            now=now,
            facility=facility or ALL_FACILITIES,
            store=lease_store,  # its own S3 client: the keeper's thread uses it
            ttl=timedelta(minutes=settings.archive.run_lease_minutes),
        )

    def check(self) -> None:
        """Raise RunInProgressError if the bucket lease was lost (see :mod:`.lease`)."""
        if self._keeper is not None:
            self._keeper.check()

    def release(self) -> None:
        if self._keeper is not None:
            self._keeper.release()
            self._keeper = None
        if self._handle is not None:
            self._handle.close()  # closing drops the flock
            self._handle = None


def _lock_file(
    directory: Path, name: str, *, run_id: str, now: datetime
) -> tuple[IO[str], str | None]:
    """The locked file, and the run id the previous holder wrote in it: that run is no longer
    running on this machine (we hold the lock the kernel dropped when it ended)."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    handle = open(directory / name, "a+", encoding="utf-8")  # noqa: SIM115 - held
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _holder(handle)
        handle.close()
        raise RunInProgressError(
            f"another archive run is in progress ({holder}): this one stopped before doing "
            "anything; the next run picks up whatever that one leaves"
        ) from None
    previous = _previous_run(handle)
    handle.seek(0)
    handle.truncate()
    json.dump({"run_id": run_id, "pid": os.getpid(), "started": now.isoformat()}, handle)
    handle.flush()
    return handle, previous


def _previous_run(handle: IO[str]) -> str | None:
    handle.seek(0)
    try:
        run_id = json.loads(handle.read() or "{}").get("run_id")
    except (ValueError, AttributeError):
        return None
    return run_id if isinstance(run_id, str) else None


def _holder(handle: IO[str]) -> str:
    handle.seek(0)
    try:
        info = json.loads(handle.read() or "{}")
    except ValueError:
        return "run unknown"
    run, pid, since = (info.get(k, "?") for k in ("run_id", "pid", "started"))
    return f"run {run}, pid {pid}, since {since}"
