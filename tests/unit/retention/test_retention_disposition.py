"""Disposition, holds and upgrades on the in-memory store with a pinned clock: which records are
proposed, what counts as linked, who may approve, and that nothing unexpired or held is touched."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from archive.audit import AuditLog
from archive.catalog import Catalog, CatalogRow
from archive.core.settings import SealSettings
from archive.seal import LocalKeyring
from archive.store import SealedStore, sha256_hex
from retention.candidates import Item, find_candidates
from retention.disposition import (
    LEGACY_PROPOSALS_PREFIX,
    PROPOSALS_PREFIX,
    Proposal,
    approve,
    load_proposal,
    propose,
)
from retention.holds import HoldScope, place_hold, release_hold
from retention.policy import LockAction, load_policy
from retention.register import Register, RetentionError, live_rows
from retention.upgrades import apply_upgrade, plan_upgrade
from tests.support.memstore import MemoryStore

NOW = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)  # pinned; the stored locks below are long past
PAST = datetime(2020, 1, 1, tzinfo=UTC)
FUTURE = datetime(2090, 1, 1, tzinfo=UTC)
DISCHARGED = datetime(2009, 6, 1, 3, tzinfo=UTC)
POLICY = load_policy()


@dataclass
class World:
    store: MemoryStore
    catalog: Catalog
    register: Register
    audit: AuditLog
    tmp: Path
    deletes: list[str] = field(default_factory=list)

    def rows(self) -> Any:
        return self.catalog.rows()


def _row(eid: str, patient: str, cls: str, until: datetime, store: MemoryStore) -> CatalogRow:
    key = f"records/v1/01001/00/{eid}"
    put = store.put_locked(key, eid.encode(), retain_until=until)
    return CatalogRow(
        encounter_id=eid,
        patient_pseudonym="p1_" + patient * 64,
        facility="01001",
        admitted_at=DISCHARGED - timedelta(days=2),
        discharged_at=DISCHARGED,
        retention_class=cls,
        retain_until=until,
        bucket="memory",
        object_key=key,
        version_id=put.version_id,
        pdf_sha256="a" * 64,
        data_sha256="b" * 64,
        sealed_sha256=put.sha256,
        sealed_size=put.size,
        signer_cert_sha256="c" * 64,
        signed_at=DISCHARGED,
        kek_id="k",
        kek_version=1,
        format_version=1,
        run_id="r1",
    )


@pytest.fixture
def world(tmp_path: Path) -> World:
    store = MemoryStore()
    rows = [
        _row("E-OLD", "1", "ordinary", PAST, store),
        _row("E-NEW", "2", "ordinary", FUTURE, store),
        _row("E-LINKED", "3", "ordinary", PAST, store),
        _row("E-DEATH", "3", "death", FUTURE, store),
        _row("E-SIB-1", "4", "ordinary", PAST, store),  # same patient, same class: not linked
        _row("E-SIB-2", "4", "ordinary", PAST, store),
        _row("E-MENTAL-GONE", "5", "ordinary", PAST, store),
        _row("E-MENTAL", "5", "mental", PAST, store),  # longer class, but expired too
    ]
    # Metadata goes to the bucket sealed, as in production (Register/AuditLog.for_settings).
    keys = LocalKeyring.create(tmp_path / "keys", kek_id="emr-archive-kek")
    sealed = SealedStore(store, keys=keys, settings=SealSettings())
    catalog = Catalog.open(tmp_path / "catalog", create=True)
    catalog.append(rows, run_id="r1", now=NOW, store=sealed, retain_until=FUTURE)
    register = Register.open(tmp_path / "retention", store, meta_store=sealed)
    return World(store, catalog, register, AuditLog.open(tmp_path / "audit", sealed), tmp_path)


def _ids(items: list[Item] | tuple[Item, ...]) -> set[str]:
    return {i.encounter_id for i in items}


def test_only_expired_unheld_unlinked_records_are_candidates(world: World) -> None:
    items, excluded = find_candidates(
        live_rows(world.rows(), world.register), world.register, policy=POLICY, now=NOW
    )
    assert _ids(items) == {"E-OLD", "E-SIB-1", "E-SIB-2", "E-MENTAL-GONE", "E-MENTAL"}
    assert excluded["linked to a longer-retention dossier"] == 1


def test_a_held_record_is_never_proposed(world: World) -> None:
    place_hold(
        HoldScope(encounter_ids=("E-OLD",)),
        case_ref="c",
        reason="r",
        by="lan",
        catalog_rows=world.rows(),
        register=world.register,
        audit=world.audit,
        now=NOW,
        tz="Asia/Ho_Chi_Minh",
    )
    items, excluded = find_candidates(
        live_rows(world.rows(), world.register), world.register, policy=POLICY, now=NOW
    )
    assert "E-OLD" not in _ids(items)
    assert excluded["on hold"] == 1


def test_a_store_side_hold_without_a_register_entry_still_blocks(world: World) -> None:
    # A crash after setting the hold and before recording it must not let the record go.
    [(key, version)] = [
        (v.key, v.version_id) for v in world.store.list_versions() if "E-OLD" in v.key
    ]
    world.store.set_legal_hold(key, version_id=version, on=True)
    items, _ = find_candidates(
        live_rows(world.rows(), world.register), world.register, policy=POLICY, now=NOW
    )
    assert "E-OLD" not in _ids(items)


def _approve(world: World, proposal: Proposal, by: str) -> Any:
    def minutes(p: Proposal, items: tuple[Item, ...], who: str, at: datetime) -> dict[str, str]:
        return {"key": "retention/minutes/x.pdf", "version_id": "v", "pdf_sha256": "0" * 64}

    return approve(
        proposal.proposal_id,
        by=by,
        catalog_rows=world.rows(),
        register=world.register,
        audit=world.audit,
        policy=POLICY,
        write_minutes=minutes,
        now=NOW,
    )


def test_self_approval_is_refused_and_deletes_nothing(world: World) -> None:
    proposal = propose(
        world.rows(),
        world.register,
        world.audit,
        policy=POLICY,
        by="Lan",
        now=NOW,
        directory=world.tmp / "proposals",
    )
    assert proposal is not None
    before = list(world.store.list_versions("records/"))
    with pytest.raises(RetentionError, match="another person"):
        _approve(world, proposal, "lan ")
    assert list(world.store.list_versions("records/")) == before


def test_approval_deletes_the_proposed_records_and_registers_them(world: World) -> None:
    proposal = propose(
        world.rows(),
        world.register,
        world.audit,
        policy=POLICY,
        by="lan",
        now=NOW,
        directory=world.tmp / "proposals",
    )
    assert proposal is not None
    outcome = _approve(world, proposal, "binh")
    assert _ids(outcome.destroyed) == _ids(proposal.items)
    left = {v.key.rsplit("/", 1)[1] for v in world.store.list_versions("records/")}
    assert left == {"E-NEW", "E-LINKED", "E-DEATH"}
    assert world.register.destroyed_encounters() == _ids(proposal.items)
    assert {r["encounter_id"] for r in live_rows(world.rows(), world.register)} == left
    assert world.register.verify().passed


def test_a_tampered_proposal_is_refused(world: World) -> None:
    proposal = propose(
        world.rows(),
        world.register,
        world.audit,
        policy=POLICY,
        by="lan",
        now=NOW,
        directory=world.tmp / "proposals",
    )
    assert proposal is not None
    key = f"{PROPOSALS_PREFIX}{proposal.proposal_id}.json"
    head = world.store.latest(key)
    assert head is not None
    world.store.corrupt(key, version_id=head.version_id, data=b"{}")
    with pytest.raises(RetentionError, match="does not open"):
        _approve(world, proposal, "binh")


def test_proposals_and_register_are_sealed_in_the_bucket(world: World) -> None:
    proposal = propose(
        world.rows(),
        world.register,
        world.audit,
        policy=POLICY,
        by="lan",
        now=NOW,
        directory=world.tmp / "proposals",
    )
    assert proposal is not None
    local = world.tmp / "proposals" / f"{proposal.proposal_id}.json"
    assert local.stat().st_mode & 0o777 == 0o600
    assert load_proposal(world.register, proposal.proposal_id) == proposal
    metadata = [v for v in world.store.list_versions() if not v.key.startswith("records/")]
    assert {v.key.split("/sealed/")[0] for v in metadata} == {"catalog", "retention", "audit"}
    for v in metadata:
        raw = world.store.get(v.key, version_id=v.version_id)
        for clear in (b"E-OLD", b"p1_" + b"1" * 64, b'"proposed_by"', b"ordinary", b"PAR1"):
            assert clear not in raw, (v.key, clear)


def test_a_proposal_stored_before_sealing_still_loads(world: World) -> None:
    proposal = Proposal(
        proposal_id="disp-legacy",
        proposed_by="lan",
        proposed_at=NOW.isoformat(),
        policy_ref="p",
        items=(),
        excluded={},
    )
    data, key = proposal.encode(), f"{LEGACY_PROPOSALS_PREFIX}disp-legacy.json"
    world.store.put_locked(key, data, retain_until=FUTURE)
    world.register.append(
        [
            {
                "type": "disposition.proposed",
                "proposal_id": "disp-legacy",
                "sha256": sha256_hex(data),
                "key": key,
            }
        ],
        now=NOW,
    )
    assert load_proposal(world.register, "disp-legacy") == proposal


def test_releasing_a_hold_keeps_what_another_case_needs(world: World) -> None:
    def hold(ids: tuple[str, ...]) -> str:
        return place_hold(
            HoldScope(encounter_ids=ids),
            case_ref="c",
            reason="r",
            by="lan",
            catalog_rows=world.rows(),
            register=world.register,
            audit=world.audit,
            now=NOW,
            tz="Asia/Ho_Chi_Minh",
        ).hold_id

    first, _ = hold(("E-OLD", "E-NEW")), hold(("E-OLD",))
    result = release_hold(
        first, by="lan", reason="done", register=world.register, audit=world.audit, now=NOW
    )
    assert (result.versions, result.kept) == (1, 1)
    assert world.register.held_encounters() == {"E-OLD"}


def test_a_death_extends_an_ordinary_lock_but_never_shortens_a_longer_one(world: World) -> None:
    death = {"deceased": True}
    plan = plan_upgrade(
        world.rows(),
        world.register,
        policy=POLICY,
        facts={"E-OLD": death, "E-NEW": death},
        tz="Asia/Ho_Chi_Minh",
    )
    changes = {c.encounter_id: c for c in plan.changes}
    old, new = changes["E-OLD"], changes["E-NEW"]
    assert (old.new_class, old.action, old.cause) == ("death", LockAction.EXTEND, "facts")
    assert old.new_until == datetime(2039, 12, 31, 17, tzinfo=UTC)  # 1 Jan 2040, Hanoi
    assert (new.new_class, new.action) == ("death", LockAction.KEEP_LONGER)  # 2090 stays
    # E-MENTAL's stored 2020 lock is shorter than its own class's 20 years: plans repair that too.
    assert [c.encounter_id for c in plan.extensions] == ["E-OLD", "E-MENTAL"]
    result = apply_upgrade(plan, register=world.register, audit=world.audit, by="lan", now=NOW)
    assert (result.extended_records, result.extended_versions) == (2, 2)
    head = world.store.latest(old.object_key)
    assert head is not None
    assert head.lock.retain_until == old.new_until
    assert world.store.latest(new.object_key).lock.retain_until == FUTURE  # type: ignore[union-attr]
    assert world.register.lock_changes()["E-OLD"] == ("death", old.new_until)
    # Extended past NOW: no longer a disposition candidate.
    items, _ = find_candidates(
        live_rows(world.rows(), world.register), world.register, policy=POLICY, now=NOW
    )
    assert "E-OLD" not in _ids(items)


def test_an_approval_interrupted_before_the_minutes_resumes(world: World) -> None:
    proposal = propose(
        world.rows(),
        world.register,
        world.audit,
        policy=POLICY,
        by="lan",
        now=NOW,
        directory=world.tmp / "proposals",
    )
    assert proposal is not None

    def failing(p: Proposal, items: tuple[Item, ...], who: str, at: datetime) -> dict[str, str]:
        raise RetentionError("TSA down")

    with pytest.raises(RetentionError, match="TSA down"):
        approve(
            proposal.proposal_id,
            by="binh",
            catalog_rows=world.rows(),
            register=world.register,
            audit=world.audit,
            policy=POLICY,
            write_minutes=failing,
            now=NOW,
        )
    assert world.register.destroyed_encounters() == set()  # deleted, not yet evidenced
    outcome = _approve(world, proposal, "binh")
    assert _ids(outcome.destroyed) == _ids(proposal.items)
    assert outcome.skipped == {}
    assert world.register.destroyed_encounters() == _ids(proposal.items)
