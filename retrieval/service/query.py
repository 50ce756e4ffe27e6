"""What a search asks and what it answers, and which rows an inspector's grants cover.

Values only: :class:`Query` in, :class:`SearchResult` of :class:`Hit` out. A hit names a
patient's pseudonym only for records officers; inspectors see encounters, never who they belong
to.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, Final

from archive.core.errors import ArchiveError
from retrieval.access import GRANT_BOUND, Grant, Principal
from retrieval.index import LastVerification

MAX_RESULTS: Final = 500


@dataclass(frozen=True, slots=True, kw_only=True)
class Query:
    """Exactly one of: encounter id, patient (id, pseudonymised at once), facility + discharge
    date range, retention class (+ optional date range)."""

    encounter_id: str | None = None
    patient_pseudonym: str | None = None
    facility: str | None = None
    retention_class: str | None = None
    discharged_from: date | None = None
    discharged_to: date | None = None  # inclusive

    def __post_init__(self) -> None:
        kinds = [self.encounter_id, self.patient_pseudonym, self.facility or self.retention_class]
        if sum(k is not None for k in kinds) > 1:
            raise ArchiveError(
                "search by one of: encounter, patient, facility and/or class (with dates)"
            )

    def describe(self) -> dict[str, str]:
        """The query as its audit event records it: the pseudonym only as "pseudonym"."""
        d = {
            k: str(v)
            for k, v in (
                ("encounter", self.encounter_id),
                ("facility", self.facility),
                ("class", self.retention_class),
                ("from", self.discharged_from),
                ("to", self.discharged_to),
            )
            if v is not None
        }
        if self.patient_pseudonym:
            d["patient"] = "pseudonym"
        return d

    def entities(self) -> list[tuple[str, str]]:
        """The encounter and patient the audit event is about."""
        out = []
        if self.encounter_id:
            out.append(("encounter", self.encounter_id))
        if self.patient_pseudonym:
            out.append(("patient", self.patient_pseudonym))
        return out


@dataclass(frozen=True, slots=True)
class Hit:
    """One record as a search shows it. ``patient_pseudonym`` only for records officers."""

    encounter_id: str
    facility: str
    admitted_at: datetime
    discharged_at: datetime
    retention_class: str
    retain_until: datetime
    on_hold: bool
    versions: int
    verification: LastVerification | None
    patient_pseudonym: str | None


@dataclass(frozen=True, slots=True)
class SearchResult:
    hits: tuple[Hit, ...]
    truncated: bool


def covered(principal: Principal, grants: Sequence[Grant], row: dict[str, Any]) -> bool:
    """Whether ``principal`` may see an indexed row: always, unless their role is grant-bound."""
    if principal.role not in GRANT_BOUND:
        return True
    return any(
        g.covers(
            facility=row["facility"],
            encounter_id=row["encounter_id"],
            patient_pseudonym=row["patient_pseudonym"],
        )
        for g in grants
    )
