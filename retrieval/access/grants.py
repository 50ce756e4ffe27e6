"""Grants and the access register: which inspector may see which records, and until when.

Grants, grant revocations and logged-out token ids are events in a hash-chained, bucket-locked
:class:`archive.audit.SegmentChain`, sealed in the bucket under ``access/sealed/v1/events/``: the
same mechanism as the retention register, so a grant cannot be back-dated, widened or silently
removed, and the record of who was allowed what lasts as long as the audit log.
:class:`AccessRegister` folds the chain back into the grants in force and the revoked token ids.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from archive.audit import ChainReport, SegmentChain, configured_chain_key
from archive.core.errors import ArchiveError
from archive.core.settings import Settings
from archive.store import ObjectStore, SealedStore

ACCESS_PREFIX: Final = "access/sealed/v1/events/"
MAX_GRANT: Final = timedelta(days=366)


@dataclass(frozen=True, slots=True, kw_only=True)
class Grant:
    """An inspector may search, view and export records in scope from ``valid_from`` until
    ``valid_until`` (exclusive). Scope: every given element must match; at least one is given."""

    grant_id: str
    inspector: str
    facility: str | None = None
    encounter_ids: frozenset[str] = frozenset()
    patient_pseudonym: str | None = None
    valid_from: datetime
    valid_until: datetime
    issued_by: str
    case_ref: str

    def active(self, now: datetime) -> bool:
        return self.valid_from <= now < self.valid_until

    def covers(self, *, facility: str, encounter_id: str, patient_pseudonym: str) -> bool:
        return (
            (self.facility is None or self.facility == facility)
            and (not self.encounter_ids or encounter_id in self.encounter_ids)
            and (self.patient_pseudonym is None or self.patient_pseudonym == patient_pseudonym)
        )

    def to_event(self) -> dict[str, Any]:
        return {
            "type": "grant.issued",
            "grant_id": self.grant_id,
            "inspector": self.inspector,
            "facility": self.facility,
            "encounter_ids": sorted(self.encounter_ids),
            "patient_pseudonym": self.patient_pseudonym,
            "valid_from": self.valid_from.astimezone(UTC).isoformat(),
            "valid_until": self.valid_until.astimezone(UTC).isoformat(),
            "issued_by": self.issued_by,
            "case_ref": self.case_ref,
        }

    @classmethod
    def from_event(cls, e: Mapping[str, Any]) -> Grant:
        return cls(
            grant_id=e["grant_id"],
            inspector=e["inspector"],
            facility=e["facility"],
            encounter_ids=frozenset(e["encounter_ids"]),
            patient_pseudonym=e["patient_pseudonym"],
            valid_from=datetime.fromisoformat(e["valid_from"]),
            valid_until=datetime.fromisoformat(e["valid_until"]),
            issued_by=e["issued_by"],
            case_ref=e["case_ref"],
        )


def new_grant(
    *,
    inspector: str,
    issued_by: str,
    case_ref: str,
    valid_from: datetime,
    valid_until: datetime,
    facility: str | None = None,
    encounter_ids: Iterable[str] = (),
    patient_pseudonym: str | None = None,
) -> Grant:
    """A validated grant with a fresh id (refuses blanket, endless or back-to-front grants)."""
    encounters = frozenset(encounter_ids)
    if facility is None and not encounters and patient_pseudonym is None:
        raise ArchiveError("a grant needs a scope: a facility, encounter ids and/or a patient")
    if valid_from.tzinfo is None or valid_until.tzinfo is None:
        raise ArchiveError("grant times must be timezone-aware")
    if not valid_from < valid_until <= valid_from + MAX_GRANT:
        raise ArchiveError(f"a grant must end after it starts and last at most {MAX_GRANT.days} d")
    if not case_ref.strip():
        raise ArchiveError("a grant needs a case reference (inspection decision, court file)")
    return Grant(
        grant_id=f"g-{secrets.token_hex(6)}",
        inspector=inspector,
        facility=facility,
        encounter_ids=encounters,
        patient_pseudonym=patient_pseudonym,
        valid_from=valid_from,
        valid_until=valid_until,
        issued_by=issued_by,
        case_ref=case_ref,
    )


class AccessRegister:
    """Grants and revoked tokens, folded from the hash-chained access log."""

    def __init__(self, chain: SegmentChain) -> None:
        self._chain = chain

    @classmethod
    def for_settings(cls, settings: Settings, store: ObjectStore) -> AccessRegister:
        """Segments sealed under the configured keyring in the bucket, like the audit log's:
        grants name inspectors, encounters and pseudonyms."""
        years = settings.catalog.manifest_retain_years
        sealed = SealedStore.for_settings(settings, store)
        key = configured_chain_key(settings)
        return cls.open(access_dir(settings), sealed, key=key, retain_years=years)

    @classmethod
    def open(
        cls, directory: Path, store: ObjectStore, *, key: bytes, retain_years: int = 100
    ) -> AccessRegister:
        """Segments go to ``store`` as they are (pass a SealedStore for a bucket); ``key``, the
        keyring's chain key, seals HEAD."""
        chain = SegmentChain(
            directory, store, prefix=ACCESS_PREFIX, key=key, retain_years=retain_years
        )
        return cls(chain)

    def verify(self) -> ChainReport:
        """The chain checked locally and against the locked bucket copies, both ways."""
        return self._chain.verify()

    def append(self, event: Mapping[str, Any], *, now: datetime) -> None:
        self._chain.append([event], now=now)

    def grants(self) -> dict[str, Grant]:
        """Issued and not revoked (expired ones included: :meth:`Grant.active` decides)."""
        grants: dict[str, Grant] = {}
        for e in self._chain.records():
            if e["type"] == "grant.issued":
                grants[e["grant_id"]] = Grant.from_event(e)
            elif e["type"] == "grant.revoked":
                grants.pop(e["grant_id"], None)
        return grants

    def active_grants(self, inspector: str, now: datetime) -> list[Grant]:
        return [g for g in self.grants().values() if g.inspector == inspector and g.active(now)]

    def revoked_tokens(self) -> frozenset[str]:
        return frozenset(
            e["token_id"] for e in self._chain.records() if e["type"] == "token.revoked"
        )


def access_dir(settings: Settings) -> Path:
    """Beside the catalog, the audit log and the retention register; the account file and the
    token secret live here too."""
    return settings.catalog_dir.with_name("access")
