"""What a source hands to the rest of the write path: encounter bundles, quarantine entries, and
the window of discharge times to collect.

A source yields :data:`CollectedItem` values: an :class:`EncounterBundle` ready to render, or a
:class:`~archive.sources.quarantine.QuarantineEntry` for anything it could not use. The FHIR Bulk
Data adapter is :func:`archive.sources.bulk.collect`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any, Literal

from archive.core.timezones import DEFAULT_TZ, zone
from archive.sources.quarantine import QuarantineEntry


@dataclass(frozen=True, slots=True, kw_only=True)
class Window:
    """The half-open interval ``[start, end)`` of discharge times to collect (tz-aware)."""

    start: datetime
    end: datetime

    def __post_init__(self) -> None:
        # A naive or empty window is a programming error, not bad input.
        if self.start.tzinfo is None or self.end.tzinfo is None:
            raise ValueError("Window needs timezone-aware datetimes")
        if self.start >= self.end:
            raise ValueError("Window start must be before its end")

    @classmethod
    def for_day(cls, day: date, tz: str = DEFAULT_TZ) -> Window:
        """The local calendar day ``day`` in zone ``tz``."""
        zone_info = zone(tz)
        start = datetime.combine(day, time(0), tzinfo=zone_info)
        end = datetime.combine(day + timedelta(days=1), time(0), tzinfo=zone_info)
        return cls(start=start, end=end)

    @classmethod
    def previous_day(cls, now: datetime, tz: str = DEFAULT_TZ) -> Window:
        """Yesterday (local to ``tz``) as seen at ``now``: what the nightly run collects."""
        if now.tzinfo is None:
            raise ValueError("previous_day needs a timezone-aware 'now'")
        return cls.for_day(now.astimezone(zone(tz)).date() - timedelta(days=1), tz)

    @classmethod
    def previous_days(cls, now: datetime, tz: str = DEFAULT_TZ, *, days: int = 1) -> Window:
        """The ``days`` local days up to and including yesterday, as seen at ``now``."""
        if days < 1:
            raise ValueError("a look-back covers at least one day")
        last = cls.previous_day(now, tz)
        first = cls.for_day(last.start.date() - timedelta(days=days - 1), tz)
        return cls(start=first.start, end=last.end)

    @property
    def tz(self) -> tzinfo:
        """The zone of ``start``; a bare FHIR date (no time) is placed at midnight there."""
        if self.start.tzinfo is None:  # refused by __post_init__
            raise ValueError("Window needs timezone-aware datetimes")
        return self.start.tzinfo

    def __contains__(self, moment: object) -> bool:
        return isinstance(moment, datetime) and self.start <= moment < self.end


@dataclass(frozen=True, slots=True, kw_only=True)
class FacilitySignature:
    """What the facility's own signature over the source file (QĐ 130 ``CHUKYDONVI``) showed.

    ``status``: "valid" (verified, by a configured facility certificate), "absent" (the file
    carries none), or "unverified" (present and intact, but not attributable: no facility
    certificate is configured, or the file is larger than the limit for loading it whole; the
    reason is ``detail``). An invalid signature never reaches a bundle: it is quarantined.
    ``signer_subject`` and ``signer_sha256`` (of the certificate's DER) when a signature is
    present and was checked."""

    status: Literal["valid", "absent", "unverified"]
    signer_subject: str | None = None
    signer_sha256: str | None = None
    detail: str = ""

    def describe(self) -> str:
        """One line for the archived document's metadata."""
        parts = [f"facility signature (CHUKYDONVI): {self.status}"]
        if self.signer_subject:
            parts.append(f"signer {self.signer_subject}")
        if self.signer_sha256:
            parts.append(f"certificate sha256 {self.signer_sha256}")
        if self.detail:
            parts.append(self.detail)
        return "; ".join(parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class EncounterBundle:
    """One finished encounter with everything it references, ready to render.

    ``canonical`` (see :func:`archive.sources.fhir.canonical_json`, or the original XML for
    ``source_kind`` "qd130") is authoritative: it is what the PDF embeds and the catalog hashes;
    ``bundle`` is the same data parsed (do not mutate it; for QĐ 130 empty: render from
    :func:`archive.sources.page_model`, which serves every kind). The
    other fields are what the catalog and the retention policy need without parsing the
    bundle. ``repr`` shows no PHI.
    """

    encounter_id: str
    patient_id: str
    facility_code: str  # MA_CSKCB
    admitted_at: datetime
    discharged_at: datetime
    encounter_class: str | None  # v3-ActCode: AMB, IMP, EMER
    department_code: str | None  # MA_KHOA
    discharge_disposition: str | None  # home, other-hcf, exp, aadvice, ...
    accident_code: str | None  # MA_TAI_NAN "0".."8"
    treatment_result: str | None  # KET_QUA_DTRI, "5" = death
    icd10_codes: tuple[str, ...]  # every Condition's ICD-10 code, sorted, unique
    procedure_codes: tuple[str, ...]  # every Procedure's ICD-9-CM code, sorted, unique
    patient_deceased: bool  # Patient.deceased[x] says the patient has died (at any time)
    record_number: str | None  # MA_HSBA
    episode_key: str | None  # MA_LK
    bundle: dict[str, Any] = field(repr=False, compare=False)
    canonical: bytes = field(repr=False)
    # What ``canonical`` is: "fhir", the canonical Bundle JSON; "qd130", the hospital's QĐ 130
    # HOSO XML byte for byte (``bundle`` is then empty: its mapping for the page is built where
    # the page is rendered, by :func:`archive.sources.page_model`); "scanned", a
    # paper record's manifest row as JSON (``bundle`` then names its scan files).
    source_kind: str = "fhir"
    # A retention class the source states outright (a paper record's manifest may): the record
    # is kept for the longer of it and the class its facts give.
    declared_retention_class: str | None = None
    # The facility's signature over the file the data came from (QĐ 130); None for FHIR.
    facility_signature: FacilitySignature | None = None
    # Set by the archive run, never by a source: 1 for an encounter's first archived version;
    # more when the catalog holds the encounter with other data (an amendment), which is then
    # archived as a new version beside the old ones, under a key of its own.
    revision: int = 1
    # Set by the archive run, never by a source, on an amendment of a record the records
    # department kept longer than its class (retention register ``lock.extended``): that class
    # and retain-until, which the new version's lock never falls short of.
    extended_retention: tuple[str, datetime] | None = None

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.canonical).hexdigest()

    def __repr__(self) -> str:
        return (
            f"EncounterBundle(encounter_id={self.encounter_id!r}, "
            f"facility_code={self.facility_code!r}, "
            f"discharged_at={self.discharged_at.isoformat()}, "
            f"sha256={self.sha256[:16]}..., size={len(self.canonical)})"
        )


CollectedItem = EncounterBundle | QuarantineEntry
