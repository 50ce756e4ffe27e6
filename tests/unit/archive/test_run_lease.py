"""Run leases in the bucket: one run per facility across machines, through conditional creates
only; a dead holder's lease expires, a live one is renewed, a lost one stops its run."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.core.errors import ArchiveError, RunInProgressError
from archive.core.settings import SealSettings
from archive.pipeline.lease import LEASE_PREFIX, RunLease, current, lease_key
from archive.pipeline.runlock import RunLock
from archive.seal import MAGIC, LocalKeyring
from archive.store import ClaimStore, SealedStore
from tests.support.memstore import MemoryStore

NOW = datetime(2026, 11, 23, 1, tzinfo=UTC)
TTL = timedelta(minutes=10)


def take(store: ClaimStore, facility: str, run_id: str, now: datetime = NOW) -> RunLease:
    return RunLease.acquire(store, facility=facility, run_id=run_id, now=now, ttl=TTL)


def test_a_second_run_for_the_facility_is_refused_on_another_machine(tmp_path: Path) -> None:
    store = MemoryStore()  # the one bucket both machines see
    first = RunLock.acquire(tmp_path / "m1", run_id="run-a", now=NOW, facility="79001", store=store)
    with pytest.raises(RunInProgressError, match=r"facility 79001 .*run run-a on "):
        RunLock.acquire(tmp_path / "m2", run_id="run-b", now=NOW, facility="79001", store=store)
    other = RunLock.acquire(tmp_path / "m2", run_id="run-c", now=NOW, facility="79002", store=store)
    first.release()
    RunLock.acquire(
        tmp_path / "m2", run_id="run-b", now=NOW, facility="79001", store=store
    ).release()
    other.release()


def test_an_expired_lease_is_taken_over_and_its_holder_stops() -> None:
    store = MemoryStore()
    dead = take(store, "79001", "run-a")
    later = NOW + TTL + timedelta(seconds=1)
    taker = take(store, "79001", "run-b", now=later)
    assert not dead.renew(later, TTL)
    with pytest.raises(RunInProgressError, match="lost facility 79001's run lease"):
        dead.check(later)
    dead.release(later)  # writes nothing: the lease is the taker's
    assert current(store, "79001")[1] == taker.record


def test_a_holder_whose_lease_was_taken_over_finds_out_at_its_next_renewal() -> None:
    """Its clock ran behind, or it stalled: the taker's newer generation is what it finds."""
    store = MemoryStore()
    stalled = take(store, "79001", "run-a")
    taker = take(store, "79001", "run-b", now=NOW + TTL)
    assert not stalled.renew(NOW + TTL / 2, TTL)
    with pytest.raises(RunInProgressError, match="taken over by run run-b"):
        stalled.check(NOW + TTL / 2)
    assert current(store, "79001")[1] == taker.record


def test_a_holder_that_renews_too_late_has_lost_even_if_nobody_took_over() -> None:
    store = MemoryStore()
    lease = take(store, "79001", "run-a")
    assert not lease.renew(NOW + TTL, TTL)
    with pytest.raises(RunInProgressError, match="expired"):
        lease.check(NOW + TTL)


def test_of_two_machines_racing_for_a_free_lease_one_wins() -> None:
    class Racing(MemoryStore):
        raced = False

        def create(self, key: str, data: bytes) -> str | None:
            if not self.raced:  # the other machine read the same generation and created first
                self.raced = True
                take(self, "79001", "run-rival")
            return super().create(key, data)

    store = Racing()
    with pytest.raises(RunInProgressError, match="run run-rival"):
        take(store, "79001", "run-ours")
    assert current(store, "79001")[1] is not None


def test_renewal_and_release_move_the_chain_on_and_prune_it() -> None:
    store = MemoryStore()
    lease = take(store, "79001", "run-a")
    assert lease.renew(NOW + TTL / 2, TTL)
    lease.check(NOW + TTL)  # renewed: still held past the first expiry
    lease.release(NOW + TTL)
    gen, record = current(store, "79001")
    assert gen == 3
    assert record is not None
    assert record.released
    assert [v.key for v in store.list_versions(LEASE_PREFIX)] == [lease_key("79001", 3)]
    take(store, "79001", "run-b", now=NOW + TTL)  # released: free at once


@pytest.mark.parametrize(("first", "second"), [("all", "79001"), ("79001", "all")])
def test_a_whole_export_run_and_a_facility_run_exclude_each_other(first: str, second: str) -> None:
    store = MemoryStore()
    take(store, first, "run-a")
    with pytest.raises(RunInProgressError, match=f"facility {first} .*run run-a"):
        take(store, second, "run-b")
    assert current(store, second)[1] is not None  # it created, saw the clash and released
    assert current(store, second)[1].released  # type: ignore[union-attr]


def test_facility_codes_cannot_reach_outside_their_prefix() -> None:
    for bad in ("../79001", "79001/x", "", "x" * 33):
        with pytest.raises(ArchiveError, match="facility code"):
            take(MemoryStore(), bad, "run-a")


def test_the_keeper_renews_while_the_run_goes_on(tmp_path: Path) -> None:
    store = MemoryStore()
    lock = RunLock.acquire(
        tmp_path, run_id="run-a", now=NOW, facility="79001", store=store, ttl=timedelta(seconds=0.3)
    )
    time.sleep(0.8)  # past two expiries: only renewals keep it
    lock.check()
    assert current(store, "79001")[0] >= 3
    lock.release()
    record = current(store, "79001")[1]
    assert record is not None
    assert record.released


def test_leases_reach_the_bucket_sealed(tmp_path: Path) -> None:
    inner = MemoryStore()
    keys = LocalKeyring.create(tmp_path / "keys", kek_id="emr-archive-kek")
    store = SealedStore(inner, keys=keys, settings=SealSettings())
    lease = take(store, "79001", "run-secretive")
    (version,) = inner.list_versions(LEASE_PREFIX)
    raw = inner.get(version.key, version_id=version.version_id)
    assert raw.startswith(MAGIC)
    assert b"run-secretive" not in raw
    with pytest.raises(RunInProgressError, match="run run-secretive"):
        take(store, "79001", "run-b")
    lease.release(NOW)


def test_a_run_killed_on_this_machine_is_taken_over_at_once_elsewhere_not(tmp_path: Path) -> None:
    """Killed (no release): its lease stays live; the next run on its machine finds its run id
    in the lock file it now holds and takes over; another machine waits for the expiry."""
    store = MemoryStore()
    killed = RunLock.acquire(
        tmp_path / "m1", run_id="run-a", now=NOW, facility="79001", store=store
    )
    killed._keeper._stop.set()  # type: ignore[union-attr]  # its thread and file die with it
    killed._handle.close()  # type: ignore[union-attr]
    with pytest.raises(RunInProgressError, match="run run-a"):
        RunLock.acquire(tmp_path / "m2", run_id="run-b", now=NOW, facility="79001", store=store)
    RunLock.acquire(
        tmp_path / "m1", run_id="run-c", now=NOW, facility="79001", store=store
    ).release()


def test_a_lease_of_a_process_gone_from_this_machine_is_taken_over_a_live_one_not() -> None:
    """A killed run's lease, once something else took the local lock in between (so the run
    file no longer names the dead run): the process table still says its holder is gone."""
    import socket
    import subprocess

    from archive.pipeline.lease import LeaseRecord

    store = MemoryStore()
    ended = subprocess.Popen(["true"])
    ended.wait()
    alive = subprocess.Popen(["sleep", "30"])
    try:
        for gen, pid, run in ((1, alive.pid, "run-alive"), (2, ended.pid, "run-dead")):
            record = LeaseRecord(
                run_id=run, host=socket.gethostname(), pid=pid, acquired=NOW, expires=NOW + TTL
            )
            store.create(lease_key("79001", gen), record.encode())
            if pid == alive.pid:
                with pytest.raises(RunInProgressError, match="run run-alive"):
                    take(store, "79001", "run-b")
        taker = take(store, "79001", "run-b")
        assert current(store, "79001")[1] == taker.record
        elsewhere = LeaseRecord(  # another machine's process table is not ours to read
            run_id="run-far",
            host="not-" + socket.gethostname(),
            pid=ended.pid,
            acquired=NOW,
            expires=NOW + TTL,
        )
        store.create(lease_key("79002", 1), elsewhere.encode())
        with pytest.raises(RunInProgressError, match="run run-far"):
            take(store, "79002", "run-c")
    finally:
        alive.kill()
        alive.wait()
