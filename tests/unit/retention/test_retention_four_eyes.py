"""Four eyes where the law wants them: a destruction is confirmed by one person and approved by a
different person holding an approving role; a legal hold is released only when a second person
confirms. Each refusal changes nothing and is audited (outcome failure, the real role)."""

from __future__ import annotations

from pathlib import Path

import pytest

from archive.audit import AuditEvent
from retention.disposition import confirm
from retention.errors import RetentionError
from retention.holds import HoldScope, confirm_release, place_hold, request_release
from retention.people import SWEEP, Actor
from tests.support.retention_world import (
    DELEGATE,
    HEAD,
    LAN,
    NOW,
    THU,
    World,
    approve_as,
    build_world,
    propose_as,
)


@pytest.fixture
def world(tmp_path: Path) -> World:
    return build_world(tmp_path)


def _records(world: World) -> list[str]:
    return sorted(v.version_id for v in world.store.list_versions("records/"))


def _refusals(world: World, action: str) -> list[AuditEvent]:
    return [e for e in world.audit.show(action=action) if e.outcome == "failure"]


def _confirm(world: World, proposal_id: str, by: Actor) -> None:
    confirm(proposal_id, by=by, register=world.register, audit=world.audit, now=NOW)


def test_a_sweep_proposal_approved_without_confirmation_is_refused(world: World) -> None:
    proposal, before = propose_as(world, SWEEP), _records(world)
    with pytest.raises(RetentionError, match="nobody has confirmed"):
        approve_as(world, proposal, HEAD)
    assert _records(world) == before
    assert world.register.proposal_event(proposal.proposal_id, "disposition.approved") is None
    [refusal] = _refusals(world, "disposition.approve")
    assert (refusal.actor, refusal.role) == ("director.binh", "facility-head")
    assert ("proposal", proposal.proposal_id) in refusal.entities


def test_the_same_person_confirming_and_approving_is_refused(world: World) -> None:
    proposal, before = propose_as(world, SWEEP), _records(world)
    _confirm(world, proposal.proposal_id, HEAD)  # a head may confirm, but then not approve too
    with pytest.raises(RetentionError, match="another person"):
        approve_as(world, proposal, Actor(" Director.Binh", "facility-head"))
    assert _records(world) == before
    assert [e.actor for e in _refusals(world, "disposition.approve")] == ["Director.Binh"]


def test_an_approver_without_the_approving_role_is_refused(world: World) -> None:
    proposal, before = propose_as(world, SWEEP), _records(world)
    _confirm(world, proposal.proposal_id, LAN)
    with pytest.raises(RetentionError, match="facility head or a delegate"):
        approve_as(world, proposal, THU)  # another person, but a records officer
    assert _records(world) == before
    [refusal] = _refusals(world, "disposition.approve")
    assert (refusal.actor, refusal.role) == ("thu", "records-officer")


def test_the_sweep_cannot_vouch_for_itself_and_a_proposal_is_confirmed_once(world: World) -> None:
    proposal = propose_as(world, SWEEP)
    with pytest.raises(RetentionError, match="a person confirms"):
        _confirm(world, proposal.proposal_id, SWEEP)
    _confirm(world, proposal.proposal_id, LAN)
    with pytest.raises(RetentionError, match="another person"):  # the sweep's name typed in
        approve_as(world, proposal, Actor("retention-sweep", "facility-head"))
    with pytest.raises(RetentionError, match="already confirmed by lan"):
        _confirm(world, proposal.proposal_id, THU)
    own = propose_as(world, THU)  # a person's proposal is confirmed by that person
    with pytest.raises(RetentionError, match="already confirmed by thu"):
        _confirm(world, own.proposal_id, LAN)
    assert len(_refusals(world, "disposition.confirm")) == 3
    assert len(_refusals(world, "disposition.approve")) == 1


def test_a_confirmed_sweep_proposal_approved_by_a_delegate_is_destroyed(world: World) -> None:
    proposal = propose_as(world, SWEEP)
    _confirm(world, proposal.proposal_id, LAN)
    outcome = approve_as(world, proposal, DELEGATE)
    assert {i.encounter_id for i in outcome.destroyed} == {i.encounter_id for i in proposal.items}
    event = world.register.proposal_event(proposal.proposal_id, "disposition.destroyed")
    assert event is not None
    assert (event["proposed_by"], event["confirmed_by"]) == ("retention-sweep", "lan")
    assert (event["approved_by"], event["approver_role"]) == (
        "deputy.hoa",
        "facility-head-delegate",
    )
    done = [(e.action, e.actor, e.role) for e in world.audit.show(action="disposition")]
    assert done == [
        ("disposition.propose", "retention-sweep", "system"),
        ("disposition.confirm", "lan", "records-officer"),
        ("disposition.destroy", "deputy.hoa", "facility-head-delegate"),
    ]
    assert world.register.verify().passed


def _held(world: World) -> list[bool]:
    return [
        world.store.head(v.key, version_id=v.version_id).lock.legal_hold
        for v in world.store.list_versions("records/")
        if v.key.endswith("/E-OLD")
    ]


def test_a_hold_released_by_one_person_stays_until_a_second_confirms(world: World) -> None:
    hold_id = place_hold(
        HoldScope(encounter_ids=("E-OLD",)),
        case_ref="TA-3",
        reason="lawsuit",
        by=LAN,
        catalog_rows=world.rows(),
        register=world.register,
        audit=world.audit,
        now=NOW,
        tz="Asia/Ho_Chi_Minh",
    ).hold_id

    def release(by: Actor) -> int:
        result = confirm_release(
            hold_id, by=by, register=world.register, audit=world.audit, now=NOW
        )
        return result.versions

    with pytest.raises(RetentionError, match="nobody has requested"):
        release(THU)
    request_release(
        hold_id, by=LAN, reason="closed", register=world.register, audit=world.audit, now=NOW
    )
    assert _held(world) == [True]
    assert world.register.held_encounters() == {"E-OLD"}
    with pytest.raises(RetentionError, match="already requested by lan"):
        request_release(
            hold_id, by=THU, reason="x", register=world.register, audit=world.audit, now=NOW
        )
    with pytest.raises(RetentionError, match="different person"):
        release(Actor("LAN ", "records-officer"))
    assert _held(world) == [True]
    assert world.register.held_encounters() == {"E-OLD"}
    assert release(HEAD) == 1
    assert _held(world) == [False]
    assert world.register.held_encounters() == set()
    [released] = world.register.events("hold.released")
    assert (released["requested_by"], released["by"], released["role"]) == (
        "lan",
        "director.binh",
        "facility-head",
    )
    refused = [
        (e.action, e.actor) for e in world.audit.show(action="hold") if e.outcome == "failure"
    ]
    assert refused == [
        ("hold.remove", "thu"),
        ("hold.remove-request", "thu"),
        ("hold.remove", "LAN"),
    ]
    done = [e.action for e in world.audit.show(action="hold") if e.outcome == "success"]
    assert done == ["hold.add", "hold.remove-request", "hold.remove"]
