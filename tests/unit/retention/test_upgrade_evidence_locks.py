"""An upgrade extends each version's evidence record with it, at both sites of a two-site store;
a version whose record's own lock was already extended (a crash between the two extensions)
still gets its evidence extended on the rerun; a pending one is counted, not skipped silently."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from archive.audit import AuditLog
from archive.store import ObjectStore, ReplicatedStore, evidence_key
from retention import Register
from retention.policy import LockAction
from retention.upgrades import PlannedChange, UpgradePlan, apply_upgrade
from tests.support.chains import CHAIN_KEY
from tests.support.memstore import MemoryStore

NOW = datetime(2026, 12, 1, tzinfo=UTC)
OLD = datetime(2036, 12, 31, 17, tzinfo=UTC)
NEW = datetime(2056, 12, 31, 17, tzinfo=UTC)
WITH_EVIDENCE = "records/v1/79001/ab/r1ab" + "0" * 36
PENDING = "records/v1/79001/cd/r1cd" + "0" * 36


def _change(key: str) -> PlannedChange:
    return PlannedChange(
        encounter_id=key[-6:],
        object_key=key,
        old_class="ordinary",
        new_class="death",
        current_until=OLD,
        new_until=NEW,
        action=LockAction.EXTEND,
        cause="facts",
    )


def _until(store: ObjectStore, key: str) -> datetime | None:
    head = store.latest(key)
    assert head is not None, key
    return head.lock.retain_until


def test_evidence_locks_follow_the_record_at_both_sites_and_after_a_crash(tmp_path: Path) -> None:
    primary, replica = MemoryStore(), MemoryStore(bucket="replica")
    store = ReplicatedStore(primary=primary, replica=replica)
    version = store.put_locked(WITH_EVIDENCE, b"sealed record", retain_until=OLD).version_id
    ers = evidence_key(object_key=WITH_EVIDENCE, version_id=version)
    store.put_locked(ers, b"sealed evidence record", retain_until=OLD)
    pending_version = store.put_locked(PENDING, b"another", retain_until=OLD).version_id
    # An earlier attempt extended this version's own lock, then died before its evidence.
    store.extend_retention(WITH_EVIDENCE, version_id=version, retain_until=NEW)

    register = Register.open(tmp_path / "register", store, key=CHAIN_KEY)
    audit = AuditLog.open(tmp_path / "audit", MemoryStore(bucket="audit"), key=CHAIN_KEY)
    plan = UpgradePlan("policy v2", (_change(WITH_EVIDENCE), _change(PENDING)), ())
    result = apply_upgrade(plan, register=register, audit=audit, by="lan", now=NOW)

    assert (result.extended_versions, result.already_later) == (1, 1)
    assert (result.extended_evidence, result.evidence_pending) == (1, 1)
    for site in (primary, replica):
        assert _until(site, ers) == NEW
        assert _until(site, WITH_EVIDENCE) == NEW
        assert _until(site, PENDING) == NEW
    pending_ers = evidence_key(object_key=PENDING, version_id=pending_version)
    assert primary.latest(pending_ers) is None  # nothing written for it: its run locks it later
    events = {e["object_key"]: e for e in register.events("lock.extended")}
    assert events[PENDING]["evidence_pending"] == 1
    assert events[WITH_EVIDENCE]["evidence_extended"] == 1


def test_the_evidence_stage_finds_the_record_behind_an_evidence_key() -> None:
    # What lets the nightly run lock a pending evidence record as long as its (upgraded) record.
    from archive.store.naming import record_of_evidence_key

    for version in ("v00000001", "odd version/id"):  # the second is stored as its digest
        key = evidence_key(object_key=WITH_EVIDENCE, version_id=version)
        assert record_of_evidence_key(key) == WITH_EVIDENCE
    assert record_of_evidence_key("evidence/v1/manifests/000001.ers") is None
