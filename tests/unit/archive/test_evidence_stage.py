"""The evidence stage's promises, on the in-memory store: a stage stopped by the store after its
timestamp resumes with the saved token (no second timestamp), and a TSA outage leaves documents
pending until one later tree covers every pending run."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from asn1crypto import cms

from archive.core.errors import StoreUnavailableError, TimestampUnavailableError
from archive.core.settings import SealSettings
from archive.evidence import DataObject, TsaTrust, WeakAlgorithms, validate_evidence
from archive.pipeline.evidence_stage import EvidenceStage
from archive.pipeline.evidence_state import DONE, TREES, EvidenceState, Member
from archive.seal import LocalKeyring
from archive.store import ObjectHead, PutResult, SealedStore, evidence_key
from archive.store.naming import record_of_evidence_key
from tests.support.evidence import local_tsa
from tests.support.memstore import MemoryStore

NOW = datetime(2026, 12, 1, tzinfo=UTC)
TSA = local_tsa(NOW - timedelta(days=365), NOW + timedelta(days=3650), "stage TSA")
UNTIL = datetime(2056, 1, 1, tzinfo=UTC)


class FlakyStore(MemoryStore):
    """Refuses writes under ``evidence/v1/records/`` while ``down``."""

    down = False

    def put_locked(self, key: str, data: bytes, *, retain_until: datetime) -> PutResult:
        if self.down and key.startswith("evidence/v1/records/"):
            raise StoreUnavailableError("the store does not answer")
        return super().put_locked(key, data, retain_until=retain_until)


def _documents(run: str, n: int) -> dict[str, tuple[bytes, Member]]:
    out = {}
    for i in range(n):
        pdf = f"{run} pdf {i}".encode()
        key = evidence_key(object_key=f"records/v1/BV01/ab/r1{i:038x}", version_id=f"{run}v{i}")
        out[key] = (pdf, Member(key, hashlib.sha256(pdf).hexdigest(), UNTIL))
    return out


def _stage(
    tmp_path: Path, store: MemoryStore, calls: list[bytes], up: Callable[[], bool]
) -> tuple[EvidenceStage, SealedStore]:
    sealed = SealedStore(
        store, keys=LocalKeyring.create(tmp_path / "keys", kek_id="k"), settings=SealSettings()
    )

    def stamp(root: bytes) -> cms.ContentInfo:
        if not up():
            raise TimestampUnavailableError("the TSA is down")
        calls.append(root)
        return TSA.stamp(root, "sha256", NOW)

    stage = EvidenceStage(
        EvidenceState(tmp_path / "state", sealed),
        sealed,
        timestamper=stamp,
        check=TsaTrust([TSA.root]),
        cache=tmp_path / "cache",
    )
    return stage, sealed


def _proven(sealed: SealedStore, documents: dict[str, tuple[bytes, Member]]) -> int:
    proven = 0
    for key, (pdf, _) in documents.items():
        head = sealed.latest(key)
        assert head is not None, key
        verdict = validate_evidence(
            sealed.get(key, version_id=head.version_id),
            [DataObject(data=pdf)],
            as_of=NOW,
            check_timestamp=TsaTrust([TSA.root]),
            weak=WeakAlgorithms(),
        )
        proven += verdict.ok
    return proven


def test_a_stage_stopped_after_its_timestamp_resumes_with_the_saved_token(tmp_path: Path) -> None:
    store, calls = FlakyStore(), list[bytes]()
    stage, sealed = _stage(tmp_path, store, calls, lambda: True)
    docs = _documents("run1", 5)
    stage.hold("run1", [m for _, m in docs.values()])
    store.down = True
    stopped = stage.complete_safely("run1", now=NOW, extra=lambda _r: [], held=5)
    assert (stopped.error, stopped.pending, stopped.failures()) == (
        "StoreUnavailableError",
        5,
        {"evidence.error": 1},
    )
    assert len(calls) == 1
    assert len(list(store.list_versions(TREES))) == 1
    assert not list(store.list_versions(DONE))

    store.down = False
    resumed = stage.complete("run2", now=NOW, extra=lambda _r: [])
    assert (resumed.written, resumed.timestamps, resumed.pending) == (5, 0, 0)
    assert len(calls) == 1  # the saved token, not a second timestamp
    assert _proven(sealed, docs) == 5
    again = stage.complete("run3", now=NOW, extra=lambda _r: [])
    assert (again.written, again.timestamps) == (0, 0)


def test_pending_runs_are_covered_by_the_next_tree_with_one_timestamp(tmp_path: Path) -> None:
    store, calls, tsa_up = MemoryStore(), list[bytes](), [False]
    stage, sealed = _stage(tmp_path, store, calls, lambda: tsa_up[0])
    first, second = _documents("run1", 3), _documents("run2", 4)
    stage.hold("run1", [m for _, m in first.values()])
    down = stage.complete("run1", now=NOW, extra=lambda _r: [])
    assert (down.pending, down.written, down.reason) == (3, 0, "evidence.tsa_unavailable")

    tsa_up[0] = True
    stage.hold("run2", [m for _, m in second.values()])
    both = stage.complete("run2", now=NOW, extra=lambda _r: [])
    assert (both.written, both.timestamps, both.pending) == (7, 1, 0)
    assert len(calls) == 1
    assert _proven(sealed, {**first, **second}) == 7
    assert {v.key for v in store.list_versions(DONE)} == {DONE + "run1", DONE + "run2"}


class CountingStore(MemoryStore):
    """Counts the lock look-ups (HEAD, or latest = list + HEAD) of record objects."""

    record_heads = 0

    def latest(self, key: str) -> ObjectHead | None:
        self.record_heads += key.startswith("records/")
        return super().latest(key)

    def head(self, key: str, *, version_id: str) -> ObjectHead:
        self.record_heads += key.startswith("records/")
        return super().head(key, version_id=version_id)


def _archived(store: MemoryStore, run: str, n: int) -> dict[str, tuple[bytes, Member]]:
    """``n`` records stored and locked until UNTIL, as a run archives them."""
    out = {}
    for i in range(n):
        pdf, record = f"{run} pdf {i}".encode(), f"records/v1/BV01/ab/{run}{i:036x}"
        version = store.put_locked(record, b"sealed " + pdf, retain_until=UNTIL).version_id
        key = evidence_key(object_key=record, version_id=version)
        out[key] = (pdf, Member(key, hashlib.sha256(pdf).hexdigest(), UNTIL))
    return out


def test_an_upgrade_while_pending_reaches_the_evidence_lock_and_only_carried_members_cost_a_head(
    tmp_path: Path,
) -> None:
    store, calls, tsa_up = CountingStore(), list[bytes](), [False]
    stage, sealed = _stage(tmp_path, store, calls, lambda: tsa_up[0])
    pending, fresh = _archived(store, "run1", 3), _archived(store, "run2", 4)
    stage.hold("run1", [m for _, m in pending.values()])
    assert stage.complete("run1", now=NOW, extra=lambda _r: []).pending == 3

    # A retention upgrade while run1's evidence is pending: it extends the record, finds no
    # evidence record to extend (retention/upgrades.py) and leaves it to the nightly run.
    upgraded = next(iter(pending))
    record = record_of_evidence_key(upgraded)
    assert record is not None
    later = UNTIL + timedelta(days=3650)
    head = store.latest(record)
    assert head is not None
    store.extend_retention(record, version_id=head.version_id, retain_until=later)

    tsa_up[0] = True
    stage2 = EvidenceStage(  # the next night's process: a new stage over the same state
        EvidenceState(tmp_path / "state", sealed),
        sealed,
        timestamper=lambda root: TSA.stamp(root, "sha256", NOW),
        check=TsaTrust([TSA.root]),
        cache=tmp_path / "cache",
    )
    stage2.hold("run2", [m for _, m in fresh.values()])
    store.record_heads = 0
    done = stage2.complete("run2", now=NOW, extra=lambda _r: [])
    heads = store.record_heads
    assert (done.written, done.pending) == (7, 0)
    locks = {}
    for key in (*pending, *fresh):
        ers = sealed.latest(key)
        assert ers is not None
        locks[key] = ers.lock.retain_until
    assert locks.pop(upgraded) == later  # at least as long as its upgraded record
    assert set(locks.values()) == {UNTIL}
    assert _proven(sealed, {**pending, **fresh}) == 7
    assert heads == 3  # run1's carried members only (was 7: run2 locked its own, no HEAD)
