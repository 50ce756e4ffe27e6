"""Commands that change records' locks run while no archive run does: they hold the run lock.

An archive run writes locks of its own: between its catalog append and its evidence stage it
PUTs the evidence records of the records it has just catalogued, locked to the date it promised
when it held them, and it PUTs amendments (new versions of catalogued records) locked to the date
its classifier gave. ``retention apply`` finds the fresh records in the catalog, extends them,
finds no evidence record to extend yet, and the run then writes it locked to the older date
(verification reports ``evidence.lock``); an amendment stored after the upgrade walked the
record's versions keeps the older date too. ``hold add`` has the same window: a version stored
after it walked the versions is not held, and a hold by facility and dates misses the records
being catalogued.

So these commands take what a run over the whole export takes: the local run lock and the
``all`` lease in the bucket, which excludes every facility's run and is excluded by any
(:mod:`archive.pipeline.lease`); the plan is read under it, so it sees a catalog no run is
changing. A run in progress is waited for up to ``wait`` (each wait reported), then the command
is refused with :class:`RunsInProgressError` (exit 75: retry after the run). While the command
holds the lease, a run starting is refused in turn and the next scheduled run picks its days up:
the command takes minutes, a run hours, so it is the command that yields to the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import timedelta

from archive.core.errors import RunInProgressError
from archive.pipeline.runlock import RunLock
from retention.errors import RunsInProgressError

POLL = timedelta(seconds=30)


def exclude_runs(
    acquire: Callable[[], RunLock],
    *,
    action: str,
    wait: timedelta = timedelta(0),
    report: Callable[[str], None] = lambda _line: None,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> RunLock:
    """The run lock ``acquire`` takes, waiting for a run in progress up to ``wait``."""
    deadline = clock() + wait.total_seconds()
    while True:
        try:
            return acquire()
        except RunInProgressError as e:
            left = deadline - clock()
            if left <= 0:
                raise RunsInProgressError(
                    f"{action} refused: an archive run is in progress and it writes the locks "
                    f"{action} changes; nothing was changed. Retry after the run has ended "
                    "(`emr-archive lease show` names it), or pass --wait MINUTES. "
                    f"Run lock: {e}"
                ) from e
            report(f"{action}: an archive run is in progress; waiting (up to {left:.0f} s more)")
            sleep(min(POLL.total_seconds(), left))
