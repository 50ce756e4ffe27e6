"""Disposition: propose qualifying records for destruction, approve, destroy, and evidence it.

Which records qualify is :mod:`retention.candidates`; this module is the four-eyes workflow
around it. The proposal (list and totals, pseudonyms and hashes, no names) is written locally
(0600) and locked in the bucket, sealed (:attr:`Register.meta_store`), and its sha256 is
registered, so the list approved is the list proposed.

**Approval** must come from another person than the proposer. Each item is checked again
(holds and locks may have changed since the proposal); only items that still pass are deleted,
version by version, so the store is never even asked to delete something unexpired or held.
Then the destruction minutes are written (:mod:`retention.minutes`, passed in as ``write``) and
the destruction is registered, which tells the verifier those records are no longer expected.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from archive.audit import AuditEvent, AuditLog, canonical
from archive.catalog import manifest_retain_until
from archive.core.atomic import write_private
from archive.core.errors import SealError
from archive.store import sha256_hex
from retention.candidates import Item, blocked, find_candidates, longest_retained, store_blocks
from retention.policy import RetentionPolicy
from retention.register import Register, RetentionError, live_rows, versions_of

PROPOSALS_PREFIX = "retention/sealed/v1/proposals/"
LEGACY_PROPOSALS_PREFIX = "retention/proposals/"  # plaintext, from releases before sealing
SWEEP_ACTOR = "retention-sweep"


@dataclass(frozen=True, slots=True, kw_only=True)
class Proposal:
    proposal_id: str
    proposed_by: str
    proposed_at: str
    policy_ref: str
    items: tuple[Item, ...]
    excluded: dict[str, int]  # why other expired records were left out, with counts

    def totals(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.items:
            counts[item.retention_class] = counts.get(item.retention_class, 0) + 1
        return dict(sorted(counts.items()))

    def encode(self) -> bytes:
        return canonical({**asdict(self), "totals": self.totals()})

    @classmethod
    def decode(cls, data: bytes) -> Proposal:
        raw = json.loads(data)
        raw.pop("totals")
        items = tuple(Item(**{**i, "versions": tuple(i["versions"])}) for i in raw.pop("items"))
        return cls(items=items, **raw)


@dataclass(frozen=True, slots=True)
class Outcome:
    destroyed: tuple[Item, ...]
    skipped: dict[str, str]  # encounter id -> why it was left in place at approval
    minutes: dict[str, str]  # key, version_id, sha256 of the stored minutes


MinutesWriter = Callable[[Proposal, tuple[Item, ...], str, datetime], dict[str, str]]


def propose(
    catalog_rows: Any,
    register: Register,
    audit: AuditLog,
    *,
    policy: RetentionPolicy,
    by: str,
    now: datetime,
    directory: Path,
) -> Proposal | None:
    """Write, lock and register a proposal of every proposable record; None when there is none."""
    items, excluded = find_candidates(
        live_rows(catalog_rows, register), register, policy=policy, now=now
    )
    if not items:
        return None
    proposal = Proposal(
        proposal_id=f"disp-{now:%Y%m%d%H%M%S}-{secrets.token_hex(3)}",
        proposed_by=by,
        proposed_at=now.isoformat(),
        policy_ref=policy.ref,
        items=tuple(items),
        excluded=excluded,
    )
    data = proposal.encode()
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_private(directory / f"{proposal.proposal_id}.json", data)
    key = f"{PROPOSALS_PREFIX}{proposal.proposal_id}.json"
    register.meta_store.put_locked(key, data, retain_until=manifest_retain_until(now, years=100))
    register.append(
        [
            {
                "type": "disposition.proposed",
                "proposal_id": proposal.proposal_id,
                "sha256": sha256_hex(data),
                "key": key,
                "by": by,
                "at": now.isoformat(),
                "records": len(items),
            }
        ],
        now=now,
    )
    ids = [i.encounter_id for i in items]
    _audit(
        audit,
        "disposition.propose",
        by,
        "records-officer",
        now,
        proposal_id=proposal.proposal_id,
        encounters=ids,
    )
    return proposal


def load_proposal(register: Register, proposal_id: str) -> Proposal:
    """The registered proposal, from its locked bucket copy, checked against its sha256."""
    event = register.proposal_event(proposal_id, "disposition.proposed")
    if event is None:
        raise RetentionError(f"no proposal {proposal_id} in the register")
    # A proposal made before sealing is a plaintext object; the registered sha256 vouches for it.
    legacy = event["key"].startswith(LEGACY_PROPOSALS_PREFIX)
    store = register.store if legacy else register.meta_store
    head = store.latest(event["key"])
    try:
        data = store.get(event["key"], version_id=head.version_id) if head else b""
    except SealError as e:
        raise RetentionError(
            f"proposal {proposal_id}'s locked copy does not open ({type(e).__name__}): it is "
            "damaged or the keyring is not this archive's; propose again"
        ) from e
    if sha256_hex(data) != event["sha256"]:
        raise RetentionError(f"proposal {proposal_id} does not match its registered sha256")
    return Proposal.decode(data)


def approve(
    proposal_id: str,
    *,
    by: str,
    catalog_rows: Any,
    register: Register,
    audit: AuditLog,
    policy: RetentionPolicy,
    write_minutes: MinutesWriter,
    now: datetime,
) -> Outcome:
    """Refuse self-approval, re-check every item, delete what still qualifies, write minutes."""
    proposal = load_proposal(register, proposal_id)
    if not by.strip() or by.strip().casefold() == proposal.proposed_by.strip().casefold():
        raise RetentionError(
            f"proposal {proposal_id} was proposed by {proposal.proposed_by}: another person "
            "(the facility head or delegate) must approve it"
        )
    if register.proposal_event(proposal_id, "disposition.destroyed") is not None:
        raise RetentionError(f"proposal {proposal_id} was already carried out")
    register.append(
        [
            {
                "type": "disposition.approved",
                "proposal_id": proposal_id,
                "by": by,
                "at": now.isoformat(),
            }
        ],
        now=now,
    )
    destroyed, skipped = _destroy(proposal, catalog_rows, register, policy, now)
    minutes = write_minutes(proposal, destroyed, by, now)
    register.append(
        [
            {
                "type": "disposition.destroyed",
                "proposal_id": proposal_id,
                "proposed_by": proposal.proposed_by,
                "approved_by": by,
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
    _audit(
        audit,
        "disposition.destroy",
        by,
        "facility-head",
        now,
        proposal_id=proposal_id,
        encounters=ids,
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


def _audit(
    audit: AuditLog,
    action: str,
    by: str,
    role: str,
    now: datetime,
    *,
    proposal_id: str,
    encounters: list[str],
) -> None:
    entities: tuple[tuple[str, str], ...] = (("proposal", proposal_id),)
    if len(encounters) <= 200:  # the register lists every record; the audit names small batches
        entities += tuple(("encounter", e) for e in encounters)
    audit.append(
        AuditEvent(
            actor=by,
            role=role,
            action=action,
            recorded=now,
            entities=entities,
            detail={"records": len(encounters)},
        )
    )
    audit.flush(now=now)
