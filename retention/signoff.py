"""The four eyes on a disposition proposal: who confirms it, who may approve it.

A proposal made by a person is confirmed by that person. The monthly sweep is not a person: its
proposal is confirmed by a records officer (:func:`confirm`) before anyone may approve it.
Approval (:func:`authorise`) must come from a third pair of eyes: neither the proposer nor the
confirmer, and holding an approving role (:data:`retention.people.APPROVING_ROLES`, the facility
head or a delegate). Each refusal is audited before it is raised (:func:`retention.people.refuse`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from archive.audit import AuditLog
from retention.errors import RetentionError
from retention.people import APPROVING_ROLES, SWEEP_ACTOR, Actor, refuse, same_name
from retention.proposals import Proposal, audit_disposition, load_proposal
from retention.register import Register


@dataclass(frozen=True, slots=True)
class Approval:
    """The two people behind a destruction, as the minutes name them."""

    confirmed_by: Actor
    approved_by: Actor


def confirm(
    proposal_id: str, *, by: Actor, register: Register, audit: AuditLog, now: datetime
) -> None:
    """A person vouches for the sweep's proposal: the first pair of eyes. A person's own
    proposal is confirmed by its proposer and needs no second confirmation."""
    where = (("proposal", proposal_id),)

    def refused(problem: str) -> RetentionError:
        return refuse(audit, by, "disposition.confirm", now, problem, entities=where)

    proposal = _load_or_refuse(register, proposal_id, refused)
    if not by.is_person:
        raise refused(f"a person confirms a proposal, not {by.name.strip() or 'nobody'}")
    if register.proposal_event(proposal_id, "disposition.destroyed") is not None:
        raise refused(f"proposal {proposal_id} was already carried out")
    confirmer = confirmed_by(register, proposal)
    if confirmer is not None:
        raise refused(f"proposal {proposal_id} is already confirmed by {confirmer}")
    register.append(
        [
            {
                "type": "disposition.confirmed",
                "proposal_id": proposal_id,
                "by": by.name.strip(),
                "role": by.role,
                "at": now.isoformat(),
            }
        ],
        now=now,
    )
    audit_disposition(audit, "disposition.confirm", by, now, proposal_id=proposal_id, encounters=[])


def confirmed_by(register: Register, proposal: Proposal) -> str | None:
    """Who confirmed the proposal: its proposer if a person made it, else the person who
    confirmed the sweep's proposal; None while nobody has."""
    if not same_name(proposal.proposed_by, SWEEP_ACTOR):
        return proposal.proposed_by
    event = register.proposal_event(proposal.proposal_id, "disposition.confirmed")
    return None if event is None else str(event["by"])


def authorise(
    proposal_id: str, by: Actor, register: Register, audit: AuditLog, now: datetime
) -> tuple[Proposal, Approval]:
    where = (("proposal", proposal_id),)

    def refused(problem: str) -> RetentionError:
        return refuse(audit, by, "disposition.approve", now, problem, entities=where)

    proposal = _load_or_refuse(register, proposal_id, refused)
    if register.proposal_event(proposal_id, "disposition.destroyed") is not None:
        raise refused(f"proposal {proposal_id} was already carried out")
    confirmer = confirmed_by(register, proposal)
    if confirmer is None:
        raise refused(
            f"proposal {proposal_id} came from the sweep and nobody has confirmed it: a records "
            f"officer confirms it first (`emr-archive disposition confirm {proposal_id}`)"
        )
    if not by.is_person or by.is_(proposal.proposed_by) or by.is_(confirmer):
        raise refused(
            f"proposal {proposal_id} was proposed by {proposal.proposed_by} and confirmed by "
            f"{confirmer}: another person (the facility head or delegate) must approve it"
        )
    if by.role not in APPROVING_ROLES:
        raise refused(
            f"{by.name.strip()} is {by.role}: a destruction is approved by the facility head or "
            f"a delegate (role {' or '.join(sorted(APPROVING_ROLES))})"
        )
    confirmation = register.proposal_event(proposal_id, "disposition.confirmed")
    role = confirmation["role"] if confirmation else _proposer_role(register, proposal_id)
    return proposal, Approval(confirmed_by=Actor(confirmer, role), approved_by=by)


def _proposer_role(register: Register, proposal_id: str) -> str:
    """The role the proposer held (proposals registered before roles were recorded: unknown)."""
    event = register.proposal_event(proposal_id, "disposition.proposed")
    return str(event.get("role", "unknown")) if event else "unknown"


def _load_or_refuse(
    register: Register, proposal_id: str, refused: Callable[[str], RetentionError]
) -> Proposal:
    try:
        return load_proposal(register, proposal_id)
    except RetentionError as e:
        raise refused(str(e)) from e
