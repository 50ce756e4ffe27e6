"""From a checked HOSO to the :class:`~archive.sources.EncounterBundle` the write path archives,
and to the FHIR model its page is rendered from.

:func:`to_bundle` runs at collection: it makes the checks the table rules cannot (ids, control
characters, dates in order, cards, codes), so a bad HOSO is quarantined there, and takes the
catalog's and the retention policy's facts straight from XML1's codes. What is embedded, hashed
and kept is ``raw``, the hospital's HOSO byte for byte (``canonical``); the bundle's ``bundle``
is left empty.

:func:`page_model` runs where the page is rendered (:mod:`~archive.sources.qd130.page`): the
renderer reads FHIR, so the tables are mapped onto the same FHIR R4 resources (and the same
``urn:vn:moh`` conventions) the Bulk Data source delivers: XML1 gives the Encounter, Patient,
Organization and diagnoses; XML2 the medications, XML3 the procedures (services with an ICD-9-CM
code), XML4 the paraclinical results, XML5 and XML8 the clinical course; XML7 the discharging
physician, XML13 and XML14 a course note for the referral and the re-visit. Building it was a
third of collection's CPU, spent on one core before any render worker started; it cannot fail on
a HOSO :func:`to_bundle` accepted (every field it reads is required or checked there).
"""

from __future__ import annotations

from datetime import tzinfo
from itertools import chain
from typing import Any, Final

from archive.sources import fhir
from archive.sources.model import EncounterBundle, FacilitySignature
from archive.sources.qd130 import fields as f
from archive.sources.qd130.fields import FieldError
from archive.sources.qd130.hoso import Hoso
from archive.sources.qd130.resources import disposition, encounter_class, resources
from archive.sources.quarantine import QuarantineReason
from archive.sources.validation import id_problem, may_have_bad_text, text_problem

R = QuarantineReason
DEATHS: Final = frozenset({"5", "8"})  # KET_QUA_DTRI


def to_bundle(
    hoso: Hoso,
    raw: bytes,
    *,
    facility: str | None,
    tz: tzinfo,
    signature: FacilitySignature | None = None,
) -> EncounterBundle:
    """The bundle of one HOSO (its ``bundle`` empty: see :func:`page_model`);
    :class:`FieldError` for what the table rules could not see."""
    s = hoso.summary
    for key in ("MA_LK", "MA_BN"):
        problem = id_problem(s[key])
        if problem is not None:
            raise FieldError(R.INVALID_ID, f"XML1 {key}: {problem}")
    every = (chain(r, r.values()) for records in hoso.tables.values() for r in records)
    if may_have_bad_text("\n".join(chain.from_iterable(every))):
        # Rare: table by table, text_problem says where (the patterns have no anchors, so the
        # whole text matches whenever one table's does).
        for kind, records in hoso.tables.items():
            joined = "\n".join(chain.from_iterable(chain(r, r.values()) for r in records))
            if not may_have_bad_text(joined):
                continue
            problem = text_problem(records, root=kind)
            if problem is not None:
                raise FieldError(R.CONTROL_CHARACTERS, problem)
    if facility and s["MA_CSKCB"] != facility:
        raise FieldError(R.INVALID_CODE, "XML1 MA_CSKCB differs from the envelope's MACSKCB")
    admitted, discharged = (
        f.moment("NGAY_VAO", s["NGAY_VAO"], tz),
        f.moment("NGAY_RA", s["NGAY_RA"], tz),
    )
    if discharged < admitted:
        raise FieldError(R.INVALID_DATETIME, "XML1 NGAY_RA is before NGAY_VAO")
    f.cards(s)
    diagnoses = (
        f.icd10("MA_BENH_CHINH", s["MA_BENH_CHINH"]),
        *f.icd10_list("MA_BENH_KT", s.get("MA_BENH_KT", "")),
    )
    procedures = f.procedure_list("MA_PTTT_QT", s.get("MA_PTTT_QT", ""))
    for record in hoso.records("XML3"):
        procedures += f.procedure_list("MA_PTTT_QT", record.get("MA_PTTT_QT", ""))
    return EncounterBundle(
        encounter_id=s["MA_LK"],
        patient_id=s["MA_BN"],
        facility_code=s["MA_CSKCB"],
        admitted_at=admitted,
        discharged_at=discharged,
        encounter_class=encounter_class(s),
        department_code=(f.split_list(s.get("MA_KHOA", "")) or (None,))[0],
        discharge_disposition=disposition(s),
        accident_code=f.accident(s.get("MA_TAI_NAN", "")),
        treatment_result=s["KET_QUA_DTRI"],
        icd10_codes=tuple(sorted(set(diagnoses))),
        procedure_codes=tuple(sorted(set(procedures))),
        patient_deceased=s["KET_QUA_DTRI"] in DEATHS,
        record_number=s.get("MA_HSBA") or None,
        episode_key=s["MA_LK"],
        bundle={},
        canonical=raw,
        source_kind="qd130",
        facility_signature=signature,
    )


def page_model(hoso: Hoso, tz: tzinfo) -> dict[str, Any]:
    """The FHIR ``collection`` Bundle the page of a HOSO :func:`to_bundle` accepted is rendered
    from."""
    s = hoso.summary
    admitted, discharged = (
        f.moment("NGAY_VAO", s["NGAY_VAO"], tz),
        f.moment("NGAY_RA", s["NGAY_RA"], tz),
    )
    diagnoses = (
        f.icd10("MA_BENH_CHINH", s["MA_BENH_CHINH"]),
        *f.icd10_list("MA_BENH_KT", s.get("MA_BENH_KT", "")),
    )
    built = list(resources(hoso, diagnoses, tz, admitted, discharged))
    return fhir.collection_bundle(f"qd130-{s['MA_LK']}", built)
