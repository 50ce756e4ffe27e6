"""From an encounter's validated resources to the :class:`EncounterBundle` the write path takes.

Takes the resources pass 3 loaded and checked; returns the canonical ``collection`` Bundle with
the facts the catalog and the retention policy need read out of it once, here, so that no later
stage parses FHIR again. It runs only after every check has passed, so a fact that does not
parse here is a bug (raised as :class:`SourceError`), not bad input.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from archive.core.errors import SourceError
from archive.sources import fhir
from archive.sources.bulk.checks import Problem
from archive.sources.fhir import Resource
from archive.sources.model import EncounterBundle, Window
from archive.sources.quarantine import QuarantineReason


def assemble(
    enc_id: str, resources: Iterable[Resource], window: Window
) -> EncounterBundle | list[Problem]:
    try:
        bundle, canonical = fhir.canonical_pair(fhir.collection_bundle(enc_id, resources))
    except (RecursionError, ValueError):
        detail = "a resource is nested too deeply to encode"
        return [Problem(QuarantineReason.MALFORMED_RESOURCE, detail)]
    return _encounter_bundle(bundle, canonical, window)


def _encounter_bundle(bundle: Resource, canonical: bytes, window: Window) -> EncounterBundle:
    """The facts the catalog and the retention policy need, read from a validated bundle."""
    encounter = bundle["entry"][0]["resource"]
    subject = fhir.reference(encounter, "subject")
    patient = fhir.resolve(bundle, subject) or {}
    organization = fhir.resolve(bundle, fhir.reference(encounter, "serviceProvider"))
    period, tz = encounter["period"], window.tz
    klass = encounter.get("class")
    hospitalization = encounter.get("hospitalization")
    return EncounterBundle(
        encounter_id=encounter["id"],
        patient_id=subject.id if subject else "",
        facility_code=fhir.identifier(organization, fhir.SYS_FACILITY) or "",
        admitted_at=_checked(fhir.parse_datetime(period.get("start"), date_tz=tz)),
        discharged_at=_checked(fhir.parse_datetime(period.get("end"), date_tz=tz)),
        encounter_class=_str(klass.get("code")) if isinstance(klass, dict) else None,
        department_code=fhir.code(encounter.get("serviceType"), fhir.SYS_DEPARTMENT),
        discharge_disposition=fhir.code(
            hospitalization.get("dischargeDisposition"), fhir.SYS_DISCHARGE
        )
        if isinstance(hospitalization, dict)
        else None,
        accident_code=fhir.extension_code(encounter, fhir.EXT_ACCIDENT),
        treatment_result=fhir.extension_code(encounter, fhir.EXT_TREATMENT_RESULT),
        icd10_codes=_codes(bundle, "Condition", fhir.SYS_ICD10),
        procedure_codes=_codes(bundle, "Procedure", fhir.SYS_ICD9CM),
        patient_deceased=bool(patient.get("deceasedDateTime"))
        or patient.get("deceasedBoolean") is True,
        record_number=fhir.identifier(encounter, fhir.SYS_HSBA),
        episode_key=fhir.identifier(encounter, fhir.SYS_MA_LK),
        bundle=bundle,
        canonical=canonical,
    )


def _codes(bundle: Resource, kind: str, system: str) -> tuple[str, ...]:
    codes = {fhir.code(r.get("code"), system) for r in fhir.resources_of(bundle, kind)}
    return tuple(sorted(c for c in codes if c is not None))


def _str(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _checked(moment: datetime | None) -> datetime:
    if moment is None:  # validated before assembly; a None here is a bug, not bad input
        raise SourceError("internal error: a validated Encounter period did not parse")
    return moment
