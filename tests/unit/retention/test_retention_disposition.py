"""Disposition, holds and upgrades on the in-memory store with a pinned clock: which records are
proposed, what counts as linked, who may approve, and that nothing unexpired or held is touched."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from archive.store import sha256_hex
from retention.candidates import Item, find_candidates
from retention.disposition import (
    LEGACY_PROPOSALS_PREFIX,
    PROPOSALS_PREFIX,
    Proposal,
    load_proposal,
)
from retention.errors import RetentionError
from retention.holds import HoldScope, confirm_release, place_hold, request_release
from retention.people import Actor
from retention.policy import LockAction
from retention.register import live_rows
from retention.upgrades import apply_upgrade, plan_upgrade
from tests.support.retention_world import (
    FUTURE,
    HEAD,
    LAN,
    NOW,
    POLICY,
    THU,
    StubMinutes,
    World,
    approve_as,
    build_world,
    propose_as,
)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return build_world(tmp_path)


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
        by=LAN,
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


def test_self_approval_is_refused_and_deletes_nothing(world: World) -> None:
    proposal = propose_as(world, Actor("Lan", "records-officer"))
    before = list(world.store.list_versions("records/"))
    with pytest.raises(RetentionError, match="another person"):
        approve_as(world, proposal, Actor("lan ", "facility-head"))
    assert list(world.store.list_versions("records/")) == before


def test_approval_deletes_the_proposed_records_and_registers_them(world: World) -> None:
    proposal = propose_as(world, LAN)
    outcome = approve_as(world, proposal, HEAD)
    assert _ids(outcome.destroyed) == _ids(proposal.items)
    left = {v.key.rsplit("/", 1)[1] for v in world.store.list_versions("records/")}
    assert left == {"E-NEW", "E-LINKED", "E-DEATH"}
    assert world.register.destroyed_encounters() == _ids(proposal.items)
    assert {r["encounter_id"] for r in live_rows(world.rows(), world.register)} == left
    assert world.register.verify().passed


def test_a_tampered_proposal_is_refused(world: World) -> None:
    proposal = propose_as(world, LAN)
    key = f"{PROPOSALS_PREFIX}{proposal.proposal_id}.json"
    head = world.store.latest(key)
    assert head is not None
    world.store.corrupt(key, version_id=head.version_id, data=b"{}")
    with pytest.raises(RetentionError, match="does not open"):
        approve_as(world, proposal, HEAD)


def test_proposals_and_register_are_sealed_in_the_bucket(world: World) -> None:
    proposal = propose_as(world, LAN)
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
            by=LAN,
            catalog_rows=world.rows(),
            register=world.register,
            audit=world.audit,
            now=NOW,
            tz="Asia/Ho_Chi_Minh",
        ).hold_id

    first, _ = hold(("E-OLD", "E-NEW")), hold(("E-OLD",))
    request_release(
        first, by=LAN, reason="done", register=world.register, audit=world.audit, now=NOW
    )
    result = confirm_release(first, by=THU, register=world.register, audit=world.audit, now=NOW)
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
    proposal = propose_as(world, LAN)
    with pytest.raises(RetentionError, match="TSA down"):
        approve_as(world, proposal, HEAD, StubMinutes(fail_write="TSA down"))
    assert world.register.destroyed_encounters() == set()  # deleted, not yet evidenced
    outcome = approve_as(world, proposal, HEAD)
    assert _ids(outcome.destroyed) == _ids(proposal.items)
    assert outcome.skipped == {}
    assert world.register.destroyed_encounters() == _ids(proposal.items)


def test_a_minutes_writer_that_cannot_get_ready_stops_the_approval_before_any_deletion(
    world: World,
) -> None:
    proposal = propose_as(world, LAN)
    before = list(world.store.list_versions("records/"))
    # Refusals come first and are audited, whatever the state of the signing key.
    no_key = StubMinutes(fail_ready="the token is not present")
    with pytest.raises(RetentionError, match="another person"):
        approve_as(world, proposal, LAN, no_key)
    assert no_key.readied == 0
    with pytest.raises(RetentionError, match="the token is not present"):
        approve_as(world, proposal, HEAD, no_key)
    assert list(world.store.list_versions("records/")) == before  # nothing deleted
    assert world.register.proposal_event(proposal.proposal_id, "disposition.approved") is None
    outcome = approve_as(world, proposal, HEAD)  # the token is back
    assert _ids(outcome.destroyed) == _ids(proposal.items)
