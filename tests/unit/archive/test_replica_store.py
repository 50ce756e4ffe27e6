"""Synchronous dual writes and repair between two sites (in-memory stores: logic only; the
real two-SeaweedFS test is tests/integration/infra/test_second_site.py)."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.core.errors import EnvelopeFormatError, ReplicaError, StoreUnavailableError
from archive.core.settings import SealSettings
from archive.seal import LocalKeyring, ObjectIdentity, check_shape, seal
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


def sealed(tmp_path: Path, data: bytes, *, frame: int = 4096) -> bytes:
    ring = LocalKeyring.open_or_create(tmp_path / "keys", kek_id="kek")
    where = ObjectIdentity("b", "catalog/x", "meta:catalog/x")
    return seal(data, identity=where, keys=ring, settings=SealSettings(frame_size=frame))


def test_repair_copies_only_bytes_the_catalog_vouches_for(tmp_path: Path) -> None:
    primary, replica = MemoryStore(), MemoryStore()
    good = primary.put_locked(KEY, b"good", retain_until=UNTIL)
    primary.set_legal_hold(KEY, version_id=good.version_id, on=True)
    bad_key = "records/v1/01001/ab/def.sealed"
    bad = primary.put_locked(bad_key, b"original", retain_until=UNTIL)
    primary.corrupt(bad_key, version_id=bad.version_id, data=b"rotted")
    orphan = "records/v1/01001/ab/orphan.sealed"
    primary.put_locked(orphan, b"nobody catalogued me", retain_until=UNTIL)
    manifest = sealed(tmp_path, b"m")
    meta = primary.put_locked("catalog/manifest-1.sealed", manifest, retain_until=UNTIL)
    # Bytes that hash to their upload checksum but were never an envelope (a foreign object) and
    # a cut envelope (stored cut: its checksum matches) are not spread.
    primary.put_locked("audit/foreign", b"not an envelope", retain_until=UNTIL)
    cut = sealed(tmp_path, os.urandom(9000))[:-5]
    primary.put_locked("evidence/v1/trees/cut", cut, retain_until=UNTIL)
    legacy = primary.put_locked("audit/segments/1.jsonl", b"{}", retain_until=UNTIL)
    catalogued = {KEY: good.sha256, bad_key: sha256_hex(b"original")}
    plain = ("audit/segments/",)

    plan = repair(primary, replica, catalogued=catalogued, plain_prefixes=plain, plan_only=True)
    assert replica.latest(KEY) is None  # a plan writes nothing
    assert set(plan.copied) == {KEY, meta.key, legacy.key}

    report = repair(primary, replica, catalogued=catalogued, plain_prefixes=plain, threads=3)
    assert set(report.copied) == {KEY, meta.key, legacy.key}
    assert report.held == (KEY,)
    assert {(r.key, r.reason_code) for r in report.refused} == {
        (bad_key, "repair.source_mismatch"),
        (orphan, "repair.uncatalogued"),
        ("audit/foreign", "repair.source_malformed"),
        ("evidence/v1/trees/cut", "repair.source_malformed"),
    }
    copy = replica.latest(KEY)
    assert copy is not None
    assert copy.lock.legal_hold
    assert copy.lock.retain_until == UNTIL
    assert replica.latest(bad_key) is None
    assert replica.latest(orphan) is None
    again = repair(primary, replica, catalogued=catalogued, plain_prefixes=plain)
    assert again.copied == ()  # idempotent


def test_a_whole_envelope_passes_the_keyless_shape_check_and_a_damaged_one_does_not(
    tmp_path: Path,
) -> None:
    whole = sealed(tmp_path, os.urandom(16384))  # incompressible, frames of 4 KiB: five frames
    check_shape(whole)
    header_end = whole.index(b"\x00", 60)  # somewhere after the fixed header: any cut breaks it
    for damaged in (whole[:-1], whole + b"\x00", whole[:header_end], b"EMRSEAL" + whole[7:]):
        with pytest.raises(EnvelopeFormatError):
            check_shape(damaged)
    # A spliced object: its first frame claims to be the final one.
    with pytest.raises(EnvelopeFormatError):
        check_shape(_first_frame_final(whole))


def _first_frame_final(whole: bytes) -> bytes:
    from archive.seal import read_header

    start = read_header(whole).length
    return whole[:start] + b"\x01" + whole[start + 1 :]
