"""The audit log's hash chain: every edit, removal or reordering of an event is detected."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.audit import AUDIT_PREFIX, AuditEvent, AuditLog, SegmentChain
from archive.audit import chain as audit_chain
from archive.core.errors import AuditChainError
from tests.support.chains import CHAIN_KEY
from tests.support.memstore import MemoryStore

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)
PSEUDONYM = "p1_" + "ab" * 32


def _event(i: int, *, actor: str = "nurse.lan", action: str = "hold.add") -> AuditEvent:
    return AuditEvent(
        actor=actor,
        role="records-officer",
        action=action,
        recorded=NOW + timedelta(minutes=i),
        entities=(("encounter", f"E{i}"), ("patient", PSEUDONYM)),
        reason="case 12/2026",
        detail={"versions": i},
    )


@pytest.fixture
def log(tmp_path: Path) -> AuditLog:
    log = AuditLog.open(tmp_path / "audit", MemoryStore(), key=CHAIN_KEY)
    for segment in range(3):
        for i in range(3):
            log.append(_event(segment * 3 + i, actor=f"actor{segment}"))
        log.flush(now=NOW)
    return log


def _segment(tmp_path: Path, n: int) -> Path:
    return tmp_path / "audit" / "segments" / f"{n:010d}.jsonl"


def test_an_intact_log_verifies_locally_and_against_the_bucket(log: AuditLog) -> None:
    report = log.verify_chain()
    assert report.passed, report.reason
    assert (report.events, report.segments) == (9, 3)


def test_show_filters_by_actor_action_and_time(log: AuditLog) -> None:
    assert [e.entities[0][1] for e in log.show(actor="actor1")] == ["E3", "E4", "E5"]
    assert len(log.show(action="hold")) == 9
    assert log.show(action="hol") == []
    assert len(log.show(since=NOW + timedelta(minutes=7))) == 2


def test_an_edited_event_is_detected(log: AuditLog, tmp_path: Path) -> None:
    path = _segment(tmp_path, 2)
    lines = path.read_bytes().splitlines()
    record = json.loads(lines[1])
    record["actor"] = "someone-else"
    lines[1] = json.dumps(record, sort_keys=True, separators=(",", ":")).encode()
    path.write_bytes(b"\n".join(lines) + b"\n")
    report = log.verify_chain(against_bucket=False)
    assert not report.passed
    assert "line 3" in report.reason
    assert "edited, removed or reordered" in report.reason


def test_an_edited_newest_event_is_detected_by_head(log: AuditLog, tmp_path: Path) -> None:
    path = _segment(tmp_path, 3)
    *older, newest = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join([*older, newest.replace(b'"E8"', b'"E0"')]) + b"\n")
    assert "HEAD" in log.verify_chain(against_bucket=False).reason


def test_a_removed_event_is_detected(log: AuditLog, tmp_path: Path) -> None:
    path = _segment(tmp_path, 1)
    lines = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join(lines[:1] + lines[2:]) + b"\n")
    assert not log.verify_chain(against_bucket=False).passed


def test_reordered_events_are_detected(log: AuditLog, tmp_path: Path) -> None:
    path = _segment(tmp_path, 2)
    a, b, c = path.read_bytes().splitlines()
    path.write_bytes(b"\n".join([b, a, c]) + b"\n")
    assert not log.verify_chain(against_bucket=False).passed


def test_a_removed_segment_is_detected(log: AuditLog, tmp_path: Path) -> None:
    _segment(tmp_path, 2).unlink()
    assert "segment" in log.verify_chain(against_bucket=False).reason


def test_a_consistent_local_rewrite_is_caught_by_the_bucket(tmp_path: Path) -> None:
    store = MemoryStore()
    log = AuditLog.open(tmp_path / "audit", store, key=CHAIN_KEY)
    log.append(_event(1))
    log.flush(now=NOW)
    # Someone holding the keyring (or a restored old copy) rewrites the local log consistently:
    forged = SegmentChain(tmp_path / "forged", MemoryStore(), prefix=AUDIT_PREFIX, key=CHAIN_KEY)
    forged.append([_event(1, actor="forger").to_json()], now=NOW)
    for name in ("HEAD", "segments/0000000001.jsonl"):
        (tmp_path / "audit" / name).write_bytes((tmp_path / "forged" / name).read_bytes())
    assert log.verify_chain(against_bucket=False).passed
    # ...but the digest in the locked copy's name disagrees, and no object had to be read.
    assert "locked copy" in log.verify_chain().reason


def test_a_head_sealed_with_another_key_is_refused(log: AuditLog, tmp_path: Path) -> None:
    other = AuditLog.open(tmp_path / "audit", MemoryStore(), key=b"another-keyring" * 2)
    report = other.verify_chain(against_bucket=False)
    assert not report.passed
    assert "seal" in report.reason


def test_appending_to_a_broken_log_is_refused(log: AuditLog, tmp_path: Path) -> None:
    _segment(tmp_path, 1).unlink()
    log.append(_event(99))
    with pytest.raises(AuditChainError):
        log.flush(now=NOW)


def test_segments_are_locked_in_the_bucket(tmp_path: Path) -> None:
    store = MemoryStore()
    log = AuditLog.open(tmp_path / "audit", store, key=CHAIN_KEY)
    log.append(_event(1))
    assert log.flush(now=NOW) == 1
    assert log.flush(now=NOW) == 0  # nothing buffered: no empty segment
    (version,) = store.list_versions(AUDIT_PREFIX)
    assert version.key.startswith(AUDIT_PREFIX + "0000000001.")  # .<keyed digest>.jsonl
    head = store.latest(version.key)
    assert head is not None
    assert head.lock.mode == "COMPLIANCE"
    assert head.lock.retain_until is not None
    assert head.lock.retain_until.year == 2126


def test_a_patient_entity_must_be_a_pseudonym() -> None:
    with pytest.raises(ValueError, match="pseudonym"):
        AuditEvent(actor="a", role="r", action="x", recorded=NOW, entities=(("patient", "BN01"),))


def test_an_edit_after_the_log_was_read_is_noticed_by_the_same_process(
    log: AuditLog, tmp_path: Path
) -> None:
    assert len(log.show()) == 9  # read and checked once; later reads check what changed
    newest = _segment(tmp_path, 3)
    newest.write_bytes(newest.read_bytes().replace(b'"E7"', b'"E1"'))
    with pytest.raises(AuditChainError):  # the newest segment is looked at on every read
        log.show()


def test_an_edit_to_an_older_segment_is_noticed_at_the_next_sweep(
    log: AuditLog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert len(log.show()) == 9
    older = _segment(tmp_path, 1)
    older.write_bytes(older.read_bytes().replace(b'"E1"', b'"E7"'))
    monkeypatch.setattr(audit_chain, "SWEEP_S", 0.0)  # the minute has passed
    with pytest.raises(AuditChainError):
        log.show()
    log.append(_event(99))
    with pytest.raises(AuditChainError):
        log.flush(now=NOW)
    assert not log.verify_chain(against_bucket=False).passed  # and verify rereads everything


def test_segments_another_process_appends_are_chained_and_read(tmp_path: Path) -> None:
    store = MemoryStore()
    ours, theirs = (AuditLog.open(tmp_path / "audit", store, key=CHAIN_KEY) for _ in range(2))
    ours.append(_event(1))
    ours.flush(now=NOW)
    assert len(ours.show()) == 1
    theirs.append(_event(2, actor="other"))
    theirs.flush(now=NOW)
    ours.append(_event(3))
    ours.flush(now=NOW)  # chained after the other process's segment, not over it
    assert [e.actor for e in ours.show()] == ["nurse.lan", "other", "nurse.lan"]
    assert ours.verify_chain().passed
    assert len(theirs.show()) == 3
