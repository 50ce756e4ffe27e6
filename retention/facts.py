"""What the retention policy knows about a record: codes and dates, never a name or an id.

:class:`RecordFacts` is the only input of :func:`retention.policy.classify`. It is built from an
encounter by :meth:`RecordFacts.from_bundle` (the FHIR collector's ``EncounterBundle``) or by hand
for documents that are not encounters (a medical-incident resolution file). Codes are kept as the
source wrote them; :func:`icd10_key` and :func:`procedure_key` give the canonical form the policy
compares, so "f32.1", "F321" and "F32.1" classify alike.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from archive.sources import EncounterBundle

_DOTLESS_ICD10: Final = re.compile(r"([A-Z][0-9]{2})([0-9]{1,2})")
_DOTLESS_PROCEDURE: Final = re.compile(r"([0-9]{2})([0-9]{1,2})")


@dataclass(frozen=True, slots=True, kw_only=True)
class RecordFacts:
    """The retention-relevant facts of one record (no PHI: codes and dates only).

    ``repr`` shows only the encounter class and the discharge time: the codes are health data and
    must not reach a log line through an f-string.
    """

    discharged_at: datetime  # tz-aware; the local year of this instant starts the count
    encounter_class: str | None = None  # v3-ActCode: AMB, IMP, EMER
    icd10_codes: tuple[str, ...] = field(default=(), repr=False)  # every condition
    procedure_codes: tuple[str, ...] = field(default=(), repr=False)  # ICD-9-CM vol. 3
    accident_code: str | None = field(default=None, repr=False)  # QĐ130 MA_TAI_NAN "0".."8"
    treatment_result: str | None = field(default=None, repr=False)  # KET_QUA_DTRI, "5" death
    discharge_disposition: str | None = field(default=None, repr=False)  # "exp" = died
    deceased: bool = field(default=False, repr=False)  # Patient.deceased[x] is set
    incident_file: bool = field(default=False, repr=False)  # medical-incident resolution file

    def __post_init__(self) -> None:
        # A naive time has no year until a zone is chosen: refuse it rather than guess.
        if self.discharged_at.tzinfo is None or self.discharged_at.utcoffset() is None:
            raise ValueError("RecordFacts.discharged_at must be timezone-aware")
        for name in ("icd10_codes", "procedure_codes"):
            if not isinstance(getattr(self, name), tuple):
                raise TypeError(f"RecordFacts.{name} must be a tuple of strings")

    @classmethod
    def from_bundle(cls, bundle: EncounterBundle, *, incident_file: bool = False) -> RecordFacts:
        """The facts of a collected encounter (see :mod:`archive.sources`)."""
        return cls(
            discharged_at=bundle.discharged_at,
            encounter_class=bundle.encounter_class,
            icd10_codes=tuple(bundle.icd10_codes),
            procedure_codes=tuple(bundle.procedure_codes),
            accident_code=bundle.accident_code,
            treatment_result=bundle.treatment_result,
            discharge_disposition=bundle.discharge_disposition,
            deceased=bundle.patient_deceased,
            incident_file=incident_file,
        )


def icd10_key(code: str) -> str:
    """Canonical ICD-10 form for matching: upper case, no spaces or dagger/asterisk marks, and
    the dot restored when a system sent "F321" for "F32.1"."""
    text = code.strip().upper().replace(" ", "").rstrip("*+†")
    match = _DOTLESS_ICD10.fullmatch(text)
    return f"{match.group(1)}.{match.group(2)}" if match else text


def procedure_key(code: str) -> str:
    """Canonical ICD-9-CM procedure form for matching ("5569" becomes "55.69")."""
    text = code.strip().replace(" ", "")
    match = _DOTLESS_PROCEDURE.fullmatch(text)
    return f"{match.group(1)}.{match.group(2)}" if match else text


def code_key(code: str | None) -> str | None:
    """A single coded value (accident code, treatment result, disposition) without padding."""
    if code is None:
        return None
    text = code.strip()
    return text or None
