"""Which expired records may be destroyed now, and why each of the others may not.

A live (not yet destroyed) record qualifies when, at ``now``: its retain-until (the longer of
the catalog's and any registered extension) has passed; no active hold names it; it is not
*linked* to a longer-retention dossier; and every version of its object, read from the store, is
past its lock and carries no legal hold. **Linked** means: another live record of the same
patient pseudonym has a longer class (by the policy's ranking; a class the policy no longer
knows counts as longest) and is still retained at ``now`` - destroying part of a patient's file
while a longer-kept part remains would break that dossier (Archive Law art. 16, Decree 113/2025
art. 20).

The same checks run twice, at proposal and again at approval (holds and locks may have changed
in between), which is why they live apart from the workflow in :mod:`retention.disposition`.
The store has the last word: a lock or hold found there blocks a record whatever the catalog says.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from retention.errors import PolicyError
from retention.policy import RetentionPolicy
from retention.register import Register, versions_by_key

_Rank = tuple[bool, int]  # (permanent, years): a longer period sorts higher


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


def find_candidates(
    rows: list[dict[str, Any]], register: Register, *, policy: RetentionPolicy, now: datetime
) -> tuple[list[Item], dict[str, int]]:
    """The proposable items among live ``rows``, and counts of the expired ones left out."""
    held, longest = register.held_encounters(), longest_retained(rows, policy, now)
    expired = [row for row in rows if row["retain_until"] <= now]
    stored = versions_by_key(register.store, (row["object_key"] for row in expired))
    items, excluded = [], {"on hold": 0, "linked to a longer-retention dossier": 0}
    for row in expired:
        why = blocked(row, longest, held, policy) or store_blocks(
            register, row, now, stored[row["object_key"]]
        )
        if isinstance(why, str):
            excluded[why] = excluded.get(why, 0) + 1
        else:
            items.append(_item(row, why))
    return items, excluded


def blocked(
    row: dict[str, Any], longest: dict[str, _Rank], held: set[str], policy: RetentionPolicy
) -> str | None:
    """Why the register keeps ``row`` (a hold, or a longer-kept dossier), or None."""
    if row["encounter_id"] in held:
        return "on hold"
    kept = longest.get(row["patient_pseudonym"])
    if kept is not None and kept > _rank(policy, row["retention_class"]):
        return "linked to a longer-retention dossier"
    return None


def longest_retained(
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


def store_blocks(
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
