"""Run leases in the bucket: one archive run per facility at a time, on any number of machines.

The local run lock (:mod:`.runlock`) only sees processes on its own machine; two machines pointed
at one bucket need to agree through the bucket. A facility's lease is a chain of create-once
generations, ``runs/leases/v1/<facility>/<generation>.json``, the highest being the current one
(who holds it, until when, or released). Every change - acquiring, renewing, releasing - creates
the next generation with ``If-None-Match: *``, so of two machines that read the same generation
exactly one moves it on; the other re-reads and is refused, naming the holder. (``If-Match`` on
one key would be simpler, but is not atomic on our SeaweedFS: :class:`archive.store.ClaimStore`.)

A holder that dies keeps its lease until it expires (``[archive] run_lease_minutes``), except
for the next run on its own machine, which knows it ended (:mod:`.runlock`); a live
holder renews it every third of that, from a thread (:class:`LeaseKeeper`). A holder that could
not renew in time, or whose renewal finds a newer generation, has lost the lease and must stop
before it catalogues (:meth:`LeaseKeeper.check`). Machines' clocks must agree to well within the
lease (NTP). A run without a facility holds the ``all`` lease, which excludes every facility run
and is excluded by any. Lease objects are small and unlocked, sealed like all the archive's
metadata (run id, host, pid, times: no PHI, but the bucket sees no plaintext), and older
generations are deleted as the chain moves on.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import threading
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from datetime import datetime, timedelta
from typing import Final

from archive.core.errors import ArchiveError, RunInProgressError, StoreError
from archive.store import LEASES_PREFIX, ClaimStore

LEASE_PREFIX: Final = LEASES_PREFIX
ALL_FACILITIES: Final = "all"
FACILITY_CODE: Final = re.compile(r"[A-Za-z0-9_-]{1,32}")
_KEY = re.compile(r"(?P<facility>[A-Za-z0-9_-]{1,32})/(?P<gen>\d{10})\.json")


@dataclass(frozen=True, slots=True, kw_only=True)
class LeaseRecord:
    run_id: str
    host: str
    pid: int
    acquired: datetime
    expires: datetime
    released: bool = False

    def live(self, now: datetime) -> bool:
        return not self.released and now < self.expires

    def describe(self) -> str:
        return (
            f"run {self.run_id} on {self.host} (pid {self.pid}) since "
            f"{self.acquired:%Y-%m-%d %H:%M:%S}Z, leased until {self.expires:%H:%M:%S}Z"
        )

    def encode(self) -> bytes:
        raw = asdict(self) | {"acquired": self.acquired.isoformat()}
        return json.dumps(raw | {"expires": self.expires.isoformat()}, sort_keys=True).encode()

    @classmethod
    def decode(cls, data: bytes, *, key: str) -> LeaseRecord:
        try:
            raw = json.loads(data)
            raw["acquired"] = datetime.fromisoformat(raw["acquired"])
            raw["expires"] = datetime.fromisoformat(raw["expires"])
            return cls(**raw)
        except (ValueError, KeyError, TypeError) as e:
            raise ArchiveError(
                f"run lease {key} is unreadable ({type(e).__name__}): no run can tell who holds "
                "this facility; check that no run is in progress, then delete the object"
            ) from e


def _gone(held: LeaseRecord) -> bool:
    """Whether ``held`` was taken by a process of this machine that no longer exists. The run
    file's run id says so only while nothing else took the local lock since (a backfill's
    rerun, a test, an operator's nightly run can); the process table says so always. A lease
    of another machine, or of a process still alive, is never judged here: it expires."""
    if held.host != socket.gethostname() or held.pid == os.getpid():
        return False
    try:
        os.kill(held.pid, 0)  # signal 0: only asks whether the process exists
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, under another user
        return False
    return False


def lease_key(facility: str, gen: int) -> str:
    return f"{LEASE_PREFIX}{facility}/{gen:010d}.json"


def check_facility(facility: str) -> str:
    if not FACILITY_CODE.fullmatch(facility):
        raise ArchiveError(
            f"facility code {facility!r} is not 1-32 letters, digits, '-' or '_' "
            "(the MA_CSKCB code of the facility, e.g. 79001)"
        )
    return facility


def current(store: ClaimStore, facility: str) -> tuple[int, LeaseRecord | None]:
    """The facility's newest generation and its record (0, None when it never had one)."""
    return _newest(store, facility, _generations(store, LEASE_PREFIX + facility + "/"))


def leases(store: ClaimStore, facility: str | None = None) -> dict[str, LeaseRecord]:
    """Each facility's current lease record, by code (``all``: runs over the whole export), or
    ``facility``'s alone; a facility never leased is absent. One listing, one read each."""
    prefix = LEASE_PREFIX + ("" if facility is None else check_facility(facility) + "/")
    found = _generations(store, prefix)
    newest = {code: _newest(store, code, found)[1] for code in sorted(found)}
    return {code: record for code, record in newest.items() if record is not None}


def _generations(store: ClaimStore, prefix: str) -> dict[str, dict[int, str]]:
    """Version ids of the lease objects under ``prefix``, by facility and generation."""
    found: dict[str, dict[int, str]] = {}
    for v in store.list_versions(prefix):
        match = _KEY.fullmatch(v.key.removeprefix(LEASE_PREFIX))
        if match and not v.is_delete_marker and v.is_latest:
            found.setdefault(match["facility"], {})[int(match["gen"])] = v.version_id
    return found


def _newest(
    store: ClaimStore, facility: str, found: dict[str, dict[int, str]]
) -> tuple[int, LeaseRecord | None]:
    gens = found.get(facility, {})
    if not gens:
        return 0, None
    gen = max(gens)
    key = lease_key(facility, gen)
    return gen, LeaseRecord.decode(store.get(key, version_id=gens[gen]), key=key)


class RunLease:
    """One held lease; build with :meth:`acquire`."""

    def __init__(self, store: ClaimStore, facility: str, gen: int, record: LeaseRecord) -> None:
        self._store, self.facility, self._gen, self.record = store, facility, gen, record
        self.lost: str | None = None  # why, once it is
        self._mutex = threading.Lock()  # the keeper's thread renews, the run checks and releases

    @classmethod
    def acquire(
        cls,
        store: ClaimStore,
        *,
        facility: str,
        run_id: str,
        now: datetime,
        ttl: timedelta,
        dead_run: str | None = None,
    ) -> RunLease:
        """Take ``facility``'s lease, or raise RunInProgressError naming its holder. A lease
        held by ``dead_run``, a run known to have ended (:mod:`.runlock`), is taken over."""
        check_facility(facility)
        gen, held = current(store, facility)
        if held is not None and held.live(now) and held.run_id != dead_run and not _gone(held):
            raise _refused(facility, held)
        mine = LeaseRecord(
            run_id=run_id,
            host=socket.gethostname(),
            pid=os.getpid(),
            acquired=now,
            expires=now + ttl,
        )
        if store.create(lease_key(facility, gen + 1), mine.encode()) is None:
            _, winner = current(store, facility)  # another machine took it first
            raise _refused(facility, winner or held or mine)
        lease = cls(store, facility, gen + 1, mine)
        clash = lease._clashing(now)
        if clash is not None:
            lease.release(now)
            raise _refused(clash[0], clash[1])
        lease._prune()
        return lease

    def renew(self, now: datetime, ttl: timedelta) -> bool:
        """Move the lease on to ``now + ttl``; False (and :attr:`lost` says why) when another
        run took it over or it expired before it could be renewed."""
        with self._mutex:
            if self._expired(now):
                return False
            return self._move_on(replace(self.record, expires=now + ttl))

    def release(self, now: datetime) -> None:
        with self._mutex:
            if not self._expired(now):
                self._move_on(replace(self.record, expires=now, released=True))

    def check(self, now: datetime) -> None:
        """Raise RunInProgressError once the lease is lost: the run must stop before it
        catalogues, since another may now be archiving the same facility."""
        with self._mutex:
            if self._expired(now):
                raise RunInProgressError(
                    f"this run lost facility {self.facility}'s run lease ({self.lost}): it stops "
                    "before cataloguing; what it stored is adopted by the next run"
                )

    def _expired(self, now: datetime) -> bool:
        if self.lost is None and now >= self.record.expires:
            self.lost = f"it expired at {self.record.expires:%H:%M:%S}Z before it was renewed"
        return self.lost is not None

    def _move_on(self, record: LeaseRecord) -> bool:
        if self._store.create(lease_key(self.facility, self._gen + 1), record.encode()) is None:
            _, newer = current(self._store, self.facility)
            self.lost = "taken over by " + (newer.describe() if newer else "another run")
            return False
        self._gen, self.record = self._gen + 1, record
        self._prune()
        return True

    def _clashing(self, now: datetime) -> tuple[str, LeaseRecord] | None:
        """A live lease that excludes ours: ``all`` against a facility, any facility against
        ``all``. Both sides create first and look second, so one of two racing runs at least
        sees the other (both may give up; neither goes on beside the other)."""
        prefix = LEASE_PREFIX + ("" if self.facility == ALL_FACILITIES else ALL_FACILITIES + "/")
        found = _generations(self._store, prefix)
        for facility in sorted(found):
            if facility != self.facility:
                _, record = _newest(self._store, facility, found)
                if record is not None and record.live(now):
                    return facility, record
        return None

    def _prune(self) -> None:
        """Delete the generations before ours; best effort (a bucket whose default retention
        locks them keeps them, which costs a few bytes and changes nothing)."""
        prefix = LEASE_PREFIX + self.facility + "/"
        for v in self._store.list_versions(prefix):
            match = _KEY.fullmatch(v.key.removeprefix(LEASE_PREFIX))
            if match and int(match["gen"]) < self._gen:
                with contextlib.suppress(StoreError):
                    self._store.delete_version(v.key, version_id=v.version_id)


def _refused(facility: str, holder: LeaseRecord) -> RunInProgressError:
    return RunInProgressError(
        f"an archive run for facility {facility} is in progress ({holder.describe()}): this one "
        "stopped before doing anything; the next run picks up whatever that one leaves"
    )


class LeaseKeeper:
    """Renews a :class:`RunLease` from a daemon thread every third of ``ttl``."""

    def __init__(self, lease: RunLease, *, ttl: timedelta, clock: Callable[[], datetime]) -> None:
        self.lease, self._ttl, self._clock = lease, ttl, clock
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="run-lease", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._ttl.total_seconds() / 3):
            with contextlib.suppress(StoreError):  # unreachable now: retried at the next tick
                if not self.lease.renew(self._clock(), self._ttl):
                    return

    def check(self) -> None:
        self.lease.check(self._clock())

    def release(self) -> None:
        self._stop.set()
        self._thread.join()
        with contextlib.suppress(StoreError):  # it expires on its own
            self.lease.release(self._clock())
