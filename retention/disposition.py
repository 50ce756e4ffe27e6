"""Disposition: propose expired records for destruction, approve, destroy, and evidence it.

A record is **proposed** when, at ``now``: it is not destroyed; its retain-until (the longer of
the catalog's and any registered extension) has passed; no active hold names it; it is not
*linked* to a longer-retention dossier; and every version of its object, read from the store,
is past its lock and carries no legal hold. **Linked** means: another live record of the same
patient pseudonym has a longer class (by the policy's ranking; a class the policy no longer
knows counts as longest) and is still retained at ``now`` - destroying part of a patient's file
while a longer-kept part remains would break that dossier (Archive Law art. 16, Decree 113/2025
art. 20). The proposal (list and totals, pseudonyms and hashes, no names) is written locally
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
from retention.errors import PolicyError
from retention.policy import RetentionPolicy
from retention.register import (
    Register,
    RetentionError,
    live_rows,
    versions_by_key,
    versions_of,
)

PROPOSALS_PREFIX = "retention/sealed/v1/proposals/"
LEGACY_PROPOSALS_PREFIX = "retention/proposals/"  # plaintext, from releases before sealing
_Rank = tuple[bool, int]  # (permanent, years): a longer period sorts higher
SWEEP_ACTOR = "retention-sweep"


@dataclass(frozen=True, slots=True, kw_only=True)
class Item:
    """One record proposed for destruction (no PHI: ids, pseudonym, class, dates, hashes)."""

    encounter_id: str
    patient_pseudonym: str
    facility: str
    retention_class: str
    discharged_at: str
    retain_until: str
    object_key: str
    versions: tuple[str, ...]
    pdf_sha256: str
    sealed_sha256: str


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


def find_candidates(
    rows: list[dict[str, Any]], register: Register, *, policy: RetentionPolicy, now: datetime
) -> tuple[list[Item], dict[str, int]]:
    """The proposable items among live ``rows``, and counts of the expired ones left out."""
    held, longest = register.held_encounters(), _longest_retained(rows, policy, now)
    expired = [row for row in rows if row["retain_until"] <= now]
    stored = versions_by_key(register.store, (row["object_key"] for row in expired))
    items, excluded = [], {"on hold": 0, "linked to a longer-retention dossier": 0}
    for row in expired:
        why = _blocked(row, longest, held, policy) or _store_blocks(
            register, row, now, stored[row["object_key"]]
        )
        if isinstance(why, str):
            excluded[why] = excluded.get(why, 0) + 1
        else:
            items.append(_item(row, why))
    return items, excluded


def _blocked(
    row: dict[str, Any], longest: dict[str, _Rank], held: set[str], policy: RetentionPolicy
) -> str | None:
    if row["encounter_id"] in held:
        return "on hold"
    kept = longest.get(row["patient_pseudonym"])
    if kept is not None and kept > _rank(policy, row["retention_class"]):
        return "linked to a longer-retention dossier"
    return None


def _longest_retained(
    rows: list[dict[str, Any]], policy: RetentionPolicy, now: datetime
) -> dict[str, _Rank]:
    """Per patient pseudonym, the longest class among their records still retained at ``now``."""
    longest: dict[str, _Rank] = {}
    for row in rows:
        if row["retain_until"] > now:
            rank, pseudonym = _rank(policy, row["retention_class"]), row["patient_pseudonym"]
            longest[pseudonym] = max(rank, longest.get(pseudonym, rank))
    return longest


def _rank(policy: RetentionPolicy, class_id: str) -> _Rank:
    """Period order only (the policy's rank also orders equal periods by declaration)."""
    try:
        permanent, years, _ = policy.rank(class_id)
        return (permanent, years)
    except (PolicyError, StopIteration):
        return (True, 1 << 30)  # a class the policy does not know: assume the longest


def _store_blocks(
    register: Register, row: dict[str, Any], now: datetime, versions: list[str]
) -> str | list[str]:
    """The store's word, version by version: a held or still-locked version blocks the record."""
    for version_id in versions:
        lock = register.store.head(row["object_key"], version_id=version_id).lock
        if lock.legal_hold:
            return "on hold"
        if lock.retain_until is not None and lock.retain_until > now:
            return "locked longer in the store than the catalog says"
    return versions if versions else "no stored version found"


def _item(row: dict[str, Any], versions: list[str]) -> Item:
    return Item(
        encounter_id=row["encounter_id"],
        patient_pseudonym=row["patient_pseudonym"],
        facility=row["facility"],
        retention_class=row["retention_class"],
        discharged_at=row["discharged_at"].isoformat(),
        retain_until=row["retain_until"].isoformat(),
        object_key=row["object_key"],
        versions=tuple(versions),
        pdf_sha256=row["pdf_sha256"],
        sealed_sha256=row["sealed_sha256"],
    )


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
    held, longest = register.held_encounters(), _longest_retained(rows, policy, now)
    destroyed, skipped = [], {}
    for item in proposal.items:
        row = by_id.get(item.encounter_id)
        why = "no longer in the catalog" if row is None else _blocked(row, longest, held, policy)
        if why is None and row is not None and row["retain_until"] > now:
            why = "retention was extended since the proposal"
        now_versions = versions_of(register.store, item.object_key)
        if why is None and set(now_versions) - set(item.versions):
            why = "a version was added since the proposal"
        if why is None and row is not None:
            state = _store_blocks(register, row, now, now_versions) if now_versions else []
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
