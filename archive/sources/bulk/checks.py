"""Whether one selected encounter can be archived intact, judged on its parsed resources.

Takes the resources pass 3 loaded for an encounter (:class:`Loaded`); returns the
:class:`Problem` values that stop it from being archived, the Encounter's own first (they decide
the reason its quarantine entry shows). Every check here is about the encounter as a whole: its
subject, provider, period and diagnoses, each resource's id, codes and text, and duplicates.
Value-level rules (what an id, an ICD code or clean text is) live in
:mod:`archive.sources.validation`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import tzinfo
from typing import Final, NamedTuple

from archive.sources import fhir, validation
from archive.sources.bulk.manifest import CLINICAL
from archive.sources.fhir import Ref, Resource
from archive.sources.quarantine import QuarantineReason

R = QuarantineReason
Where = Callable[[int], str]  # "Observation at Observation.ndjson:12" for a packed position
_FACILITY_CODE: Final = re.compile(r"[0-9]{5}")


@dataclass(frozen=True, slots=True)
class Problem:
    reason: QuarantineReason
    detail: str
    line: int | None = None  # position of the bad line, when it is not the Encounter's
    emitted: bool = False  # its LINE entry was already yielded


class Loaded(NamedTuple):
    line: int  # its packed position
    raw: bytes
    resource: Resource
    refs: tuple[Ref, ...]
    text: str


def check_encounter(encounter: Resource, directory: list[Loaded], *, tz: tzinfo) -> list[Problem]:
    problems: list[Problem] = []
    subject = fhir.reference(encounter, "subject")
    provider = fhir.reference(encounter, "serviceProvider")
    if subject is None or subject.resource_type != "Patient":
        problems.append(Problem(R.MALFORMED_RESOURCE, "Encounter.subject is not a Patient"))
    if provider is None or provider.resource_type != "Organization":
        problems.append(
            Problem(R.MALFORMED_RESOURCE, "Encounter.serviceProvider is not an Organization")
        )
    problems += _check_period(encounter, tz)
    accident = fhir.extension_code(encounter, fhir.EXT_ACCIDENT)
    if accident is not None and accident not in validation.ACCIDENT_CODES:
        problems.append(Problem(R.INVALID_CODE, "Encounter accident code is not 0-8"))
    organization = next(
        (d.resource for d in directory if provider and _is(d.resource, provider)), None
    )
    facility = fhir.identifier(organization, fhir.SYS_FACILITY)
    if organization is not None and not _FACILITY_CODE.fullmatch(facility or ""):
        problems.append(
            Problem(R.INVALID_CODE, "serviceProvider has no 5-digit urn:vn:moh:facility code")
        )
    return problems


def _check_period(encounter: Resource, tz: tzinfo) -> list[Problem]:
    period = encounter.get("period")
    period = period if isinstance(period, dict) else {}
    start = fhir.parse_datetime(period.get("start"), date_tz=tz)
    end = fhir.parse_datetime(period.get("end"), date_tz=tz)
    if start is None:
        return [Problem(R.INVALID_DATETIME, "Encounter.period.start is missing or invalid")]
    if end is not None and start > end:
        return [Problem(R.INVALID_DATETIME, "Encounter.period.start is after period.end")]
    return []


def missing_diagnoses(encounter: Resource, clinical: list[Loaded]) -> list[Problem]:
    # Encounter.diagnosis.condition may name a Condition or a Procedure (R4).
    present = {(i.resource.get("resourceType"), i.resource.get("id")) for i in clinical}
    items = encounter.get("diagnosis")
    targets = [fhir.reference(d, "condition") for d in items] if isinstance(items, list) else []
    if any(t is None or tuple(t) not in present for t in targets):
        detail = "Encounter.diagnosis names a Condition or Procedure that is not in the export"
        return [Problem(R.UNRESOLVED_REFERENCE, detail)]
    return []


def check_resource(
    item: Loaded, patient: Ref | None, *, is_encounter: bool, where: Where
) -> list[Problem]:
    resource, kind = item.resource, item.resource["resourceType"]
    code_reason = R.INVALID_ICD10 if kind == "Condition" else R.INVALID_CODE
    found: list[tuple[QuarantineReason, str | None]] = [
        (R.INVALID_ID, validation.id_problem(resource.get("id"))),
        (R.CONTROL_CHARACTERS, _text_problem(item)),
        (code_reason, _code_problem(kind, resource)),
    ]
    if kind in CLINICAL and fhir.reference(resource, "subject") != patient:
        found.append((R.INCONSISTENT_REFERENCE, "subject is not the encounter's patient"))
    line = None if is_encounter else item.line
    return [
        Problem(reason, f"{where(item.line)}: {what}", line)
        for reason, what in found
        if what is not None
    ]


def duplicates(loaded: list[Loaded], *, where: Where) -> list[Problem]:
    seen: set[tuple[object, object]] = set()
    problems: list[Problem] = []
    for item in loaded:
        key = (item.resource["resourceType"], repr(item.resource.get("id")))
        if key in seen:
            detail = f"{where(item.line)}: another line has the same type and id"
            problems.append(Problem(R.DUPLICATE_ID, detail, item.line))
        seen.add(key)
    return problems


def diagnoses(encounter: Resource) -> list[Ref]:
    """The Conditions named by ``Encounter.diagnosis[].condition``."""
    items = encounter.get("diagnosis")
    targets = [fhir.reference(d, "condition") for d in items] if isinstance(items, list) else []
    return [t for t in targets if t is not None and t.resource_type == "Condition"]


def belongs(resource: Resource, enc_id: str, diagnosis_ids: set[str]) -> bool:
    """Whether a clinical resource is part of the encounter (pass 2 may over-collect)."""
    target = fhir.reference(resource, "encounter")
    if target is not None and target.resource_type == "Encounter" and target.id == enc_id:
        return True
    return resource.get("resourceType") == "Condition" and resource.get("id") in diagnosis_ids


def _is(resource: Resource, target: Ref) -> bool:
    return resource.get("resourceType") == target.resource_type and resource.get("id") == target.id


def _text_problem(item: Loaded) -> str | None:
    if not validation.may_have_bad_text(item.text):  # the cheap check clears almost every line
        return None
    return validation.text_problem(item.resource, root=item.resource["resourceType"])


def _code_problem(kind: str, resource: Resource) -> str | None:
    if kind == "Condition":
        system, check, name = fhir.SYS_ICD10, validation.is_icd10, "ICD-10"
    elif kind == "Procedure":
        system, check, name = fhir.SYS_ICD9CM, validation.is_icd9cm_procedure, "ICD-9-CM"
    else:
        return None
    found = [c.get("code") for c in fhir.codings(resource.get("code")) if c.get("system") == system]
    if not found:
        return f"code has no {name} coding"
    if not all(check(value) for value in found):
        return f"{name} code fails the format/chapter check"
    return None
