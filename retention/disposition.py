"""Disposition: destroy an approved proposal's records, and evidence it.

The proposal is :mod:`retention.proposals`; its confirmation and approval by two different
people, the second holding an approving role, is :mod:`retention.signoff`. Once approved, each
item is checked again (holds and locks may have changed since the proposal); only items that
still pass are deleted, version by version, so the store is never even asked to delete something
unexpired or held. Then the destruction minutes are written (:mod:`retention.minutes`, passed in
as ``write``) and the destruction is registered, which tells the verifier those records are no
longer expected.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from archive.audit import AuditLog
from retention.candidates import Item, blocked, longest_retained, store_blocks
from retention.people import SWEEP_ACTOR, Actor
from retention.policy import RetentionPolicy
from retention.proposals import (
    LEGACY_PROPOSALS_PREFIX,
    PROPOSALS_PREFIX,
    Proposal,
    audit_disposition,
    load_proposal,
    propose,
)
from retention.register import Register, live_rows, versions_of
from retention.signoff import Approval, authorise, confirm, confirmed_by

__all__ = [
    "LEGACY_PROPOSALS_PREFIX",
    "PROPOSALS_PREFIX",
    "SWEEP_ACTOR",
    "Actor",
    "Approval",
    "MinutesWriter",
    "Outcome",
    "Proposal",
    "approve",
    "confirm",
    "confirmed_by",
    "load_proposal",
    "propose",
]


@dataclass(frozen=True, slots=True)
class Outcome:
    destroyed: tuple[Item, ...]
    skipped: dict[str, str]  # encounter id -> why it was left in place at approval
    minutes: dict[str, str]  # key, version_id, sha256 of the stored minutes


class MinutesWriter(Protocol):
    """Writes the destruction minutes (:class:`retention.minutes.MinutesWriter`)."""

    def ready(self) -> None:
        """Open what signing needs (the key, a token session). Called once the approval is
        authorised and before anything is deleted: raising here leaves every record in place."""

    def __call__(
        self, proposal: Proposal, items: tuple[Item, ...], approval: Approval, at: datetime
    ) -> dict[str, str]:
        """Render, sign, store and lock the minutes; the stored object's key, version, hash."""


def approve(
    proposal_id: str,
    *,
    by: Actor,
    catalog_rows: Any,
    register: Register,
    audit: AuditLog,
    policy: RetentionPolicy,
    write_minutes: MinutesWriter,
    now: datetime,
) -> Outcome:
    """Refuse an unconfirmed proposal, a second approval by the proposer or confirmer, and an
    approver without an approving role (each refusal audited); then re-check every item, delete
    what still qualifies and write the minutes. The minutes writer is made ready (its key opened)
    before anything is deleted."""
    proposal, approval = authorise(proposal_id, by, register, audit, now)
    # Before the first deletion: records deleted but never evidenced are the worse outcome.
    write_minutes.ready()
    register.append(
        [
            {
                "type": "disposition.approved",
                "proposal_id": proposal_id,
                "by": by.name.strip(),
                "role": by.role,
                "confirmed_by": approval.confirmed_by.name,
                "at": now.isoformat(),
            }
        ],
        now=now,
    )
    destroyed, skipped = _destroy(proposal, catalog_rows, register, policy, now)
    minutes = write_minutes(proposal, destroyed, approval, now)
    register.append(
        [
            {
                "type": "disposition.destroyed",
                "proposal_id": proposal_id,
                "proposed_by": proposal.proposed_by,
                "confirmed_by": approval.confirmed_by.name,
                "approved_by": by.name.strip(),
                "approver_role": by.role,
                "at": now.isoformat(),
                "encounters": [i.encounter_id for i in destroyed],
                "versions": [[i.object_key, v] for i in destroyed for v in i.versions],
                "skipped": skipped,
                "minutes": minutes,
            }
        ],
        now=now,
    )
    ids = [i.encounter_id for i in destroyed]
    audit_disposition(
        audit, "disposition.destroy", by, now, proposal_id=proposal_id, encounters=ids
    )
    return Outcome(destroyed, skipped, minutes)


def _destroy(
    proposal: Proposal,
    catalog_rows: Any,
    register: Register,
    policy: RetentionPolicy,
    now: datetime,
) -> tuple[tuple[Item, ...], dict[str, str]]:
    rows = live_rows(catalog_rows, register)
    by_id = {r["encounter_id"]: r for r in rows}
    held, longest = register.held_encounters(), longest_retained(rows, policy, now)
    destroyed, skipped = [], {}
    for item in proposal.items:
        row = by_id.get(item.encounter_id)
        why = "no longer in the catalog" if row is None else blocked(row, longest, held, policy)
        if why is None and row is not None and row["retain_until"] > now:
            why = "retention was extended since the proposal"
        now_versions = versions_of(register.store, item.object_key)
        if why is None and set(now_versions) - set(item.versions):
            why = "a version was added since the proposal"
        if why is None and row is not None:
            state = store_blocks(register, row, now, now_versions) if now_versions else []
            why = state if isinstance(state, str) else None
        if why is not None:
            skipped[item.encounter_id] = why
            continue
        for version_id in now_versions:  # missing ones: deleted by an interrupted approval
            register.store.delete_version(item.object_key, version_id=version_id)
        destroyed.append(item)
    return tuple(destroyed), skipped
