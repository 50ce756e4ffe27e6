"""Renewals made after a retention upgrade keep the upgraded date: the upgrade leaves a lock floor
on the record's newest token, the next timestamp renewal (or hash-tree renewal) locks its new
object at least that long and passes the floor on to its own token. Also with the upgrade
landing in the middle of a renewal, a renewal killed after its ATS object, and an upgrade killed
between the floor and the parts (each then rerun)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from archive.audit import AuditLog
from archive.core.sections import EvidenceSettings
from archive.evidence import TsaTrust
from archive.pipeline.evidence_current import CurrentEvidence, current_evidence
from archive.pipeline.evidence_floor import newest_token, read_floor
from archive.pipeline.evidence_rehash import Document, HashTreeRenewal
from archive.pipeline.evidence_renewal import EvidenceRenewal
from archive.pipeline.evidence_renewal_state import RenewalState
from archive.store import SealedStore, evidence_key
from retention import Register
from retention import upgrades as upgrades_module
from retention.policy import LockAction
from retention.upgrades import ApplyResult, PlannedChange, UpgradePlan, apply_upgrade
from tests.support.chains import CHAIN_KEY
from tests.support.evidence import local_tsa
from tests.support.memstore import MemoryStore
from tests.support.renewal_world import NOW, TRUST, TSA1, TSA2, UNTIL, nightly, world

NEW = datetime(2076, 12, 31, 17, tzinfo=UTC)  # the upgraded retain-until (UNTIL is 2056)
NINE = NOW + timedelta(days=9 * 365 + 200)  # TSA2 ends within the renewal horizon
TSA3 = local_tsa(NINE - timedelta(days=1), NINE + timedelta(days=3650), "TSA 3")
TRUST3 = TsaTrust([TSA1.root, TSA2.root, TSA3.root])

Documents = dict[tuple[str, str], bytes]


class DiedError(Exception):
    """A kill -9 at one step (the unit-level stand-in)."""


def _upgrade(sealed: SealedStore, tmp_path: Path, key: str) -> ApplyResult:
    register = Register.open(tmp_path / "register", sealed.inner, key=CHAIN_KEY, meta_store=sealed)
    audit = AuditLog.open(tmp_path / "audit", MemoryStore(bucket="audit"), key=CHAIN_KEY)
    change = PlannedChange(
        encounter_id="enc-1",
        object_key=key,
        old_class="ordinary",
        new_class="death",
        current_until=UNTIL,
        new_until=NEW,
        action=LockAction.EXTEND,
        cause="facts",
    )
    plan = UpgradePlan("policy v2", (change,), ())
    return apply_upgrade(plan, register=register, audit=audit, by="lan", now=NOW)


def _renewed_once(tmp_path: Path) -> tuple[SealedStore, Documents, tuple[str, str]]:
    """Two nightly trees renewed once by TSA2 (their records stored), and the first record."""
    sealed, documents = world(tmp_path, trees=2, records=True)
    renewal = EvidenceRenewal(
        sealed,
        settings=EvidenceSettings(),
        timestamper=lambda d, a: TSA2.stamp(d, a, NOW),
        check=TRUST,
    )
    assert renewal.renew(NOW).timestamps == 1
    return sealed, documents, sorted(documents)[0]


def _second_renewal(
    sealed: SealedStore, tmp_path: Path, documents: Documents, on_step: Callable[[str], None]
) -> EvidenceRenewal:
    """Nine years on: a nightly run shows the TSA stamps with TSA3, so the renewal token is due."""
    nightly(sealed, tmp_path, TSA3, NINE, trees=1, documents=dict(documents))
    return EvidenceRenewal(
        sealed,
        settings=EvidenceSettings(),
        timestamper=lambda d, a: TSA3.stamp(d, a, NINE),
        check=TRUST3,
        on_step=on_step,
    )


def _current(sealed: SealedStore, record: tuple[str, str]) -> CurrentEvidence:
    current = current_evidence(sealed, object_key=record[0], version_id=record[1])
    assert current is not None
    return current


def _assert_kept_until_new(
    sealed: SealedStore, record: tuple[str, str], renewals: int, *, floor: bool = True
) -> None:
    current = _current(sealed, record)
    assert current.renewals == renewals
    short = current.locked_until(NEW)
    assert short is None, f"{short.key} locked only until {short.lock.retain_until}"
    if not floor:
        return
    token = newest_token(current)
    assert token is not None
    assert read_floor(sealed, token) == NEW  # the next renewal keeps it too


def test_a_renewal_after_an_upgrade_locks_its_object_until_the_upgraded_date(
    tmp_path: Path,
) -> None:
    sealed, documents, record = _renewed_once(tmp_path)
    result = _upgrade(sealed, tmp_path, record[0])
    assert (result.extended_versions, result.extended_evidence) == (1, 2)  # .ers and its ATS
    assert _current(sealed, record).locked_until(NEW) is None

    done = _second_renewal(sealed, tmp_path, documents, lambda _s: None).renew(NINE)
    assert (done.timestamps, done.written) == (1, 1)
    _assert_kept_until_new(sealed, record, renewals=2)
    # a record of a tree not upgraded keeps its own date for its own parts
    other = sorted(documents)[3]
    assert _current(sealed, other).parts[0].lock.retain_until == UNTIL + timedelta(days=1)


@pytest.mark.parametrize("step", ["timestamped", "ats-written"])
def test_an_upgrade_in_the_middle_of_a_renewal_is_kept(tmp_path: Path, step: str) -> None:
    """Before the ATS object (the floor is on the old token, read after the put) or after it
    (the upgrade walks through it and floors the new token)."""
    sealed, documents, record = _renewed_once(tmp_path)
    fired: list[str] = []

    def upgrade_at(name: str) -> None:
        if name == step and not fired:
            fired.append(name)
            _upgrade(sealed, tmp_path, record[0])

    _second_renewal(sealed, tmp_path, documents, upgrade_at).renew(NINE)
    assert fired == [step]
    _assert_kept_until_new(sealed, record, renewals=2)


def test_a_renewal_killed_after_its_ats_object_passes_the_floor_on_when_rerun(
    tmp_path: Path,
) -> None:
    sealed, documents, record = _renewed_once(tmp_path)
    _upgrade(sealed, tmp_path, record[0])

    def die(name: str) -> None:
        if name == "ats-written":
            raise DiedError(name)

    with pytest.raises(DiedError):
        _second_renewal(sealed, tmp_path, documents, die).renew(NINE)
    current = _current(sealed, record)
    assert current.locked_until(NEW) is None  # the object itself was locked before the kill
    token = newest_token(current)
    assert token is not None
    assert read_floor(sealed, token) is None  # ... its token's floor was not yet written
    rerun = EvidenceRenewal(
        sealed,
        settings=EvidenceSettings(),
        timestamper=lambda d, a: TSA3.stamp(d, a, NINE),
        check=TRUST3,
    ).renew(NINE)
    assert (rerun.resumed, rerun.timestamps, rerun.written) == (1, 0, 0)
    _assert_kept_until_new(sealed, record, renewals=2)


def test_an_upgrade_killed_between_the_floor_and_the_parts_completes_on_rerun(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sealed, _, record = _renewed_once(tmp_path)
    real = upgrades_module._extend_one

    def died(*_args: object, **_kw: object) -> bool:
        raise DiedError("extend")

    monkeypatch.setattr(upgrades_module, "_extend_one", died)
    with pytest.raises(DiedError):
        _upgrade(sealed, tmp_path, record[0])
    token = newest_token(_current(sealed, record))
    assert token is not None
    assert read_floor(sealed, token) == NEW  # the floor came first
    assert _current(sealed, record).locked_until(NEW) is not None  # the parts not yet
    monkeypatch.setattr(upgrades_module, "_extend_one", real)
    _upgrade(sealed, tmp_path, record[0])  # the register was not written: planned again
    _assert_kept_until_new(sealed, record, renewals=1)


@pytest.mark.parametrize("when", ["before", "timestamped"])
def test_a_hash_tree_renewal_after_an_upgrade_locks_the_new_chain_as_long(
    tmp_path: Path, when: str
) -> None:
    """Upgraded before the job, or after its batch was saved (its chains not yet written)."""
    sealed, documents = world(tmp_path, trees=1, records=True)
    record = sorted(documents)[0]
    if when == "before":
        _upgrade(sealed, tmp_path, record[0])
    catalogued = [
        Document(
            evidence_key(object_key=key, version_id=version),
            hashlib.sha256(pdf).hexdigest(),
            UNTIL,  # the catalog row's date: the upgrade did not change it
            lambda pdf=pdf: pdf,  # type: ignore[misc]
        )
        for (key, version), pdf in sorted(documents.items())
    ]

    def upgrade_at(step: str) -> None:
        if step == when:
            _upgrade(sealed, tmp_path, record[0])

    job = HashTreeRenewal(
        sealed,
        timestamper=lambda d, a: TSA2.stamp(d, a, NOW),
        check=TRUST,
        batch_size=5,
        on_step=upgrade_at,
    )
    done = job.renew(catalogued, "sha512", NOW + timedelta(days=1))
    assert (done.renewed, done.timestamps) == (3, 1)
    state = RenewalState(sealed)
    (batch_id,) = state.hash_batch_ids()
    saved = max(e.retain_until for e in state.load_hash_batch(batch_id).entries)
    # before: the batch saved the upgraded date as the document's, so the new chain's next
    # timestamp renewal keeps it; after: the batch has the old date, the floor carries the new
    _assert_kept_until_new(sealed, record, renewals=1, floor=when != "before")
    assert saved == (NEW if when == "before" else UNTIL)
    other = _current(sealed, sorted(documents)[1])
    assert other.parts[-1].lock.retain_until == UNTIL  # the others keep their own date
