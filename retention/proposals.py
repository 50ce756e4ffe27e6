"""Disposition proposals: every record whose retention has passed, listed, locked and registered.

Which records qualify is :mod:`retention.candidates`. The proposal (list and totals, pseudonyms
and hashes, no names) is written locally (0600) and locked in the bucket, sealed
(:attr:`Register.meta_store`), and its sha256 is registered, so the list approved is the list
proposed. Who may confirm and approve it is :mod:`retention.signoff`; the destruction itself is
:mod:`retention.disposition`.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from archive.audit import AuditEvent, AuditLog, canonical
from archive.catalog import manifest_retain_until
from archive.core.atomic import write_private
from archive.core.errors import SealError
from archive.store import sha256_hex
from retention.candidates import Item, find_candidates
from retention.errors import RetentionError
from retention.people import Actor
from retention.policy import RetentionPolicy
from retention.register import Register, live_rows

PROPOSALS_PREFIX = "retention/sealed/v1/proposals/"
LEGACY_PROPOSALS_PREFIX = "retention/proposals/"  # plaintext, from releases before sealing


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


def propose(
    catalog_rows: Any,
    register: Register,
    audit: AuditLog,
    *,
    policy: RetentionPolicy,
    by: Actor,
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
        proposed_by=by.name.strip(),
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
                "by": proposal.proposed_by,
                "role": by.role,
                "at": now.isoformat(),
                "records": len(items),
            }
        ],
        now=now,
    )
    ids = [i.encounter_id for i in items]
    audit_disposition(
        audit, "disposition.propose", by, now, proposal_id=proposal.proposal_id, encounters=ids
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


def audit_disposition(
    audit: AuditLog,
    action: str,
    by: Actor,
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
            actor=by.name.strip(),
            role=by.role,
            action=action,
            recorded=now,
            entities=entities,
            detail={"records": len(encounters)},
        )
    )
    audit.flush(now=now)
