"""Synchronous dual writes and repair between two sites (in-memory stores: logic only; the
real two-SeaweedFS test is tests/integration/infra/test_second_site.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from archive.core.errors import ReplicaError, StoreUnavailableError
from archive.store import PutResult, ReplicatedStore, sha256_hex
from archive.store.repair import repair
from tests.support.memstore import MemoryStore

UNTIL = datetime(2056, 1, 1, tzinfo=UTC)
KEY = "records/v1/01001/ab/abc.sealed"


class DownStore(MemoryStore):
    """A site that answers nothing (its network is cut)."""

    def put_locked(self, key: str, data: bytes, *, retain_until: datetime) -> PutResult:
        raise StoreUnavailableError("site down")

    def latest(self, key: str) -> None:
        raise StoreUnavailableError("site down")


def test_a_write_returns_only_once_both_sites_hold_it_under_the_same_lock() -> None:
    primary, replica = MemoryStore(), MemoryStore()
    put = ReplicatedStore(primary=primary, replica=replica).put_locked(
        KEY, b"x", retain_until=UNTIL
    )
    copy = replica.latest(KEY)
    assert copy is not None
    assert copy.sha256 == put.sha256 == sha256_hex(b"x")
    assert copy.lock.retain_until == UNTIL
    assert copy.lock.mode == "COMPLIANCE"


def test_a_replica_down_fails_the_write_retryable_and_the_retry_completes_it() -> None:
    primary = MemoryStore()
    with pytest.raises(ReplicaError):
        ReplicatedStore(primary=primary, replica=DownStore()).put_locked(
            KEY, b"x", retain_until=UNTIL
        )
    assert primary.latest(KEY) is not None  # the primary's copy stays; nothing is catalogued
    replica = MemoryStore()
    again = ReplicatedStore(primary=primary, replica=replica)
    head = again.latest(KEY)  # a resumed deposit finds the primary's copy: completed here
    assert head is not None
    copy = replica.latest(KEY)
    assert copy is not None
    assert copy.sha256 == head.sha256
    assert copy.lock.retain_until == UNTIL


def test_holds_and_extensions_reach_the_replica() -> None:
    primary, replica = MemoryStore(), MemoryStore()
    both = ReplicatedStore(primary=primary, replica=replica)
    put = both.put_locked(KEY, b"x", retain_until=UNTIL)
    both.set_legal_hold(KEY, version_id=put.version_id, on=True)
    both.extend_retention(KEY, version_id=put.version_id, retain_until=UNTIL + timedelta(days=1))
    copy = replica.latest(KEY)
    assert copy is not None
    assert copy.lock.legal_hold
    assert copy.lock.retain_until == UNTIL + timedelta(days=1)


def test_a_replica_holding_other_bytes_is_never_overwritten() -> None:
    primary, replica = MemoryStore(), MemoryStore()
    replica.put_locked(KEY, b"forged", retain_until=UNTIL)
    with pytest.raises(ReplicaError, match="other bytes"):
        ReplicatedStore(primary=primary, replica=replica).put_locked(KEY, b"x", retain_until=UNTIL)
    copy = replica.latest(KEY)
    assert copy is not None
    assert copy.sha256 == sha256_hex(b"forged")


def test_disposition_deletes_at_both_sites() -> None:
    primary, replica = MemoryStore(), MemoryStore()
    past = datetime.now(UTC) - timedelta(seconds=1)
    both = ReplicatedStore(primary=primary, replica=replica)
    put = both.put_locked(KEY, b"x", retain_until=past)
    both.delete_version(KEY, version_id=put.version_id)
    assert primary.latest(KEY) is None
    assert replica.latest(KEY) is None


def test_repair_copies_only_bytes_the_catalog_vouches_for() -> None:
    primary, replica = MemoryStore(), MemoryStore()
    good = primary.put_locked(KEY, b"good", retain_until=UNTIL)
    primary.set_legal_hold(KEY, version_id=good.version_id, on=True)
    bad_key = "records/v1/01001/ab/def.sealed"
    bad = primary.put_locked(bad_key, b"original", retain_until=UNTIL)
    primary.corrupt(bad_key, version_id=bad.version_id, data=b"rotted")
    orphan = "records/v1/01001/ab/orphan.sealed"
    primary.put_locked(orphan, b"nobody catalogued me", retain_until=UNTIL)
    meta = primary.put_locked("catalog/manifest-1.sealed", b"m", retain_until=UNTIL)
    catalogued = {KEY: good.sha256, bad_key: sha256_hex(b"original")}

    plan = repair(primary, replica, catalogued=catalogued, plan_only=True)
    assert replica.latest(KEY) is None  # a plan writes nothing
    assert set(plan.copied) == {KEY, meta.key}

    report = repair(primary, replica, catalogued=catalogued)
    assert set(report.copied) == {KEY, meta.key}
    assert report.held == (KEY,)
    assert {(r.key, r.reason_code) for r in report.refused} == {
        (bad_key, "repair.source_mismatch"),
        (orphan, "repair.uncatalogued"),
    }
    copy = replica.latest(KEY)
    assert copy is not None
    assert copy.lock.legal_hold
    assert copy.lock.retain_until == UNTIL
    assert replica.latest(bad_key) is None
    assert replica.latest(orphan) is None
    assert repair(primary, replica, catalogued=catalogued).copied == ()  # idempotent
